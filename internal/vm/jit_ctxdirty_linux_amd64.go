package vm

import (
	"math"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// The emitters of a context image store's dirty record (ContextImage):
// *ctxDirty |= the bits of the 4-byte words the store addresses, so that
// the owner converts only those fields after the run. jitContext
// publishes the image only for contexts of at most 64 words, so a word's
// bit is its index.

// ctxMarkConst marks the words of an n-byte store at the constant context
// offset off: one OR of an immediate. It uses r10, and scratch when the
// bits do not fit a sign-extended 32-bit immediate (tstamp's words, 38
// and 39).
func (c *jitc) ctxMarkConst(off int32, n int, scratch x.Reg) {
	a := &c.a
	bits := CtxDirtyWords(int(off), n)
	a.Load(8, jT1, x.M(jState, offCtxDirt))
	if bits <= math.MaxInt32 {
		a.ALUMI(true, x.OR, x.M(jT1, 0), int32(bits))
		return
	}
	a.MovRI64(scratch, bits)
	a.ALUMR(true, x.OR, x.M(jT1, 0), scratch)
}

// ctxMarkReg marks the words of an n-byte store at the context offset in
// off (r11 or rcx, which it keeps): ((1<<count)-1) << (off>>2), count
// the words from off to off+n-1. It uses r10 and whichever of r11 and
// rcx does not hold the offset.
func (c *jitc) ctxMarkReg(off x.Reg, n int) {
	a := &c.a
	if off == jCX {
		a.MovRR(true, jT0, jCX)
	}
	a.MovRR(false, jCX, jT0)
	a.ALURI(false, x.AND, jCX, 3)
	a.ALURI(false, x.ADD, jCX, int32(n+3))
	a.ShiftRI(false, x.SHR, jCX, 2) // the count of words, 1 to 3
	a.MovRI64(jT1, 1)
	a.ShiftRCL(true, x.SHL, jT1)
	a.ALURI(true, x.SUB, jT1, 1)
	a.MovRR(false, jCX, jT0)
	a.ShiftRI(false, x.SHR, jCX, 2) // the first word
	a.ShiftRCL(true, x.SHL, jT1)
	ptr := jCX
	if off == jCX {
		a.MovRR(true, jCX, jT0)
		ptr = jT0
	}
	a.Load(8, ptr, x.M(jState, offCtxDirt))
	a.ALUMR(true, x.OR, x.M(ptr, 0), jT1)
}
