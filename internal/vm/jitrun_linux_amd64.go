package vm

import (
	"math"
	"unsafe"
)

// runNative is exec for compiled programs: it enters the machine code at
// op pc and serves its exits (helpers, calls, returns, the memory accesses
// the fast path declines, the limit) exactly as exec's slow block does,
// until the exit of frame base. Instruction counting follows exec: steps
// executed so far is acc+pc; compiled code keeps budget = limit-acc.
//
// A run whose first exit is the program's own exit returns from here:
// no Go code ran on its behalf, so nothing needs recovering; every other
// exit goes to serveNative.
func (m *Machine) runNative(p *Program, pc int, base int) (uint64, error) {
	limit := int(m.jit.limit)
	m.enter(p.native, pc, m.steps-pc, limit)
	if m.jit.code == exitExit && m.depth == base {
		m.steps = limit - int(m.jit.budget) + int(m.jit.pc) + 1
		return m.regs[0], nil
	}
	return m.serveNative(base, limit)
}

// RunCtx is Run(p): r1 is CtxAddr (0 without a context). It is the
// packet path, a call shorter than Run: for a compiled program, run,
// reset, runNative and enter in one frame, with what a run rarely needs
// out of line, so that a run that never leaves its machine code costs
// little more than entering it (the floor of BenchmarkEngineVsKernel).
func (m *Machine) RunCtx(p *Program) (uint64, error) {
	if p == nil || p.native == nil {
		return m.run(p, 0, nil)
	}
	nat := p.native
	if m.as != p.as || m.asGen != p.as.gen.Load() {
		m.rebind(p.as, p.as.gen.Load())
	}
	m.prog = p
	m.steps = 0
	if !m.settled || m.pending != 0 || m.ndyn != 0 || nat.unsettles {
		m.settle(p)
	}
	// The stack the last run dirtied, cleared here rather than in a call:
	// most programs store to their stack, so most runs need it.
	if m.dirtyLo < m.dirtyHi {
		clear(m.stack[m.dirtyLo:m.dirtyHi])
		m.dirtyLo, m.dirtyHi = math.MaxUint32, 0
	}
	m.setPolicy(p)
	regs := &m.regs
	regs[1] = 0 // the fresh entry zeroes the others itself
	if m.ctxSet {
		regs[1] = CtxAddr
	}
	if d := nat.dirty[0]; d != 0 { // prepare's marking, on the clean stack
		m.dirtyLo, m.dirtyHi = StackSize-uint32(-d), StackSize
	}
	if !m.jit.published {
		m.publish()
	}
	limit := m.jit.limit // the fresh entry's budget
	nat.code.Enter(nat.fresh, uintptr(unsafe.Pointer(m)))
	if m.jit.code == exitExit && m.depth == 0 {
		steps := limit - m.jit.budget + int64(m.jit.pc) + 1
		m.steps, m.executed = int(steps), uint64(steps)
		m.prog = nil
		m.settled = !nat.unsettles
		return regs[0], nil
	}
	m.settled = false
	return m.done(m.serveNative(0, int(limit)))
}

// settle is the part of reset that a run after a settled one (see
// Machine.settled) does not need.
func (m *Machine) settle(p *Program) {
	m.tail, m.progBase = 0, 0
	m.mayGoto = 1 << 23 // BPF_MAX_LOOPS
	m.setFrame(0)
	if m.pending != 0 {
		m.pending, m.next, m.abort, m.exitR0 = 0, nil, nil, 0
	}
	if m.ndyn != 0 {
		clear(m.regions[firstDynamic : firstDynamic+m.ndyn])
		m.ndyn = 0
	}
	if m.dirtyLo < m.dirtyHi {
		clear(m.stack[m.dirtyLo:m.dirtyHi])
		m.dirtyLo, m.dirtyHi = math.MaxUint32, 0
	}
	if p.native.calls {
		m.ownFrames(p)
	}
}

// enter runs compiled code from op pc with acc instructions counted;
// what is rare is in prepare.
func (m *Machine) enter(nat *native, pc, acc, limit int) {
	if nat.dirty[pc] != 0 || !m.jit.published {
		m.prepare(nat, pc)
	}
	m.jit.budget = int64(limit - acc)
	if pc == 0 {
		nat.code.Enter(nat.start, uintptr(unsafe.Pointer(m)))
		return
	}
	m.jit.resume = nat.base + uintptr(nat.off[pc])
	nat.code.Enter(nat.base, uintptr(unsafe.Pointer(m)))
}

