package vm

import (
	"fmt"
	"unsafe"
)

// Packet helpers compiled: Options.PacketHelpers names helpers whose
// common case is a fixed operation on the packet's bytes and on state the
// owner publishes (SetPacketState), so that compiled code performs them
// without leaving to Go (an exit and re-entry costs about 8 ns, the whole
// of a small program's run in the kernel is 14-20). The VM knows nothing of
// socket buffers: an operation is described generically, and every case
// it does not describe exactly (a flag it does not take, a state it does
// not know, an offset or size out of range, memory Machine.Mem would not
// hand over plainly) calls the helper in Go, so the result is always the
// helper's. The interpreter always calls the helper.

// PacketOp is an operation compiled code may perform for a helper call.
// "The packet" is the packet's data as SetPacket gave it (data to end);
// offsets count from data.
type PacketOp uint8

// The packet operations.
const (
	// PacketCsumReplace updates the 16-bit ones' complement checksum at
	// packet offset r2 (as uint32; even, at most 0xffff, two bytes in the
	// packet) for a field that changed from r3 to r4, with the field size in
	// the low four bits of r5 (the kernel's BPF_F_HDR_FIELD_MASK): 2
	// (csum_replace2, or with Wide2 inet_proto_csum_replace2: csum_replace4
	// on the zero-extended 16-bit values), 4 (csum_replace4) or 0 (r3 must
	// be 0, r4 a csum_diff result: csum_replace_by_diff). r3 and r4 are the
	// field's bytes loaded little-endian, as a program loads them. With
	// Mangled0 in r5 a checksum of 0 is left alone (unless Enforce is set
	// too) and a result of 0 is stored as 0xffff (CSUM_MANGLED_0). r0 = 0.
	PacketCsumReplace PacketOp = iota + 1
	// PacketStore copies uint32(r4) bytes from r3, read as Machine.Mem
	// reads a helper's argument, to packet offset uint32(r2); r5 holds
	// flags. r0 = 0.
	PacketStore
	// PacketLoad copies uint32(r4) bytes at packet offset uint32(r2) to r3,
	// written as Machine.Mem lets a helper write. r0 = 0.
	PacketLoad
	// PacketRecord stores Tag | r2<<Shift | uint64(uint32(r1))<<32 in the
	// record word SetPacketState published, r2 being flags (Flags). r0 =
	// Ret.
	PacketRecord
)

// maxPacketCopy bounds the sizes PacketStore and PacketLoad copy in
// compiled code: the headers programs rewrite are far smaller.
const maxPacketCopy = 256

// PacketHelper describes what compiled code does for one helper.
type PacketHelper struct {
	Op PacketOp
	// Flags are the flag bits (r5, PacketRecord r2) the operation takes; a
	// call with any other bit set is left to the Go helper. For
	// PacketCsumReplace the size field (low four bits) is not a flag.
	Flags uint64
	// Guarded are the flag bits whose meaning depends on the state byte
	// SetPacketState published (GuardAll: every call depends on it): such a
	// call is performed only while the byte holds a value v < 8 with bit v
	// of Plain set, a state in which the flags change nothing the operation
	// does (a checksum the packet does not carry), and left to Go otherwise.
	Guarded  uint64
	GuardAll bool
	Plain    uint8
	// Mangled0, Enforce: PacketCsumReplace's CSUM_MANGLED_0 rule bits, 0 for
	// none. Wide2: size 2 as inet_proto_csum_replace2.
	Mangled0, Enforce uint64
	Wide2             bool
	// Tag, Shift, Ret: PacketRecord's word and result.
	Tag   uint64
	Shift uint8
	Ret   uint64
}

// check refuses a description compiled code could not follow.
func (h PacketHelper) check() error {
	switch h.Op {
	case PacketCsumReplace, PacketStore, PacketLoad:
	case PacketRecord:
		if h.Shift >= 32 || h.Flags<<h.Shift>>h.Shift != h.Flags || h.Flags<<h.Shift >= 1<<32 {
			return fmt.Errorf("record flags %#x shifted by %d leave the low half", h.Flags, h.Shift)
		}
	default:
		return fmt.Errorf("unknown packet op %d", h.Op)
	}
	if h.Mangled0 >= 1<<31 || h.Enforce >= 1<<31 {
		return fmt.Errorf("mangled-0 bits %#x, %#x above bit 30", h.Mangled0, h.Enforce)
	}
	if (h.Guarded != 0 || h.GuardAll) && h.Plain == 0 {
		return fmt.Errorf("guarded flags %#x with no plain state", h.Guarded)
	}
	return nil
}

// pktHelpState is what compiled packet helpers read (jitState.ph): the
// packet's data as a host address and length (0: no plain packet), the
// state byte and the record word SetPacketState published. Compiled code
// reads the pointers and writes through them; it never writes a pointer.
type pktHelpState struct {
	data   uintptr
	len    uint64
	state  *uint8
	record *uint64
	spill  [2]uint64
}

// SetPacketState publishes the state compiled packet helpers
// (Options.PacketHelpers) read and write: the state byte a guarded
// operation checks and the word PacketRecord writes. nil for either makes
// every call needing it go to the Go helper. The owner calls it again
// whenever they move (a new packet object); Go sees what compiled code
// wrote in the word at once, and compiled code reads both afresh at every
// call. The Machine keeps them reachable until the next call.
func (m *Machine) SetPacketState(state *uint8, record *uint64) {
	m.jit.ph.state, m.jit.ph.record = state, record
}

// pktHelpData publishes the packet's data (pktHelpState) with the
// windows: only Go changes the packet region.
func (m *Machine) pktHelpData() {
	r := &m.regions[RegionPacket]
	ph := &m.jit.ph
	ph.data, ph.len = 0, 0
	if r.perm&(permRead|permWrite|permSlow) != permRead|permWrite || r.buf == nil ||
		m.pktData > m.pktEnd || uint64(m.pktEnd) > uint64(len(r.buf)) {
		return
	}
	ph.data = uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))) + uintptr(m.pktData)
	ph.len = uint64(m.pktEnd - m.pktData)
}
