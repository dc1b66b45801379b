package kernel

// This file holds the platform-neutral half of TestRunner, the kernel side of
// the differential test: programs from a CollectionSpec run through
// BPF_PROG_TEST_RUN, and their maps can be read and reset. Callers only see
// bytes and names, never cilium/ebpf's live objects.

// SkbCtxSize is the size of struct __sk_buff on the supported kernels, the
// size RunInput.Ctx and RunOutput.Ctx have.
const SkbCtxSize = 192

// RunInput is one BPF_PROG_TEST_RUN request for a tc program.
type RunInput struct {
	// Data is the frame, starting at the Ethernet header. The kernel
	// accepts 14..3712 bytes here; untagged IPv4 needs 34, IPv6 54.
	Data []byte
	// Ctx is an optional struct __sk_buff (at most SkbCtxSize bytes,
	// shorter is zero-extended). Only mark, priority, ingress_ifindex,
	// ifindex, cb, tstamp, wire_len, gso_segs, gso_size and hwtstamp may be
	// non-zero (else EINVAL). nil sends no context; an all-zero one differs
	// in a visible way: the kernel then sets wire_len to the frame length.
	Ctx []byte
}

// RunOutput is what the kernel reports after one run.
type RunOutput struct {
	// Retval is the program's return value (the tc verdict).
	Retval uint32
	// Data is the packet afterwards, with all writes and head/tail changes.
	Data []byte
	// Ctx is struct __sk_buff afterwards (SkbCtxSize bytes) when
	// RunInput.Ctx was given, else nil. The kernel fills in mark, priority,
	// ingress_ifindex, ifindex, tstamp, cb, wire_len, gso_segs and hwtstamp.
	Ctx []byte
}

// KV is one map entry as raw bytes in the kernel's layout.
type KV struct {
	Key []byte
	// Values holds one value per possible CPU for per-CPU maps, in CPU
	// order, and a single value otherwise.
	Values [][]byte
}
