package engine

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/internal/bpfcrypto"
	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
)

// The BPF crypto kfuncs (kernel/bpf/crypto.c) over package bpfcrypto. A
// struct bpf_crypto_ctx is a handle in the collection's address space
// standing for a *bpfcrypto.Ctx: programs compare it, pass it on and store
// it in a map's __kptr field, and any load through it faults. It is
// unmapped when its last reference goes, so a pointer kept past that
// (which the kernel's verifier forbids) names nothing.

// cryptoCtxCreate is bpf_crypto_ctx_create(params, params__sz, err), for
// syscall programs.
func cryptoCtxCreate(m *vm.Machine, r1, r2, r3, _, _ uint64) (uint64, error) {
	params, err := memArg(m, r1, r2, false)
	if err != nil {
		return 0, err
	}
	errOut, err := m.Mem(r3, 4, true)
	if err != nil {
		return 0, err
	}
	ctx, e := bpfcrypto.New(params, uint32(r2))
	binary.LittleEndian.PutUint32(errOut, uint32(int32(e)))
	if ctx == nil {
		return 0, nil
	}
	return executor(m).coll.as.NewHandle(ctx), nil
}

// cryptoCtx resolves a struct bpf_crypto_ctx argument; the verifier only
// lets a trusted one through, so anything else aborts the run. A context
// whose last reference another run dropped meanwhile is still found (RCU:
// the kernel frees it after the readers of the moment are done).
func cryptoCtx(m *vm.Machine, ptr uint64) (*bpfcrypto.Ctx, error) {
	obj, _ := m.Object(ptr)
	c, ok := obj.(*bpfcrypto.Ctx)
	if !ok {
		return nil, fmt.Errorf("argument %#x is not a struct bpf_crypto_ctx: %w", ptr, syscall.EINVAL)
	}
	return c, nil
}

// cryptoCtxAcquire is bpf_crypto_ctx_acquire(ctx): ctx with one more
// reference, NULL if its count already dropped to zero.
func cryptoCtxAcquire(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	c, err := cryptoCtx(m, r1)
	if err != nil {
		return 0, err
	}
	if !c.Acquire() {
		return 0, nil
	}
	return r1, nil
}

// cryptoCtxRelease is bpf_crypto_ctx_release(ctx).
func cryptoCtxRelease(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	if _, err := cryptoCtx(m, r1); err != nil {
		return 0, err
	}
	executor(m).coll.releaseKptr(r1)
	return 0, nil
}

// releaseKptr drops one reference to the object behind a kptr: a map's
// release on update and destruction, and bpf_crypto_ctx_release.
func (c *Collection) releaseKptr(ptr uint64) {
	obj, _ := c.as.Object(ptr)
	if ctx, ok := obj.(*bpfcrypto.Ctx); ok && ctx.Release() {
		c.as.Unmap(ptr) //nolint:errcheck // the handle is mapped: Object found it
	}
}

func cryptoEncrypt(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	return cryptoCrypt(m, r1, r2, r3, r4, false)
}

func cryptoDecrypt(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	return cryptoCrypt(m, r1, r2, r3, r4, true)
}

// cryptoCrypt is bpf_crypto_crypt(ctx, src, dst, siv__nullable, decrypt),
// its checks in the kernel's order, each -EINVAL.
func cryptoCrypt(m *vm.Machine, r1, r2, r3, r4 uint64, decrypt bool) (uint64, error) {
	c, err := cryptoCtx(m, r1)
	if err != nil {
		return 0, err
	}
	src, err := dynptr(m, r2)
	if err != nil {
		return 0, err
	}
	dst, err := dynptr(m, r3)
	if err != nil {
		return 0, err
	}
	var siv dynptrKern
	if r4 != 0 {
		if siv, err = dynptr(m, r4); err != nil {
			return 0, err
		}
	}
	inval := errno(linuxerr.EINVAL)
	if dst.rdonly {
		return inval, nil
	}
	srcLen, dstLen, sivLen := src.size, dst.size, siv.size
	if src.data == 0 {
		srcLen = 0
	}
	if dst.data == 0 {
		dstLen = 0
	}
	if siv.data == 0 {
		sivLen = 0
	}
	if srcLen == 0 || dstLen == 0 || srcLen > dstLen || int(sivLen) != c.IVSize() {
		return inval, nil
	}
	in, err := src.bytes(m, 0, srcLen, false)
	if err != nil || in == nil {
		return inval, err
	}
	out, err := dst.bytes(m, 0, dstLen, true)
	if err != nil || out == nil || dst.rdonly {
		return inval, err
	}
	var iv []byte
	if sivLen != 0 {
		if siv.rdonly {
			return inval, nil
		}
		if iv, err = siv.bytes(m, 0, sivLen, true); err != nil || iv == nil {
			return inval, err
		}
	}
	return uint64(int64(c.Crypt(in, out, iv, decrypt))), nil
}

// kptrXchg is bpf_kptr_xchg(dst, ptr): an atomic exchange of the 8-byte
// kptr field of a map value at dst (the verifier sees that it is one).
func kptrXchg(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	b, err := m.Mem(r1, 8, true)
	if err != nil {
		return 0, err
	}
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%8 != 0 {
		return 0, fmt.Errorf("bpf_kptr_xchg at %#x: misaligned: %w", r1, syscall.EINVAL)
	}
	return atomic.SwapUint64((*uint64)(p), r2), nil
}

// kptrOffsets lists the value offsets of t's referenced kptr fields (a
// pointer tagged "kptr"), in nested structs and arrays too.
func kptrOffsets(t btf.Type, base uint32, out []uint32) []uint32 {
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		for _, mb := range t.Members {
			off := base + mb.Offset.Bytes()
			if p, ok := btf.UnderlyingType(mb.Type).(*btf.Pointer); ok {
				if tag, ok := p.Target.(*btf.TypeTag); ok && tag.Value == "kptr" {
					out = append(out, off)
				}
				continue
			}
			out = kptrOffsets(mb.Type, off, out)
		}
	case *btf.Array:
		size, err := btf.Sizeof(t.Type)
		if err != nil || size == 0 || t.Nelems > 1024 {
			return out
		}
		for i := range t.Nelems {
			out = kptrOffsets(t.Type, base+i*uint32(size), out)
		}
	}
	return out
}

// setKptrs tells a map of ms the kptr fields of its values. Only arrays
// model them; another map type with kptrs is left out (ENOTSUP), refused
// only if a program uses it.
func (c *Collection) setKptrs(name string, m maps.Map, ms *ebpf.MapSpec) error {
	if ms.Value == nil {
		return nil
	}
	offs := kptrOffsets(ms.Value, 0, nil)
	if len(offs) == 0 {
		return nil
	}
	a, ok := m.(*maps.Array)
	if !ok {
		return fmt.Errorf("map %q: __kptr fields in a %s map are not modelled (arrays only): %w", name, ms.Type, syscall.ENOTSUP)
	}
	return a.SetKptrs(offs, c.releaseKptr)
}

// freeKptrs drops the references the collection's maps hold, as the
// kernel does when it destroys them.
func (c *Collection) freeKptrs() {
	for _, e := range c.entries {
		if _, shared := c.opts.MapReplacements[e.name]; shared {
			continue
		}
		if a, ok := e.m.(*maps.Array); ok {
			a.FreeKptrs()
		}
	}
}
