package vm

import x "github.com/tcxgo/tcx/internal/vm/amd64"

// arrayLookup emits the Options.ArrayLookup helper call at op pc for the
// handles of AddressSpace.NewArrayHandle: the 4-byte index read through
// r2 as Machine.Mem reads a helper's argument, then r0 = arrBase[cpu] +
// index*arrStride, or 0 past the end. Every other handle, a key the
// translation refuses and a CPU without a base call the helper in Go,
// which answers the same way and faults the same way.
func (c *jitc) arrayLookup(pc int) {
	a := &c.a
	slow := c.stub(pc, exitHelper)
	null, done := a.NewLabel(), a.NewLabel()
	// mapLookup has recorded the call (helperEntry).
	c.arrayIndex(pc, slow)
	c.handleRegion(slow)
	a.Load(8, jT1, x.M(jState, offCPU))
	a.ALURM(true, x.CMP, jT1, x.M(jCX, offRArrB+8)) // no bases: not an array
	a.Jcc(x.CondAE, slow)
	a.ALURM(false, x.CMP, jT0, x.M(jCX, offRArrN))
	a.Jcc(x.CondAE, null)
	a.ShiftRI(true, x.SHL, jT1, 3)
	a.Load(8, x.RAX, x.M(jCX, offRArrB))
	a.Load(8, x.RAX, x.MI(x.RAX, jT1, 0))
	a.Load(4, jT1, x.M(jCX, offRArrS))
	a.ImulRR(true, jT0, jT1)
	a.ALURR(true, x.ADD, x.RAX, jT0)
	a.Jmp(done)
	a.Bind(null)
	a.ALURR(false, x.XOR, x.RAX, x.RAX)
	a.Bind(done)
}

// arrayIndex puts the 4-byte key r2 points to at op pc in r11,
// zero-extended, read as Machine.Mem reads a helper's argument, or jumps
// to slow if that translation refuses it. It clobbers r10 and rcx.
func (c *jitc) arrayIndex(pc int, slow x.Label) {
	a := &c.a
	if f := c.facts[pc][2]; f.known && f.off >= -StackSize && f.off+4 <= 0 {
		// The key is in the frame (see stackProofs).
		a.Load(4, jT0, c.stackAt(int32(f.off)))
		return
	}
	a.MovRR(true, jT0, jitReg[2])
	c.translateCallAs(4, permRead, false, slow)
	a.Load(4, jT0, x.M(jT0, 0))
}

// arrayKeyBit marks the keys of arrayMemo's verdicts, which constKey's
// never have (theirs end below bit 57).
const arrayKeyBit = 1 << 60

// arrayHandle reports the handle r1 is proven to hold at the helper call
// at op pc if it named an array (NewArrayHandle) when the program was
// compiled: arrayMemo's case. What the handle names at run time is
// checked again; this only chooses the code.
func (c *jitc) arrayHandle(pc int) (uint64, bool) {
	f := c.facts[pc][1]
	if !f.cnst || uint32(f.val) != 0 || f.val>>32 < firstShared || f.val>>32 >= 1<<20 || c.p.as == nil {
		return 0, false
	}
	r, _ := c.p.as.lookup(f.val) // a handle has no permissions: not ok
	return f.val, len(r.arrBase) > 0 && r.hash == nil
}

// arrayMemo is arrayLookup for the array handle h that r1 is proven to
// hold, used as constAccess uses a proven address (the constant, not the
// register, so that even a wrong proof could not reach another map than
// h). What arrayLookup reads from h's region (the CPU's base, the entry
// count and stride) is fixed until the shared regions change, so the
// Machine memoizes it with the verdicts on constant accesses
// (constMemoAt, which forgetSlots empties at every rebind), together with
// the CPU it was read for: a lookup is then the index, two compares and
// a multiply. A miss reads the region as arrayLookup does and fills the
// entry; a region that is no array (any more) goes to Go.
func (c *jitc) arrayMemo(pc int, h uint64) {
	a := &c.a
	slow := c.stub(pc, exitHelper)
	key := h | arrayKeyBit
	e := constMemoAt(key)
	lo, cpu, n, stride, base := x.M(jState, e+offMemoLo), x.M(jState, e+offMemoMax),
		x.M(jState, e+offMemoMax+8), x.M(jState, e+offMemoMax+16), x.M(jState, e+offMemoDelta)
	miss, hit, null, done := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	// mapLookup has recorded the call (helperEntry).
	c.arrayIndex(pc, slow)
	a.MovRI64(jT1, key)
	a.ALURM(true, x.CMP, jT1, lo)
	a.Jcc(x.CondNE, miss)
	a.Load(8, jT1, x.M(jState, offCPU))
	a.ALURM(true, x.CMP, jT1, cpu)
	a.Jcc(x.CondNE, miss)
	a.Bind(hit)
	a.ALURM(true, x.CMP, jT0, n)
	a.Jcc(x.CondAE, null)
	a.Load(8, jT1, stride)
	a.ImulRR(true, jT0, jT1)
	a.Load(8, x.RAX, base)
	a.ALURR(true, x.ADD, x.RAX, jT0)
	a.Jmp(done)
	a.Bind(null)
	a.ALURR(false, x.XOR, x.RAX, x.RAX)
	a.Bind(done)
	c.late = append(c.late, func() {
		// The region h names now, as handleRegion finds it, with the
		// checks of arrayLookup; the index stays in r11.
		r := int32(h >> 32)
		a.Bind(miss)
		a.ALUMI(true, x.CMP, x.M(jState, offRegions+8), r)
		a.Jcc(x.CondBE, slow)
		a.Load(8, jCX, x.M(jState, offRegions))
		a.ALURI(true, x.ADD, jCX, r*regionSize)
		a.ALUMI(true, x.CMP, x.M(jCX, offRHash), 0) // a hash map now: Go answers
		a.Jcc(x.CondNE, slow)
		a.Load(8, jT1, x.M(jState, offCPU))
		a.ALURM(true, x.CMP, jT1, x.M(jCX, offRArrB+8)) // no bases: not an array
		a.Jcc(x.CondAE, slow)
		a.Store(8, cpu, jT1)
		a.ShiftRI(true, x.SHL, jT1, 3)
		a.ALURM(true, x.ADD, jT1, x.M(jCX, offRArrB))
		a.Load(8, jT1, x.M(jT1, 0))
		a.Store(8, base, jT1)
		a.Load(4, jT1, x.M(jCX, offRArrN))
		a.Store(8, n, jT1)
		a.Load(4, jT1, x.M(jCX, offRArrS))
		a.Store(8, stride, jT1)
		a.MovRI64(jT1, key)
		a.Store(8, lo, jT1)
		a.Jmp(hit)
	})
}
