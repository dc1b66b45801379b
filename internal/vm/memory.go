package vm

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// access translates an access of n bytes at addr needing the perm bits in
// need, and returns the n bytes, or nil if the program does not hold them.
// The fast path is one index and three compares; slotted and policed
// regions take accessSlow.
func (m *Machine) access(addr uint64, n uint32, need uint8) []byte {
	id := addr >> 32
	if id >= uint64(len(m.regions)) {
		return nil
	}
	r := &m.regions[id]
	o := uint32(addr)
	if o < r.lo || uint64(o)+uint64(n) > uint64(r.hi) || r.perm&(need|permSlow) != need {
		return r.accessSlow(o, n, need)
	}
	if need&permWrite != 0 && id == uint64(RegionStack) {
		// Remember what to zero before the next run (see Machine.reset).
		m.dirtyLo, m.dirtyHi = min(m.dirtyLo, o), max(m.dirtyHi, o+n)
	}
	i := o - r.base
	return r.buf[i : i+n : i+n]
}

func (r *region) accessSlow(o, n uint32, need uint8) []byte {
	if r.perm&need != need || r.perm&permHook != 0 || o < r.lo || uint64(o)+uint64(n) > uint64(r.hi) {
		return nil
	}
	i := o - r.base
	if r.stride != 0 && r.slotRem(i)+uint64(n) > uint64(r.slot) {
		return nil
	}
	if r.policy != nil && !r.policy.Allows(int(i), int(n), need&permWrite != 0) {
		return nil
	}
	return r.buf[i : i+n : i+n]
}

// slotRem is i % stride without a division (Lemire, Kaser, Kurz: "Faster
// remainder by direct computation", 2019): exact for 32-bit i and stride.
func (r *region) slotRem(i uint32) uint64 {
	if r.stride == 1 {
		return 0
	}
	lowbits := r.magic * uint64(i)
	hi, _ := bits.Mul64(lowbits, uint64(r.stride))
	return hi
}

// loadSlow completes a load access refused: through the context
// accessor, or as a fault.
func (m *Machine) loadSlow(addr uint64, n uint32, pc int) (uint64, error) {
	if o, ok := m.ctxHook(addr, n, false); ok {
		if ci := &m.ctxImg; ci.fresh != nil && *ci.fresh == CtxAllWords {
			if src, mask, _, ok := ci.plain.image(o, int(n), false); ok {
				var w [8]byte
				copy(w[:], ci.img[src:src+int(n)])
				return binary.LittleEndian.Uint64(w[:]) & mask, nil
			}
		}
		if v, ok := m.ctxAcc.LoadCtx(o, int(n)); ok {
			return v, nil
		}
	}
	return 0, m.memFault(m.prog, pc, addr, n, permRead)
}

// storeSlow is loadSlow for stores by op pc; v is the whole source
// (register or sign-extended immediate), as the kernel's conversions see
// it. The conversions tell the two apart: an immediate is compared with a
// conditional store's bound as a signed 32-bit number, a register as an
// unsigned 64-bit one (queue_mapping: -1 stored as BPF_ST is 0xffff,
// from a register it is dropped).
func (m *Machine) storeSlow(addr uint64, n uint32, v uint64, pc int) error {
	if o, ok := m.ctxHook(addr, n, true); ok {
		imm := m.prog.code[pc].kind < kStxB
		if ci := &m.ctxImg; ci.fresh != nil && *ci.fresh == CtxAllWords {
			if src, mask, below, ok := ci.plain.image(o, int(n), true); ok {
				*ci.dirty |= CtxDirtyWords(o, int(n))
				if below != 0 && (v >= below && !imm || int64(v) >= int64(below) && imm) {
					return nil // dropped, as StoreCtx drops it
				}
				var w [8]byte
				binary.LittleEndian.PutUint64(w[:], v&mask)
				copy(ci.img[src:src+int(n)], w[:n])
				return nil
			}
		}
		if s, ok := m.ctxAcc.(ContextImmStorer); ok && imm {
			if s.StoreCtxImm(o, int(n), int32(v)) {
				return nil
			}
		} else if m.ctxAcc.StoreCtx(o, int(n), v) {
			return nil
		}
	}
	return m.memFault(m.prog, pc, addr, n, permRead|permWrite)
}

// ctxHook reports whether addr is a context access for the accessor to
// perform (in bounds and, if the program has a policy, allowed by it).
func (m *Machine) ctxHook(addr uint64, n uint32, write bool) (int, bool) {
	r := &m.regions[RegionCtx]
	o := uint32(addr)
	if addr>>32 != uint64(RegionCtx) || r.perm&permHook == 0 || uint64(o)+uint64(n) > uint64(r.hi) {
		return 0, false
	}
	if r.policy != nil && !r.policy.Allows(int(o), int(n), write) {
		return 0, false
	}
	return int(o), true
}

// classify explains why access(addr, n, need) failed.
func (m *Machine) classify(addr uint64, n uint32, need uint8) FaultKind {
	id := addr >> 32
	if id >= uint64(len(m.regions)) {
		return FaultUnmapped
	}
	r := &m.regions[id]
	o := uint32(addr)
	switch {
	case r.perm == 0, id == uint64(RegionPacket) && uint64(o) < PacketBase:
		return FaultUnmapped
	case need&permAtomic != 0 && r.perm&permAtomic == 0 && r.perm&permWrite != 0:
		return FaultNoAtomic
	case need&^permRead != 0 && r.perm&permWrite == 0:
		return FaultReadOnly
	case o < r.lo || uint64(o)+uint64(n) > uint64(r.hi):
		return FaultOutOfBounds
	case r.stride != 0 && r.slotRem(o-r.base)+uint64(n) > uint64(r.slot):
		return FaultSlot
	case r.policy != nil, r.perm&permHook != 0:
		return FaultCtxAccess
	}
	return FaultOutOfBounds
}