// prepare is what entering at op pc needs besides the budget: the stack a
// subprogram entered there stores into counted as dirty, the windows
// published if something changed them.
func (m *Machine) prepare(nat *native, pc int) {
	if d := nat.dirty[pc]; d != 0 {
		top := uint32((m.depth + 1) * StackSize)
		m.dirtyLo, m.dirtyHi = min(m.dirtyLo, top-uint32(-d)), max(m.dirtyHi, top)
	}
	if !m.jit.published {
		m.publish()
	}
}

// publish publishes the packet and context windows to compiled code.
func (m *Machine) publish() {
	m.jitPacket()
	m.pktHelpData()
	m.jitContext(m.prog)
	m.jit.published = true
}

// serveNative serves the exit compiled code just took, and every later
// one, until frame base exits. Helpers run here, so a Go panic is
// recovered here and becomes a FaultPanic.
func (m *Machine) serveNative(base, limit int) (r0 uint64, err error) {
	defer func() {
		if v := recover(); v != nil {
			r0, err = 0, m.panicFault(v)
		}
	}()
	regs := &m.regs
	for {
		p := m.prog
		pc := int(m.jit.pc)
		acc := limit - int(m.jit.budget)
		o := &p.code[pc]
		interp := false
		switch m.jit.code {
		case exitLimit:
			m.steps = acc + pc
			return 0, &LimitError{PC: int(p.insn[pc]), Limit: m.limit, Executed: uint64(acc + pc)}

		case exitMem:
			ok, err := m.jitMem(o, pc)
			if err != nil {
				return 0, err
			}
			pc++
			if !ok { // the kernel's bpf_gen_ld_abs: end the program, r0 = 0
				m.steps = acc + pc
				m.exitR0 = 0
				m.pending |= pendExit | pendExitDone
				return 0, errExit
			}

		case exitHelper:
			id := int64(o.off)
			if o.kind == kPoisoned {
				return 0, m.fault(p, pc, FaultPoisoned, 0, 0, 0)
			}
			if o.kind == kCallx {
				if r := regs[o.dst]; r < uint64(len(p.helpers)) && p.helpers[r] != nil {
					id = int64(r)
				} else {
					return 0, m.fault(p, pc, FaultBadCall, r, 0, 0)
				}
			}
			pc++
			m.steps, m.pc = acc+pc, pc-1
			r0, err := p.helpers[id](m, regs[1], regs[2], regs[3], regs[4], regs[5])
			acc = m.steps - pc
			if err != nil || m.pending != 0 {
				next, err := m.afterHelper(p, pc-1, id, r0, err)
				if err != nil {
					return 0, err
				}
				if next != nil { // a tail call: r0 is left as it was
					acc += pc
					m.prog, pc = next, 0
					m.progBase = m.depth
					m.setPolicy(next)
					break
				}
			}
			regs[0] = r0

		case exitCall:
			if m.depth+1-m.progBase >= MaxFrames || m.depth+1 >= len(m.frames) {
				return 0, m.fault(p, pc, FaultCallDepth, uint64(o.off), 0, 0)
			}
			f := &m.frames[m.depth]
			f.ret, f.prog, f.progBase, f.retAddr = int32(pc+1), p, m.progBase, 0
			f.saved = [4]uint64{regs[6], regs[7], regs[8], regs[9]}
			m.enterFrame(m.depth + 1)
			pc++
			acc += pc - int(o.off)
			pc = int(o.off)
			if acc+pc > limit {
				m.steps = acc + pc
				return 0, &LimitError{PC: int(p.insn[pc]), Limit: m.limit, Executed: uint64(acc + pc)}
			}

		case exitDeopt:
			// A packet pointer failed its check (jitpkt.go): the
			// frame goes on in the interpreter, from op pc (below).
			interp = true

		case exitExit:
			pc++
			if m.depth == base {
				m.steps = acc + pc
				return regs[0], nil
			}
			steps := acc + pc
			pc = m.ret()
			acc = steps - pc
		}
		// The interpreter runs frames to their exits: a tail call
		// reached an interpreted program, or a program compiled for
		// frame 0 in another frame (a tail call from a subprogram), or
		// compiled code gave its frame up. It counts from m.steps,
		// which a fault leaves as the last sync (a helper call) set
		// it: so that is put back if it faults before it syncs.
		for interp || m.prog.native == nil || m.prog.native.fixed && m.depth != 0 {
			interp = false
			synced := m.steps
			m.steps = acc + pc
			r0, err := m.exec(m.prog, pc, m.depth)
			if err != nil {
				if m.steps == acc+pc {
					m.steps = synced
				}
				return 0, err
			}
			regs[0] = r0
			if m.depth == base {
				return r0, nil
			}
			pc = m.ret()
			acc = m.steps - pc
		}
		// enter's common case (a resumption after a helper) in line.
		nat := m.prog.native
		if pc != 0 && nat.dirty[pc] == 0 && m.jit.published {
			m.jit.budget = int64(limit - acc)
			m.jit.resume = nat.base + uintptr(nat.off[pc])
			nat.code.Enter(nat.base, uintptr(unsafe.Pointer(m)))
			continue
		}
		m.enter(nat, pc, acc, limit)
	}
}

