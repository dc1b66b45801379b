package vm

import (
	"unsafe"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// This file compiles the helper calls Options.PacketHelpers describes
// (pkthelp.go). Each call site checks every condition of the operation's
// common case with rcx, r10 and r11 only, so that a declined call leaves
// to Go (exitHelper) with every BPF register as it was; only a call that
// will be performed writes rax (r0). r1-r5 are preserved, as the
// interpreter's helper calls leave them.

var (
	offPh       = offJIT + int32(unsafe.Offsetof(jitState{}.ph))
	offPhData   = offPh + int32(unsafe.Offsetof(pktHelpState{}.data))
	offPhLen    = offPh + int32(unsafe.Offsetof(pktHelpState{}.len))
	offPhState  = offPh + int32(unsafe.Offsetof(pktHelpState{}.state))
	offPhRecord = offPh + int32(unsafe.Offsetof(pktHelpState{}.record))
	offPhSpill  = offPh + int32(unsafe.Offsetof(pktHelpState{}.spill))
)

// pktHelper emits the helper call at op pc as h describes, or reports
// false (nothing emitted) when the site cannot be compiled: the caller
// then leaves to Go for it.
func (c *jitc) pktHelper(pc int, h PacketHelper) bool {
	if h.Op == PacketStore || h.Op == PacketLoad {
		if f := c.facts[pc][4]; !f.cnst || uint32(f.val) == 0 || uint32(f.val) > maxPacketCopy {
			return false
		}
	}
	// What Go records at a helper call (a later fault reports these
	// steps, as the interpreter's does).
	c.helperEntry(pc)
	switch h.Op {
	case PacketCsumReplace:
		c.csumReplace(pc, h)
	case PacketRecord:
		c.pktRecord(pc, h)
	case PacketStore, PacketLoad:
		return c.pktCopy(pc, h)
	default:
		return false
	}
	return true
}

// pktFlags jumps to slow if the flags in r have a bit outside allowed.
func (c *jitc) pktFlags(r x.Reg, allowed uint64, slow x.Label) {
	a := &c.a
	a.MovRI64(jT0, ^allowed)
	a.TestRR(true, r, jT0)
	a.Jcc(x.CondNE, slow)
}

// pktGuard jumps to slow unless the call may be performed in the packet's
// current state: no guarded flag in r (the flags), or the published state
// byte holds a plain state.
func (c *jitc) pktGuard(h PacketHelper, r x.Reg, slow x.Label) {
	if !h.GuardAll && h.Guarded == 0 {
		return
	}
	a := &c.a
	ok := a.NewLabel()
	if !h.GuardAll {
		a.MovRI64(jT0, h.Guarded)
		a.TestRR(true, r, jT0)
		a.Jcc(x.CondE, ok)
	}
	a.Load(8, jT0, x.M(jState, offPhState))
	a.TestRR(true, jT0, jT0)
	a.Jcc(x.CondE, slow)
	a.Load(1, jCX, x.M(jT0, 0))
	a.ALURI(false, x.CMP, jCX, 7)
	a.Jcc(x.CondA, slow)
	a.MovRI64(jT0, uint64(h.Plain))
	a.ShiftRCL(false, x.SHR, jT0)
	a.TestRI(false, jT0, 1)
	a.Jcc(x.CondE, slow)
	a.Bind(ok)
}

// csumReplace emits PacketCsumReplace: r2 offset, r3 from, r4 to, r5
// flags. The arithmetic is skb/csum.go's, step for step, so that even
// the two zeros of ones' complement come out as the helper's.
func (c *jitc) csumReplace(pc int, h PacketHelper) {
	a := &c.a
	slow := c.stub(pc, exitHelper)
	r2, r3, r4, r5 := jitReg[2], jitReg[3], jitReg[4], jitReg[5]
	done := a.NewLabel()
	c.pktFlags(r5, h.Flags|0xf, slow)
	c.pktGuard(h, r5, slow)
	// The field: even, at most 0xffff, both bytes in the packet.
	a.MovRR(false, jT0, r2)
	a.TestRI(false, jT0, -0x10000|1)
	a.Jcc(x.CondNE, slow)
	a.Lea(true, jT1, x.M(jT0, 2))
	a.ALURM(true, x.CMP, jT1, x.M(jState, offPhLen))
	a.Jcc(x.CondA, slow)
	a.ALURM(true, x.ADD, jT0, x.M(jState, offPhData))
	a.Load(2, jCX, x.M(jT0, 0)) // the checksum
	if h.Mangled0 != 0 {
		// MANGLED_0 without ENFORCE leaves a zero checksum alone, before
		// the size is looked at.
		keep := a.NewLabel()
		a.MovRR(true, jT1, r5)
		a.ALURI(true, x.AND, jT1, int32(h.Mangled0|h.Enforce))
		a.ALURI(true, x.CMP, jT1, int32(h.Mangled0))
		a.Jcc(x.CondNE, keep)
		a.TestRR(false, jCX, jCX)
		a.Jcc(x.CondNE, keep)
		a.ALURR(false, x.XOR, x.RAX, x.RAX)
		a.Jmp(done)
		a.Bind(keep)
	}
	s2, s4, fold, store := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.MovRR(false, jT1, r5)
	a.ALURI(false, x.AND, jT1, 0xf)
	a.ALURI(false, x.CMP, jT1, 2)
	a.Jcc(x.CondE, s2)
	a.ALURI(false, x.CMP, jT1, 4)
	a.Jcc(x.CondE, s4)
	a.TestRR(false, jT1, jT1)
	a.Jcc(x.CondNE, slow)
	a.TestRR(true, r3, r3) // by diff: from must be 0
	a.Jcc(x.CondNE, slow)

	// From here the call is performed: rax is free.
	// csum_replace_by_diff: csumFold(csumAdd(diff, ^uint32(sum))).
	a.ALURI(false, x.XOR, jCX, -1)
	a.MovRR(false, x.RAX, r4)
	c.csumAdd32()
	a.Jmp(fold)

	a.Bind(s4)
	c.replace4(false)
	a.Jmp(fold)

	a.Bind(s2)
	if h.Wide2 {
		c.replace4(true)
		a.Jmp(fold)
	} else {
		// csum_replace2 in 16-bit arithmetic: ^csum16Add(csum16Sub(^sum, old), new).
		a.MovRR(false, x.RAX, jCX)
		a.ALURI(false, x.XOR, x.RAX, 0xffff)
		a.Movzx16(jCX, r3)
		a.ALURI(false, x.XOR, jCX, 0xffff)
		c.csum16Add()
		a.Movzx16(jCX, r4)
		c.csum16Add()
		a.ALURI(false, x.XOR, x.RAX, 0xffff)
		a.Jmp(store)
	}
	c.csumStoreAt(h, store, fold, done)
}

// replace4 is csum_replace4 before the fold, the checksum in ecx, from and
// to in r3 and r4 (zero-extended from 16 bits if zx, which makes it
// inet_proto_csum_replace2): eax = csumAdd(csumAdd(^uint32(sum), ^from), to).
func (c *jitc) replace4(zx bool) {
	a := &c.a
	a.ALURI(false, x.XOR, jCX, -1)
	a.MovRR(false, x.RAX, jitReg[3])
	if zx {
		a.Movzx16(x.RAX, x.RAX)
	}
	a.ALURI(false, x.XOR, x.RAX, -1)
	c.csumAdd32()
	a.MovRR(false, jCX, jitReg[4])
	if zx {
		a.Movzx16(jCX, jCX)
	}
	c.csumAdd32()
}

// csumStoreAt emits the fold (csumFold of eax) at fold, then the store of
// the 16-bit result in rax at store, the MANGLED_0 rule first, r0 = 0.
func (c *jitc) csumStoreAt(h PacketHelper, store, fold, done x.Label) {
	a := &c.a
	a.Bind(fold)
	for range 2 { // from32to16
		a.MovRR(false, jT1, x.RAX)
		a.ShiftRI(false, x.SHR, jT1, 16)
		a.ALURI(false, x.AND, x.RAX, 0xffff)
		a.ALURR(false, x.ADD, x.RAX, jT1)
	}
	a.ALURI(false, x.XOR, x.RAX, 0xffff)
	a.Bind(store)
	if h.Mangled0 != 0 {
		nz := a.NewLabel()
		a.TestRI(false, x.RAX, 0xffff)
		a.Jcc(x.CondNE, nz)
		a.TestRI(true, jitReg[5], int32(h.Mangled0))
		a.Jcc(x.CondE, nz)
		a.MovRI64(x.RAX, 0xffff)
		a.Bind(nz)
	}
	a.Store(2, x.M(jT0, 0), x.RAX)
	a.ALURR(false, x.XOR, x.RAX, x.RAX)
	a.Bind(done)
}

// csumAdd32 is eax = csumAdd(eax, ecx) (both zero-extended): the 33-bit
// sum's carry added back. It clobbers r10.
func (c *jitc) csumAdd32() {
	a := &c.a
	a.ALURR(true, x.ADD, x.RAX, jCX)
	a.MovRR(true, jT1, x.RAX)
	a.ShiftRI(true, x.SHR, jT1, 32)
	a.ALURR(false, x.ADD, x.RAX, jT1)
}

// csum16Add is eax = csum16Add(eax, ecx) (16-bit values). It clobbers r10.
func (c *jitc) csum16Add() {
	a := &c.a
	a.ALURR(false, x.ADD, x.RAX, jCX)
	a.MovRR(false, jT1, x.RAX)
	a.ShiftRI(false, x.SHR, jT1, 16)
	a.ALURI(false, x.AND, x.RAX, 0xffff)
	a.ALURR(false, x.ADD, x.RAX, jT1)
}

// pktRecord emits PacketRecord: r1 value, r2 flags.
func (c *jitc) pktRecord(pc int, h PacketHelper) {
	a := &c.a
	slow := c.stub(pc, exitHelper)
	r1, r2 := jitReg[1], jitReg[2]
	a.Load(8, jCX, x.M(jState, offPhRecord))
	a.TestRR(true, jCX, jCX)
	a.Jcc(x.CondE, slow)
	c.pktFlags(r2, h.Flags, slow)
	a.MovRR(true, jT0, r2)
	if h.Shift != 0 {
		a.ShiftRI(true, x.SHL, jT0, h.Shift)
	}
	a.MovRR(false, jT1, r1)
	a.ShiftRI(true, x.SHL, jT1, 32)
	a.ALURR(true, x.OR, jT0, jT1)
	a.MovRI64(jT1, h.Tag)
	a.ALURR(true, x.OR, jT0, jT1)
	a.Store(8, x.M(jCX, 0), jT0)
	a.MovRI64(x.RAX, h.Ret)
}

// pktCopy emits PacketStore (r2 offset, r3 source, r4 size, r5 flags) and
// PacketLoad (r2 offset, r3 destination, r4 size) for the size the
// analysis proves r4 holds at op pc, checked again at run time (any
// other size goes to Go); without such a proof it reports false.
func (c *jitc) pktCopy(pc int, h PacketHelper) bool {
	f := c.facts[pc][4]
	n := int(uint32(f.val))
	if !f.cnst || n == 0 || n > maxPacketCopy {
		return false
	}
	a := &c.a
	slow := c.stub(pc, exitHelper)
	r2, r3, r4, r5 := jitReg[2], jitReg[3], jitReg[4], jitReg[5]
	a.ALURI(false, x.CMP, r4, int32(n))
	a.Jcc(x.CondNE, slow)
	need := uint8(permRead | permWrite)
	if h.Op == PacketStore {
		need = permRead
		c.pktFlags(r5, h.Flags, slow)
		c.pktGuard(h, r5, slow)
	}
	// The packet's bytes: offset at most INT_MAX, all n of them there.
	a.MovRR(false, jT0, r2)
	a.TestRR(false, jT0, jT0)
	a.Jcc(x.CondL, slow) // above INT_MAX: negative as int32
	a.Lea(true, jT1, x.M(jT0, int32(n)))
	a.ALURM(true, x.CMP, jT1, x.M(jState, offPhLen))
	a.Jcc(x.CondA, slow)
	a.Store(8, x.M(jState, offPhSpill), jT0)
	// The other side, as Machine.Mem hands it to a helper.
	a.MovRR(true, jT0, r3)
	c.translateCallAs(n, need, false, slow)
	a.Load(8, jT1, x.M(jState, offPhSpill))
	a.ALURM(true, x.ADD, jT1, x.M(jState, offPhData))
	dst, src := jT1, jT0
	if h.Op == PacketLoad {
		dst, src = jT0, jT1
	}
	c.copyBytes(n, dst, src, slow)
	a.ALURR(false, x.XOR, x.RAX, x.RAX)
	return true
}

// copyBytes copies n bytes from src to dst (host addresses) as Go's copy
// does, overlapping or not: up to 16 bytes through two registers, loaded
// before either is stored; more only if the two do not overlap (else
// slow). It uses rax and rcx.
func (c *jitc) copyBytes(n int, dst, src x.Reg, slow x.Label) {
	a := &c.a
	if n <= 16 {
		type chunk struct{ off, size int }
		var cs []chunk
		switch {
		case n == 1 || n == 2 || n == 4 || n == 8:
			cs = []chunk{{0, n}}
		case n == 3:
			cs = []chunk{{0, 2}, {2, 1}}
		case n < 8:
			cs = []chunk{{0, 4}, {n - 4, 4}}
		default:
			cs = []chunk{{0, 8}, {n - 8, 8}}
		}
		regs := [2]x.Reg{x.RAX, jCX}
		for i, ch := range cs {
			a.Load(ch.size, regs[i], x.M(src, int32(ch.off)))
		}
		for i, ch := range cs {
			a.Store(ch.size, x.M(dst, int32(ch.off)), regs[i])
		}
		return
	}
	// Overlap iff -n < dst-src < n.
	a.MovRR(true, jCX, dst)
	a.ALURR(true, x.SUB, jCX, src)
	a.ALURI(true, x.ADD, jCX, int32(n-1))
	a.ALURI(true, x.CMP, jCX, int32(2*n-1))
	a.Jcc(x.CondB, slow)
	loop := a.NewLabel()
	a.ALURR(false, x.XOR, jCX, jCX)
	a.Bind(loop)
	a.Load(8, x.RAX, x.MI(src, jCX, 0))
	a.Store(8, x.MI(dst, jCX, 0), x.RAX)
	a.ALURI(true, x.ADD, jCX, 8)
	a.ALURI(true, x.CMP, jCX, int32(n&^7))
	a.Jcc(x.CondB, loop)
	if n%8 != 0 {
		a.Load(8, x.RAX, x.M(src, int32(n-8)))
		a.Store(8, x.M(dst, int32(n-8)), x.RAX)
	}
}
