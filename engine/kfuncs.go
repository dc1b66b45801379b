package engine

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
)

// kfuncs are the kernel functions tc programs call that the engine
// implements, by name. The linker turns a call of one into a helper call
// with ID kfuncBase+index (the interpreter and the compiler only know
// helper calls); a program calling any other kfunc is refused at load,
// naming it. bpf_dynptr_slice_rdwr is not here: Linux 6.18 refuses it in
// a tc program ("calling kernel function bpf_dynptr_slice_rdwr is not
// allowed"), and so does the engine.
var kfuncs = []struct {
	name string
	fn   vm.HelperFunc
}{
	{"bpf_cast_to_kern_ctx", castToKernCtx},
	{"bpf_dynptr_from_skb", dynptrFromSKB},
	{"bpf_dynptr_slice", dynptrSlice},
	{"bpf_dynptr_size", dynptrSize},
}

// kfuncBase is the helper ID of the first kfunc, above every helper.
const kfuncBase = 0x4000

// kfuncID is the helper ID the linker gives a kfunc call, or false.
func kfuncID(name string) (asm.BuiltinFunc, bool) {
	for i, k := range kfuncs {
		if k.name == name {
			return asm.BuiltinFunc(kfuncBase + i), true
		}
	}
	return 0, false
}

// addKfuncs extends a helper table with the kfuncs.
func addKfuncs(t []vm.HelperFunc) []vm.HelperFunc {
	for len(t) < kfuncBase+len(kfuncs) {
		t = append(t, nil)
	}
	for i, k := range kfuncs {
		t[kfuncBase+i] = k.fn
	}
	return t
}

// kernCtx stands for the struct sk_buff bpf_cast_to_kern_ctx returns: the
// engine has none, so the pointer can be compared and passed on, and any
// load through it faults instead of reading __sk_buff fields at sk_buff
// offsets.
type kernCtx struct{}

func castToKernCtx(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
	return executor(m).coll.kernCtx, nil
}

// A dynptr is 16 bytes of the program's stack (struct bpf_dynptr_kern:
// data, size with the type in bits 28-30 and read-only in bit 31, offset);
// the verifier keeps the program from reading them. An skb dynptr holds
// dynptrSKB as its data.
const (
	dynptrSKB      = 0x736b622d64796e70 // "skb-dynp"
	dynptrTypeSKB  = 3                  // BPF_DYNPTR_TYPE_SKB
	dynptrSizeMask = 1<<24 - 1
	dynptrBytes    = 16
)

// dynptrFromSKB is bpf_dynptr_from_skb(skb, flags, ptr): a dynptr over the
// whole packet, or a NULL one and -EINVAL for non-zero flags.
func dynptrFromSKB(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	_, p := packet(m)
	b, err := m.Mem(r3, dynptrBytes, true)
	if err != nil {
		return 0, err
	}
	clear(b)
	if r2 != 0 {
		return errno(linuxerr.EINVAL), nil
	}
	le := binary.LittleEndian
	le.PutUint64(b[0:], dynptrSKB)
	le.PutUint32(b[8:], uint32(p.Len())&dynptrSizeMask|dynptrTypeSKB<<28)
	return 0, nil
}

// dynptr reads a dynptr argument: ok false for a NULL one; an initialised
// dynptr of a kind the engine does not make is an error.
func dynptr(m *vm.Machine, addr uint64) (size, off uint32, ok bool, err error) {
	b, err := m.Mem(addr, dynptrBytes, false)
	if err != nil {
		return 0, 0, false, err
	}
	le := binary.LittleEndian
	switch le.Uint64(b) {
	case 0:
		return 0, 0, false, nil
	case dynptrSKB:
		return le.Uint32(b[8:]) & dynptrSizeMask, le.Uint32(b[12:]), true, nil
	}
	return 0, 0, false, fmt.Errorf("dynptr at %#x: not an skb dynptr (the engine makes no other kind): %w", addr, syscall.EINVAL)
}

// checkOffLen is bpf_dynptr_check_off_len.
func checkOffLen(size, off, n uint32) bool { return n <= size && off <= size-n }

// dynptrRead is bpf_dynptr_read(dst, len, src, offset, flags).
func dynptrRead(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	_, p := packet(m)
	dst, err := memArg(m, r1, r2, true)
	if err != nil {
		return 0, err
	}
	size, off, ok, err := dynptr(m, r3)
	switch {
	case err != nil:
		return 0, err
	case !ok || r5 != 0:
		return errno(linuxerr.EINVAL), nil
	case !checkOffLen(size, uint32(r4), uint32(r2)):
		return errno(linuxerr.E2BIG), nil
	}
	return ret(p.LoadBytes(off+uint32(r4), dst)), nil
}

// dynptrWrite is bpf_dynptr_write(dst, offset, src, len, flags): for an
// skb dynptr, bpf_skb_store_bytes with the flags.
func dynptrWrite(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	x, p := packet(m)
	src, err := memArg(m, r3, r4, false)
	if err != nil {
		return 0, err
	}
	size, off, ok, err := dynptr(m, r1)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return errno(linuxerr.EINVAL), nil
	case !checkOffLen(size, uint32(r2), uint32(r4)):
		return errno(linuxerr.E2BIG), nil
	}
	return x.changed(p.StoreBytes(off+uint32(r2), src, r5))
}

// dynptrSlice is bpf_dynptr_slice(ptr, offset, buffer, buffer__szk): the
// packet is linear, so the slice is a pointer into it (NULL when out of
// range); the buffer is not used.
func dynptrSlice(m *vm.Machine, r1, r2, _, r4, _ uint64) (uint64, error) {
	_, p := packet(m)
	size, off, ok, err := dynptr(m, r1)
	if err != nil || !ok || !checkOffLen(size, uint32(r2), uint32(r4)) {
		return 0, err
	}
	at := uint64(off) + uint64(uint32(r2))
	if at+uint64(uint32(r4)) > uint64(p.Len()) {
		return 0, nil // skb_header_pointer past the tail
	}
	return vm.PacketAddr(int(at)), nil
}

// dynptrSize is bpf_dynptr_size(ptr) (u32; -EINVAL for a NULL dynptr).
func dynptrSize(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	size, _, ok, err := dynptr(m, r1)
	if err != nil {
		return 0, err
	}
	if !ok {
		return uint64(uint32(errno(linuxerr.EINVAL))), nil
	}
	return uint64(size), nil
}
