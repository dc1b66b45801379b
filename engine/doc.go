// Package engine runs clang-built tc (SCHED_CLS) programs from an
// ebpf.CollectionSpec in pure Go, with the kernel's maps, helpers and
// __sk_buff semantics, so that a program behaves here as it does under the
// kernel's BPF_PROG_TEST_RUN and on a tcx hook.
//
// NewCollection links every program of a spec itself (map and global data
// references become ld_imm64 map/map-value loads, bpf-to-bpf calls
// pc-relative jumps), creates the maps with package maps, fills prog arrays
// from the spec's __array initialisers and loads the programs into
// package vm's interpreter, whose every memory access is checked at run
// time. A program calling a helper the engine lacks is refused at load
// time, naming the helper. Programs of other types, and maps of a type the
// engine lacks that no tc program uses, are left out (Collection.Warnings).
//
// CO-RE relocations (field offset, size, existence, type and enum) are
// applied with cilium/ebpf's btf package against the running kernel's BTF,
// or the built-in BTF of the UAPI types the engine models (UAPITypes) where
// there is none: struct __sk_buff fields land on the UAPI offsets the
// context model serves, as the kernel's verifier rewrites them. A field
// relocation on a kernel-internal type (struct sk_buff, sock, ...) is
// refused, naming the type, the field and the instruction; one without a
// target is poisoned and faults only if reached (FaultPoisoned).
//
// Besides the helpers, programs may call the kfuncs bpf_cast_to_kern_ctx,
// bpf_dynptr_from_skb, bpf_dynptr_slice, bpf_dynptr_size, bpf_dynptr_adjust
// and the crypto family (bpf_crypto_ctx_create, _acquire, _release,
// bpf_crypto_encrypt and _decrypt; the model is package bpfcrypto), each
// only from the program types the kernel registers it for. Local dynptrs
// (bpf_dynptr_from_mem) and referenced kptrs in array values
// (bpf_kptr_xchg) come with them. BPF_PROG_TYPE_SYSCALL programs, which
// create crypto contexts for the tc programs, are loaded too
// (Collection.Syscalls) and run without a context (Program.RunSyscall).
//
// The socket helpers (bpf_sk_lookup_tcp/udp, bpf_skc_lookup_tcp,
// bpf_sk_release, bpf_sk_fullsock, bpf_tcp_sock, bpf_get_listener_sock,
// bpf_sk_assign, bpf_get_netns_cookie, the syncookie helpers) and
// sockmaps work on Options.Sockets (package sock); a socket a program holds is its struct bpf_sock mapped read-only
// until the program releases it or the run ends.
//
// Load-time checks the kernel's verifier makes and that are cheap here
// (combined stack depth of bpf-to-bpf calls, global function prototypes
// and context arguments, direct packet access beyond its checked bound,
// each where provable on every path) become Warnings, or errors with
// Options.Strict.
//
// It runs on every OS but plan9 (which cilium/ebpf does not build on),
// kernel BPF or not. Helpers return Linux's errno numbers to programs
// everywhere (package linuxerr), since compiled programs compare against
// them; errors returned to Go callers wrap the host's syscall.Errno, so
// errors.Is(err, syscall.EINVAL) holds.
//
// bpf_timer callbacks fire on the engine's clock: at the end of the next
// run once due (so test runs stay reproducible), from
// Collection.ServeTimers in a goroutine of the caller's when no run comes,
// or on request (Collection.RunTimers).
//
// Programs run on an Executor: one per goroutine, reusable, allocation-free
// per run. Program.Run, Program.TestRun and the userspace.Runner adapter
// (NewRunner) borrow one of the collection's executors, one per simulated
// CPU, so per-CPU map values are never shared by two concurrent runs. A
// run that breaks the memory rules or exceeds its instruction budget ends
// with a typed error (*Fault, *LimitError, *HelperError), is counted on the
// program (Program.Faults) and is a drop (TC_ACT_SHOT) for the hook.
package engine
