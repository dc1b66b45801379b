package engine

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
)

// kfuncs are the kernel functions programs call that the engine
// implements, by name, with the program types the kernel registers them
// for. The linker turns a call of one into a helper call with ID
// kfuncBase+index (the interpreter and the compiler only know helper
// calls); a program calling any other kfunc, or one its type may not call,
// is refused at load, naming it. bpf_dynptr_slice_rdwr is not here but in
// refusedKfuncs: Linux 6.18 refuses it in a tc program.
var kfuncs = []struct {
	name  string
	fn    vm.HelperFunc
	progs progTypes
}{
	{"bpf_cast_to_kern_ctx", castToKernCtx, forTC},
	{"bpf_dynptr_from_skb", dynptrFromSKB, forTC},
	{"bpf_dynptr_slice", dynptrSlice, forTC | forSyscall},
	{"bpf_dynptr_size", dynptrSize, forTC | forSyscall},
	{"bpf_dynptr_adjust", dynptrAdjust, forTC | forSyscall},
	{"bpf_crypto_ctx_create", cryptoCtxCreate, forSyscall},
	{"bpf_crypto_ctx_acquire", cryptoCtxAcquire, forSyscall},
	{"bpf_crypto_ctx_release", cryptoCtxRelease, forSyscall},
	{"bpf_crypto_encrypt", cryptoEncrypt, forTC},
	{"bpf_crypto_decrypt", cryptoDecrypt, forTC},
}

// refusedKfuncs are kfuncs Linux 6.18 refuses in every program type the
// engine loads, with the errno the kernel's load fails with: a program
// calling one is refused as the kernel refuses it, not as a kfunc the
// engine lacks. bpf_dynptr_slice_rdwr: "bpf_dynptr_slice_rdwr() is not
// allowed" (EPERM) from a tc program, over an skb dynptr and over a local
// one alike (kerneldiff's TestKernel_SliceRdwrRefused).
var refusedKfuncs = map[string]syscall.Errno{"bpf_dynptr_slice_rdwr": syscall.EPERM}

// progTypes is a set of the program types the engine loads.
type progTypes uint8

const (
	forTC      progTypes = 1 << iota // BPF_PROG_TYPE_SCHED_CLS
	forSyscall                       // BPF_PROG_TYPE_SYSCALL
)

// kfuncBase is the helper ID of the first kfunc, above every helper.
const kfuncBase = 0x4000

// kfuncID is the helper ID the linker gives a kfunc call from a program
// of type t; allowed is false for a kfunc the kernel does not register for
// t, ok false for one the engine does not implement.
func kfuncID(name string, t progTypes) (id asm.BuiltinFunc, allowed, ok bool) {
	for i, k := range kfuncs {
		if k.name == name {
			return asm.BuiltinFunc(kfuncBase + i), k.progs&t != 0, true
		}
	}
	return 0, false, false
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
// dynptrSKB as its data, a local one (bpf_dynptr_from_mem) the address of
// its memory.
const (
	dynptrSKB       = 0x736b622d64796e70 // "skb-dynp"
	dynptrTypeLocal = 1                  // BPF_DYNPTR_TYPE_LOCAL
	dynptrTypeSKB   = 3                  // BPF_DYNPTR_TYPE_SKB
	dynptrSizeMask  = 1<<24 - 1
	dynptrRdonly    = 1 << 31
	dynptrBytes     = 16
)

// dynptrKern is a decoded struct bpf_dynptr_kern.
type dynptrKern struct {
	data      uint64 // dynptrSKB or a local dynptr's address; 0: NULL
	size, off uint32
	typ       uint32
	rdonly    bool
}

// putDynptr stores d at b (16 bytes of the program's stack).
func putDynptr(b []byte, d dynptrKern) {
	le := binary.LittleEndian
	sz := d.size&dynptrSizeMask | d.typ<<28
	if d.rdonly {
		sz |= dynptrRdonly
	}
	le.PutUint64(b[0:], d.data)
	le.PutUint32(b[8:], sz)
	le.PutUint32(b[12:], d.off)
}

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
	putDynptr(b, dynptrKern{data: dynptrSKB, size: uint32(p.Len()), typ: dynptrTypeSKB})
	return 0, nil
}

// dynptrFromMem is bpf_dynptr_from_mem(data, size, flags, ptr): a local
// dynptr over memory the verifier checked, or a NULL one and -E2BIG for a
// size above 16 MiB - 1 or -EINVAL for non-zero flags.
func dynptrFromMem(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	b, err := m.Mem(r4, dynptrBytes, true)
	if err != nil {
		return 0, err
	}
	clear(b)
	size := uint32(r2)
	switch {
	case size > dynptrSizeMask:
		return errno(linuxerr.E2BIG), nil
	case r3 != 0:
		return errno(linuxerr.EINVAL), nil
	}
	if _, err := memArg(m, r1, r2, false); err != nil {
		return 0, err
	}
	putDynptr(b, dynptrKern{data: r1, size: size, typ: dynptrTypeLocal})
	return 0, nil
}