// locate fills in the space and offset of a faulting access.
func (m *Machine) locate(f *Fault) {
	id, o := f.Addr>>32, int64(uint32(f.Addr))
	if id >= uint64(len(m.regions)) {
		return
	}
	r := &m.regions[id]
	switch {
	case id == uint64(RegionPacket):
		if o < int64(PacketBase) || r.buf == nil {
			return
		}
		f.Space, f.Off = SpacePacket, o-int64(PacketBase)-int64(m.pktData)
		f.Len = int64(m.pktEnd) - int64(m.pktData)
	case id == uint64(RegionStack):
		f.Space, f.Off = SpaceStack, o-int64((m.depth+1)*StackSize)
	case id == uint64(RegionCtx):
		if r.hi == 0 {
			return
		}
		f.Space, f.Off, f.Len = SpaceContext, o, int64(r.hi)
	case id == uint64(RegionCode):
		f.Space = SpaceCode
	case id < firstShared:
		if r.perm != 0 {
			f.Space, f.Off, f.Len = SpaceDynamic, o, int64(r.hi)
		}
	case r.perm != 0:
		f.Space, f.Off, f.Slot, f.Len = SpaceMapValue, o-int64(r.base), 0, int64(r.hi)-int64(r.base)
		if r.stride != 0 {
			f.Slot = int((o - int64(r.base)) / int64(r.stride))
			f.Off = (o - int64(r.base)) % int64(r.stride)
			f.Len = int64(r.slot)
		}
	}
}

// memFault builds (and counts) the fault for a failed access by op pc.
func (m *Machine) memFault(p *Program, pc int, addr uint64, n uint32, need uint8) *Fault {
	return m.fault(p, pc, FaultKind(0), addr, n, need)
}

func (m *Machine) fault(p *Program, pc int, kind FaultKind, addr uint64, n uint32, need uint8) *Fault {
	if kind == 0 {
		kind = m.classify(addr, n, need)
	}
	f := &Fault{PC: -1, Addr: addr, Size: int(n), Write: need&^permRead != 0, Kind: kind, Slot: -1}
	m.locate(f)
	if p == nil {
		return f
	}
	p.faults.Add(1)
	f.prog = p
	if pc >= 0 && pc < len(p.insn) {
		f.PC = int(p.insn[pc])
	}
	return f
}

// Mem gives a helper the memory behind a pointer argument: size bytes at
// addr, writable if write. The slice aliases program memory and is valid
// until the helper returns (or, for the packet, until SetPacket). A size of 0
// yields (nil, nil). The error is a *Fault, counted like any other; return
// it from the helper to abort the run.
func (m *Machine) Mem(addr, size uint64, write bool) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	if m.prog == nil {
		return nil, errNotRunning
	}
	need := permRead
	if write {
		need |= permWrite
	}
	if size > math.MaxUint32 {
		return nil, m.fault(m.cur(), m.pc, FaultOutOfBounds, addr, math.MaxUint32, need)
	}
	b := m.access(addr, uint32(size), need)
	if b == nil {
		return nil, m.memFault(m.cur(), m.pc, addr, uint32(size), need)
	}
	return b, nil
}

// atomicOp runs a validated BPF_ATOMIC instruction of n (4 or 8) bytes on
// b, which access has checked and which is naturally aligned.
func atomicOp(o *op, b []byte, regs *[256]uint64, n uint32) {
	src := &regs[o.src]
	if n == 4 {
		ptr := word32(b)
		switch o.imm {
		case atomicCmpxchg:
			regs[0] = uint64(cas32(ptr, uint32(regs[0]), uint32(*src)))
		default:
			old := rmw32(ptr, o.imm&^atomicFetch, uint32(*src))
			if o.imm&atomicFetch != 0 {
				*src = uint64(old)
			}
		}
		return
	}
	ptr := word64(b)
	switch o.imm {
	case atomicCmpxchg:
		regs[0] = cas64(ptr, regs[0], *src)
	default:
		old := rmw64(ptr, o.imm&^atomicFetch, *src)
		if o.imm&atomicFetch != 0 {
			*src = old
		}
	}
}

// SKF_LL_OFF: negative LD_ABS offsets from here address the MAC header,
// which for tc is where data starts.
const skfLLOff = -0x200000

// ldAbs is the legacy packet load: size bytes at data+off, big-endian.
func (m *Machine) ldAbs(off int64, size int64) (uint64, bool) {
	if off < 0 {
		if off < skfLLOff || off >= skfLLOff+0x100000 {
			return 0, false
		}
		off -= skfLLOff
	}
	r := &m.regions[RegionPacket]
	if off+size > int64(m.pktEnd)-int64(m.pktData) {
		return 0, false
	}
	b := r.buf[int64(m.pktData)+off:]
	switch size {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), true
	default:
		return uint64(binary.BigEndian.Uint32(b)), true
	}
}