// ret returns from the current frame to its caller (exec's kExit below
// base) and reports the op index to continue at, in m.prog.
func (m *Machine) ret() int {
	m.setFrame(m.depth - 1)
	f := &m.frames[m.depth]
	m.regs[6], m.regs[7], m.regs[8], m.regs[9] = f.saved[0], f.saved[1], f.saved[2], f.saved[3]
	m.progBase = f.progBase
	if f.prog != m.prog {
		m.prog = f.prog
		m.setPolicy(f.prog)
	}
	return int(f.ret)
}

// jitPacket publishes the packet window to compiled code.
func (m *Machine) jitPacket() {
	r := &m.regions[RegionPacket]
	j := &m.jit
	if r.perm&(permRead|permWrite|permSlow) != permRead|permWrite || len(r.buf) == 0 || r.lo >= r.hi {
		j.pktLo, j.pktMax = math.MaxUint64, [4]uint64{}
		return
	}
	j.pktLo = uint64(r.lo)
	for k := range j.pktMax {
		j.pktMax[k] = uint64(r.hi) - 1<<k // hi >= PacketBase: no wrap
	}
	j.pktDelta = uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))) - uintptr(r.base)
}

// jitContext publishes the context image (see ContextImage) to compiled
// code, if the region and every table cover the whole context, and the
// verdicts of p's context sites, which follow it.
func (m *Machine) jitContext(p *Program) {
	m.jitCtxWindow()
	m.jitCtxSites(p)
}

// jitCtxWindow is jitContext's window, apart so that the sites need no
// deferred call after its early returns.
func (m *Machine) jitCtxWindow() {
	j, ci, r := &m.jit, &m.ctxImg, &m.regions[RegionCtx]
	j.ctxFresh, j.ctxLo = 0, math.MaxUint64
	hi := int(r.hi)
	// Past 64 words the dirty bits share bit 63, which ctxMarkReg's
	// shifts do not do: such a context's image is the interpreter's.
	if ci.fresh == nil || r.perm&permHook == 0 || len(ci.img) < hi || len(ci.plain.read) < hi ||
		(r.policy != nil && len(r.policy.read) < hi) || hi == 0 || hi > 256 {
		return
	}
	if len(ci.plain.write) < hi || (r.policy != nil && len(r.policy.write) < hi) {
		return
	}
	j.ctxFresh = uintptr(unsafe.Pointer(ci.fresh))
	j.ctxDirty = uintptr(unsafe.Pointer(ci.dirty))
	j.ctxImg = uintptr(unsafe.Pointer(unsafe.SliceData(ci.img)))
	j.ctxPlain = [2]uintptr{bytesAddr(ci.plain.read), bytesAddr(ci.plain.write)}
	j.ctxAlias = [2]uintptr{aliasAddr(ci.plain.alias[0]), aliasAddr(ci.plain.alias[1])}
	j.ctxPol = [2]uintptr{}
	if r.policy != nil {
		j.ctxPol = [2]uintptr{bytesAddr(r.policy.read), bytesAddr(r.policy.write)}
	}
	if r.base == 0 {
		j.ctxLo = uint64(RegionCtx)<<32 | uint64(r.lo)
		for k := range j.ctxMax {
			j.ctxMax[k] = 0 // no access of 1<<k bytes fits
			if r.hi >= 1<<k {
				j.ctxMax[k] = uint64(RegionCtx)<<32 | uint64(r.hi-1<<k)
			}
		}
	}
}

func bytesAddr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func aliasAddr(a []uint64) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(a))) }
