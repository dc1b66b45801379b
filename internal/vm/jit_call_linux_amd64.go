package vm

import (
	"unsafe"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// This file holds the emitters of bpf-to-bpf calls and returns, which push
// and pop the Machine's frames in machine code exactly as exec's kCall and
// kExit do, and leave to Go for whatever they cannot do alike.

var (
	offDepth    = int32(unsafe.Offsetof(Machine{}.depth))
	offProgBase = int32(unsafe.Offsetof(Machine{}.progBase))
	offProg     = int32(unsafe.Offsetof(Machine{}.prog))
	offFrames   = int32(unsafe.Offsetof(Machine{}.frames))
	frameSize   = int32(unsafe.Sizeof(frame{}))
	offFRet     = offFrames + int32(unsafe.Offsetof(frame{}.ret))
	offFProg    = offFrames + int32(unsafe.Offsetof(frame{}.prog))
	offFBase    = offFrames + int32(unsafe.Offsetof(frame{}.progBase))
	offFSaved   = offFrames + int32(unsafe.Offsetof(frame{}.saved))
	offFRetAddr = offFrames + int32(unsafe.Offsetof(frame{}.retAddr))
)

// call emits the bpf-to-bpf call at op pc: the frame limits, then
// frames[depth] = {pc+1, prog, progBase, r6-r9, the code address of op
// pc+1}, a fresh frame (enterFrame: its dirty bytes cleared, r10 and the
// stack region's end one frame up), the callee's untracked r10 stores
// marked dirty (what runNative does at a subprogram entry), and the
// charge of a jump to the callee. Go makes the call instead (exitCall)
// when a limit is hit, which faults there, and when frames[depth].prog is
// not already the running program: compiled code writes no Go pointers,
// which would need the garbage collector's write barrier.
func (c *jitc) call(pc int, o *op) {
	a := &c.a
	t := int(o.off)
	slow := c.stub(pc, exitCall)
	a.Load(8, jT0, x.M(jState, offDepth))
	a.MovRR(true, jT1, jT0)
	a.ALURM(true, x.SUB, jT1, x.M(jState, offProgBase))
	a.ALURI(true, x.CMP, jT1, MaxFrames-1)
	a.Jcc(x.CondGE, slow)
	a.ALURI(true, x.CMP, jT0, maxRunFrames-1)
	a.Jcc(x.CondGE, slow)
	a.ImulRRI(true, jCX, jT0, frameSize)
	a.ALURR(true, x.ADD, jCX, jState)
	a.Load(8, jT1, x.M(jCX, offFProg))
	a.ALURM(true, x.CMP, jT1, x.M(jState, offProg))
	a.Jcc(x.CondNE, slow)

	a.StoreImm(4, x.M(jCX, offFRet), int32(pc+1))
	a.Load(8, jT1, x.M(jState, offProgBase))
	a.Store(8, x.M(jCX, offFBase), jT1)
	for i, r := range jitReg[6:10] {
		a.Store(8, x.M(jCX, offFSaved+8*int32(i)), r)
	}
	a.LeaLabel(jT1, c.ops[pc+1])
	a.Store(8, x.M(jCX, offFRetAddr), jT1)

	// setFrame(depth+1): r10's offset is the frame's end, (depth+2)*512.
	fp := jCX
	a.ALURI(true, x.ADD, jT0, 1)
	a.Store(8, x.M(jState, offDepth), jT0)
	a.Load(8, fp, fpMem())
	a.ALURI(true, x.ADD, fp, StackSize)
	a.Store(8, fpMem(), fp)
	a.Load(8, jT1, x.M(jState, offRegions))
	a.Store(4, x.M(jT1, int32(RegionStack)*regionSize+offRHi), fp)

	// enterFrame: clear [max(dirtyLo, start), min(dirtyHi, end)) of the
	// new frame, in 8-byte words (the frame is 8-byte aligned, and bytes
	// outside the dirty range are zero already).
	skip, loop, lo, hi := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Lea(false, jT1, x.M(fp, -StackSize))
	a.MovRR(false, jCX, fp) // the frame's end, zero-extended
	a.ALUMR(false, x.CMP, x.M(jState, offDirtyLo), jT1)
	a.Jcc(x.CondBE, lo)
	a.Load(4, jT1, x.M(jState, offDirtyLo))
	a.Bind(lo)
	a.ALUMR(false, x.CMP, x.M(jState, offDirtyHi), jCX)
	a.Jcc(x.CondAE, hi)
	a.Load(4, jCX, x.M(jState, offDirtyHi))
	a.Bind(hi)
	a.ALURR(true, x.CMP, jT1, jCX)
	a.Jcc(x.CondAE, skip)
	a.ALURI(false, x.AND, jT1, -8)
	a.Bind(loop)
	a.StoreImm(8, x.MI(jState, jT1, offStack), 0)
	a.ALURI(true, x.ADD, jT1, 8)
	a.ALURR(true, x.CMP, jT1, jCX)
	a.Jcc(x.CondB, loop)
	a.Bind(skip)

	// The callee's r10 stores compiled without tracking (see dirty).
	if d := c.dirtyAt[t]; d != 0 {
		lower, higher := a.NewLabel(), a.NewLabel()
		fp := jT0
		a.Load(8, fp, fpMem())
		a.Lea(false, jT1, x.M(fp, d))
		a.ALUMR(false, x.CMP, x.M(jState, offDirtyLo), jT1)
		a.Jcc(x.CondBE, lower)
		a.Store(4, x.M(jState, offDirtyLo), jT1)
		a.Bind(lower)
		a.ALUMR(false, x.CMP, x.M(jState, offDirtyHi), fp)
		a.Jcc(x.CondAE, higher)
		a.Store(4, x.M(jState, offDirtyHi), fp)
		a.Bind(higher)
	}
	c.jump(pc, int32(t))
}

// ret emits exit at op pc: at depth 0, or into a frame compiled code did
// not push for this program (retAddr 0, or another program after a tail
// call), Go returns (exitExit); otherwise the frame is popped as exec
// does (r6-r9, progBase, r10 and the stack region's end one frame down,
// the instructions skipped charged) and the code goes on at retAddr.
func (c *jitc) ret(pc int) {
	a := &c.a
	slow := c.stub(pc, exitExit)
	a.Load(8, jT0, x.M(jState, offDepth))
	a.TestRR(true, jT0, jT0)
	a.Jcc(x.CondE, c.finalStub(pc))
	a.ALURI(true, x.SUB, jT0, 1)
	a.ImulRRI(true, jCX, jT0, frameSize)
	a.ALURR(true, x.ADD, jCX, jState)
	a.Load(8, jT1, x.M(jCX, offFProg))
	a.ALURM(true, x.CMP, jT1, x.M(jState, offProg))
	a.Jcc(x.CondNE, slow)
	a.Load(8, jT1, x.M(jCX, offFRetAddr))
	a.TestRR(true, jT1, jT1)
	a.Jcc(x.CondE, slow)

	a.Store(8, x.M(jState, offDepth), jT0)
	for i, r := range jitReg[6:10] {
		a.Load(8, r, x.M(jCX, offFSaved+8*int32(i)))
	}
	a.Load(8, jT0, x.M(jCX, offFBase))
	a.Store(8, x.M(jState, offProgBase), jT0)
	// budget -= (pc+1) - ret
	a.Load(4, jT0, x.M(jCX, offFRet))
	a.ALURR(true, x.ADD, jBudget, jT0)
	a.ALURI(true, x.SUB, jBudget, int32(pc+1))
	fp := jT0
	a.Load(8, fp, fpMem())
	a.ALURI(true, x.SUB, fp, StackSize)
	a.Store(8, fpMem(), fp)
	a.Load(8, jCX, x.M(jState, offRegions))
	a.Store(4, x.M(jCX, int32(RegionStack)*regionSize+offRHi), fp)
	a.JmpR(jT1)
}
