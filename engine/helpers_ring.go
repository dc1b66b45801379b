package engine

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
)

func (x *Executor) ringArg(handle uint64) (*maps.RingBuf, error) {
	e, err := x.mapArg(handle)
	if err != nil {
		return nil, err
	}
	rb, ok := e.m.(*maps.RingBuf)
	if !ok {
		return nil, fmt.Errorf("map %q (%s) is not a ring buffer: %w", e.name, e.m.Info().Type, syscall.EINVAL)
	}
	return rb, nil
}

// ringbufOutput is bpf_ringbuf_output(ringbuf, data, size, flags).
func ringbufOutput(m *vm.Machine, r1, r2, r3, r4, _ uint64) (uint64, error) {
	x := executor(m)
	rb, err := x.ringArg(r1)
	if err != nil {
		return 0, err
	}
	data, err := m.Mem(r2, r3, false)
	if err != nil {
		return 0, err
	}
	return ret(rb.Output(data, r4)), nil
}

// ringbufReserve is bpf_ringbuf_reserve(ringbuf, size, flags): the record
// becomes a per-run region of exactly size bytes, so the program can
// reach neither the record headers nor other records. NULL when the ring
// is full, or when the run already holds MaxDynamicRegions records.
func ringbufReserve(m *vm.Machine, r1, r2, r3, _, _ uint64) (uint64, error) {
	x := executor(m)
	rb, err := x.ringArg(r1)
	if err != nil {
		return 0, err
	}
	if x.nresv == len(x.resv) {
		return 0, nil
	}
	off, ok := rb.Reserve(r2, r3)
	if !ok {
		return 0, nil
	}
	addr, err := m.MapDynamic(rb.Data()[off:off+int(r2):off+int(r2)], false)
	if err != nil {
		rb.Discard(off, 0)
		return 0, nil
	}
	x.resv[x.nresv] = reservation{addr: addr, rb: rb, off: off}
	x.nresv++
	return addr, nil
}

// commitRecord ends the reservation whose record starts at addr.
func (x *Executor) commitRecord(m *vm.Machine, addr, flags uint64, discard bool) (uint64, error) {
	for i := range x.nresv {
		r := &x.resv[i]
		if r.rb == nil || r.addr != addr {
			continue
		}
		var ok bool
		if discard {
			ok = r.rb.Discard(r.off, flags)
		} else {
			ok = r.rb.Submit(r.off, flags)
		}
		r.rb = nil
		if err := m.UnmapDynamic(addr); err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("ring buffer record %#x: already committed: %w", addr, syscall.EINVAL)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%#x is not a ring buffer record reserved by this run: %w", addr, syscall.EINVAL)
}

func ringbufSubmit(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	return executor(m).commitRecord(m, r1, r2, false)
}

func ringbufDiscard(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	return executor(m).commitRecord(m, r1, r2, true)
}

func ringbufQuery(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	rb, err := executor(m).ringArg(r1)
	if err != nil {
		return 0, err
	}
	return rb.Query(r2), nil
}

// perfEventOutput is bpf_perf_event_output(ctx, map, flags, data, size)
// for skb programs (bpf_skb_event_output): the sample is data followed by
// the first BPF_F_CTXLEN_MASK bytes of the packet.
func perfEventOutput(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	x, p := packet(m)
	e, err := x.mapArg(r2)
	if err != nil {
		return 0, err
	}
	pa, ok := e.m.(*maps.PerfEventArray)
	if !ok {
		return 0, fmt.Errorf("map %q (%s) is not a perf event array: %w", e.name, e.m.Info().Type, syscall.EINVAL)
	}
	data, err := m.Mem(r4, r5, false)
	if err != nil {
		return 0, err
	}
	if r3&^uint64(maps.PerfIndexMask|maps.PerfCtxLenMask) != 0 {
		return errno(linuxerr.EINVAL), nil
	}
	ctxLen := (r3 & maps.PerfCtxLenMask) >> 32
	if ctxLen > uint64(p.Len()) {
		return errno(linuxerr.EFAULT), nil
	}
	return ret(pa.Output(x.cpu, r3, data, p.Data()[:ctxLen])), nil
}

// spinLockHelper is bpf_spin_lock on a 4-byte lock word in program
// memory (a map value). The verifier guarantees a program holds at most one
// lock and releases it; here taking a second aborts the run, and a lock
// still held when the run ends is released.
func spinLockHelper(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	x := executor(m)
	if x.lock != nil {
		return 0, fmt.Errorf("bpf_spin_lock while holding a lock: %w", syscall.EDEADLK)
	}
	w, err := lockWord(m, r1)
	if err != nil {
		return 0, err
	}
	for !atomic.CompareAndSwapUint32(w, 0, 1) {
		runtime.Gosched()
	}
	x.lock = unsafe.Slice((*byte)(unsafe.Pointer(w)), 4)
	return 0, nil
}

func spinUnlockHelper(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	x := executor(m)
	w, err := lockWord(m, r1)
	if err != nil {
		return 0, err
	}
	if x.lock == nil || unsafe.Pointer(&x.lock[0]) != unsafe.Pointer(w) {
		return 0, fmt.Errorf("bpf_spin_unlock of a lock this run does not hold: %w", syscall.EINVAL)
	}
	spinUnlock(x.lock)
	x.lock = nil
	return 0, nil
}

// lockWord returns the lock word at addr, which must be writable and
// 4-byte aligned (struct bpf_spin_lock is a __u32).
func lockWord(m *vm.Machine, addr uint64) (*uint32, error) {
	b, err := m.Mem(addr, 4, true)
	if err != nil {
		return nil, err
	}
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%4 != 0 {
		return nil, fmt.Errorf("bpf_spin_lock at %#x: misaligned: %w", addr, syscall.EINVAL)
	}
	return (*uint32)(p), nil
}

func spinUnlock(lock []byte) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&lock[0])), 0)
}