// dynptr reads a dynptr argument: data 0 for a NULL one; an initialised
// dynptr of a kind the engine does not make is an error.
func dynptr(m *vm.Machine, addr uint64) (dynptrKern, error) {
	b, err := m.Mem(addr, dynptrBytes, false)
	if err != nil {
		return dynptrKern{}, err
	}
	le := binary.LittleEndian
	sz := le.Uint32(b[8:])
	d := dynptrKern{data: le.Uint64(b), size: sz & dynptrSizeMask, off: le.Uint32(b[12:]),
		typ: sz >> 28 & 7, rdonly: sz&dynptrRdonly != 0}
	switch {
	case d.data == 0:
		return dynptrKern{}, nil
	case d.typ == dynptrTypeSKB && d.data == dynptrSKB && executor(m).ctx.pkt != nil, d.typ == dynptrTypeLocal:
		return d, nil
	}
	return dynptrKern{}, fmt.Errorf("dynptr at %#x: not a local dynptr or an skb one in a packet run (the engine makes no other kind): %w", addr, syscall.EINVAL)
}

// bytes is __bpf_dynptr_data (bpf_dynptr_slice without a buffer): n bytes
// of d from at, nil when out of its bounds; an skb is linear here, so
// skb_pointer_if_linear only fails past the tail.
func (d dynptrKern) bytes(m *vm.Machine, at, n uint32, write bool) ([]byte, error) {
	if d.data == 0 || !checkOffLen(d.size, at, n) {
		return nil, nil
	}
	start := uint64(d.off) + uint64(at)
	if d.typ == dynptrTypeLocal {
		return m.Mem(d.data+start, uint64(n), write)
	}
	_, p := packet(m)
	if start+uint64(n) > uint64(p.Len()) {
		return nil, nil
	}
	return m.Mem(vm.PacketAddr(int(start)), uint64(n), write)
}

// checkOffLen is bpf_dynptr_check_off_len.
func checkOffLen(size, off, n uint32) bool { return n <= size && off <= size-n }

// dynptrRead is bpf_dynptr_read(dst, len, src, offset, flags).
func dynptrRead(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	dst, err := memArg(m, r1, r2, true)
	if err != nil {
		return 0, err
	}
	d, err := dynptr(m, r3)
	switch {
	case err != nil:
		return 0, err
	case d.data == 0 || r5 != 0:
		return errno(linuxerr.EINVAL), nil
	case !checkOffLen(d.size, uint32(r4), uint32(r2)):
		return errno(linuxerr.E2BIG), nil
	}
	if d.typ == dynptrTypeLocal {
		src, err := d.bytes(m, uint32(r4), uint32(r2), false)
		if err != nil {
			return 0, err
		}
		copy(dst, src)
		return 0, nil
	}
	_, p := packet(m)
	return ret(p.LoadBytes(d.off+uint32(r4), dst)), nil
}

// dynptrWrite is bpf_dynptr_write(dst, offset, src, len, flags): for an
// skb dynptr, bpf_skb_store_bytes with the flags.
func dynptrWrite(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	src, err := memArg(m, r3, r4, false)
	if err != nil {
		return 0, err
	}
	d, err := dynptr(m, r1)
	switch {
	case err != nil:
		return 0, err
	case d.data == 0 || d.rdonly:
		return errno(linuxerr.EINVAL), nil
	case !checkOffLen(d.size, uint32(r2), uint32(r4)):
		return errno(linuxerr.E2BIG), nil
	}
	if d.typ == dynptrTypeLocal {
		if r5 != 0 {
			return errno(linuxerr.EINVAL), nil
		}
		dst, err := d.bytes(m, uint32(r2), uint32(r4), true)
		if err != nil {
			return 0, err
		}
		copy(dst, src)
		return 0, nil
	}
	x, p := packet(m)
	return x.changed(p.StoreBytes(d.off+uint32(r2), src, r5))
}

// dynptrAdjust is bpf_dynptr_adjust(ptr, start, end): the dynptr narrowed
// to [start, end) of its current view.
func dynptrAdjust(m *vm.Machine, r1, r2, r3, _, _ uint64) (uint64, error) {
	d, err := dynptr(m, r1)
	if err != nil {
		return 0, err
	}
	start, end := uint32(r2), uint32(r3)
	switch {
	case d.data == 0 || start > end:
		return errno(linuxerr.EINVAL), nil
	case start > d.size || end > d.size:
		return errno(linuxerr.ERANGE), nil
	}
	b, err := m.Mem(r1, dynptrBytes, true)
	if err != nil {
		return 0, err
	}
	d.off += start
	d.size = end - start
	putDynptr(b, d)
	return 0, nil
}

// dynptrSlice is bpf_dynptr_slice(ptr, offset, buffer, buffer__szk): the
// packet is linear, so the slice is a pointer into it (NULL when out of
// range); the buffer is not used.
func dynptrSlice(m *vm.Machine, r1, r2, _, r4, _ uint64) (uint64, error) {
	d, err := dynptr(m, r1)
	if err != nil || d.data == 0 || !checkOffLen(d.size, uint32(r2), uint32(r4)) {
		return 0, err
	}
	at := uint64(d.off) + uint64(uint32(r2))
	if d.typ == dynptrTypeLocal {
		return d.data + at, nil
	}
	_, p := packet(m)
	if at+uint64(uint32(r4)) > uint64(p.Len()) {
		return 0, nil // skb_header_pointer past the tail
	}
	return vm.PacketAddr(int(at)), nil
}

// dynptrSize is bpf_dynptr_size(ptr) (u32; -EINVAL for a NULL dynptr).
func dynptrSize(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	d, err := dynptr(m, r1)
	if err != nil {
		return 0, err
	}
	if d.data == 0 {
		return uint64(uint32(errno(linuxerr.EINVAL))), nil
	}
	return uint64(d.size), nil
}
