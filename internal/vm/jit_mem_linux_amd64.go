package vm

import (
	"math"
	"unsafe"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// This file holds the emitters for compiled code's checked memory accesses
// and atomics, which keep the interpreter's region rules in machine code.

// mem emits a checked load or store. Accesses proven to lie inside the
// frame (through r10, or a register holding r10 plus a constant, see
// stackProofs) need no check; accesses through a proven constant check
// the rules of the region it names with the offset as an immediate
// (constAccess); packet accesses are two compares against the window in
// jitState; everything else translates the region-tagged address out of
// line with the same table and rules as Machine.access, and leaves to Go
// (exitMem) for whatever that would refuse or hand to a context accessor.
// The hints of the analysis (a probable context address, a probable map
// value) only choose which fast path is tried first.
func (c *jitc) mem(pc int, o *op) {
	a := &c.a
	n := int(memSize(o.kind))
	load := o.kind <= kLdxSW
	var target x.Mem
	if off, ok := stackOff(o, &c.facts[pc]); ok {
		target = c.stackAt(off)
	} else if o.kind >= kStxB && o.src == regFP {
		// Storing r10 itself anywhere but the frame: rare enough for Go,
		// which keeps the paths below free of a register for it.
		c.exit(pc, exitMem)
		return
	} else {
		breg := o.dst
		need := permRead | permWrite
		if load {
			breg, need = o.src, permRead
		}
		var f fpFact
		if breg < regFP {
			f = c.facts[pc][breg]
		}
		k := f.val + uint64(int64(o.off)) // the address, if f holds a constant
		if f.cnst && load {
			if v, ok := constLoad(c.p, o, k); ok {
				// A constant region (.rodata): the value it holds for good.
				a.MovRI64(jitReg[o.dst], v)
				return
			}
		}
		if c.pkt != nil && pktProven(&c.pkt[pc], breg, o.off, n) {
			// Inside the room the program's own bounds check proved
			// against checked packet pointers (jitpkt.go): no window.
			c.addrTo(jT0, breg, o.off)
			a.ALURM(true, x.ADD, jT0, x.M(jState, offPktDel))
			c.access(o, n, x.M(jT0, 0))
			return
		}
		generic, notPkt, done, after := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
		defer a.Bind(after)
		se := int32(-1) // the site's own slot memo (jit_sitememo), if it has one
		switch {
		case f.cnst && constAccessOK(k):
			c.constAccess(o, k, need, generic, done, after)
		case f.hint == hintAddr && constAccessOK(k):
			// A guess: check it (the register against the address
			// less the offset: the same test without an add), then
			// go on as for a constant.
			a.MovRI64(jT1, k-uint64(int64(o.off)))
			a.ALURR(true, x.CMP, jitReg[breg], jT1)
			a.Jcc(x.CondNE, generic)
			c.constAccess(o, k, need, generic, done, after)
		case f.hint == hintSlot:
			c.addrTo(jT0, breg, o.off)
			se = c.siteMemoAt(pc, !load)
			c.siteCheck(se, !load, n, notPkt)
		default:
			c.addrTo(jT0, breg, o.off)
			c.pktWindow(n, notPkt)
		}
		a.Bind(done)
		target = x.M(jT0, 0)
		c.late = append(c.late, func() {
			// The generic path: the address from the register (a
			// constant access that declined used r11 for itself).
			a.Bind(generic)
			c.addrTo(jT0, breg, o.off)
			c.pktWindow(n, notPkt)
			a.Jmp(done)
			a.Bind(notPkt)
			c.slotMemo(n, !load, se, done)
			translate := a.NewLabel()
			c.ctxImage(o, done, after, translate)
			a.Bind(translate)
			c.translateCall(n, need, c.stub(pc, exitMem))
			if se >= 0 {
				// The shared memo: what the translation memoized, or
				// an older slot it still holds, valid either way.
				a.StoreImm(8, x.M(jState, se), 0)
			}
			a.Jmp(done)
		})
	}
	c.access(o, n, target)
}

// access emits the load or store o of n bytes at target, checked.
func (c *jitc) access(o *op, n int, target x.Mem) {
	a := &c.a
	switch o.kind {
	case kLdxB, kLdxH, kLdxW, kLdxDW:
		a.Load(n, jitReg[o.dst], target)
	case kLdxSB, kLdxSH, kLdxSW:
		a.LoadSX(n, jitReg[o.dst], target)
	case kStB, kStH, kStW, kStDW:
		a.StoreImm(n, target, int32(o.imm))
	default:
		src := jT1
		if o.src == regFP {
			a.Load(8, src, fpMem()) // the frame's target is in r11
		} else {
			src = jitReg[o.src]
		}
		a.Store(n, target, src)
	}
}

// pktPtrGuard checks, at the start of op pc, the packet pointer the load
// or add at pc-1 put in its register (pktProofs): data no lower than the
// window's start, data_end no higher than its end, a variable pointer
// within both (jitpktvar.go); otherwise the interpreter runs
// the rest of the frame (exitDeopt), since what follows is compiled on
// the proof that they hold.
func (c *jitc) pktPtrGuard(pc int) {
	a := &c.a
	r := jitReg[c.p.code[pc-1].dst]
	deopt := c.stub(pc, exitDeopt)
	g := c.guard[pc-1]
	if g != pktEnd { // data or a variable pointer: not below the start
		a.ALURM(true, x.CMP, r, x.M(jState, offPktLo))
		a.Jcc(x.CondB, deopt)
	}
	if g == pktData {
		return
	}
	// data_end or a variable pointer: not past the end (a variable one,
	// so that the sums compared with data_end do not wrap).
	a.Lea(true, jT0, x.M(r, -1)) // end-1 <= the last byte; 0 wraps, and fails
	a.ALURM(true, x.CMP, jT0, x.M(jState, offPktMax))
	a.Jcc(x.CondA, deopt)
}

// pktWindow checks the address in r11 against the packet window for an
// access of n bytes (jumping to miss outside it) and makes it the host
// address.
func (c *jitc) pktWindow(n int, miss x.Label) {
	a := &c.a
	a.ALURM(true, x.CMP, jT0, x.M(jState, offPktLo))
	a.Jcc(x.CondB, miss)
	a.ALURM(true, x.CMP, jT0, x.M(jState, offPktMax+8*int32(sizeLog(n))))
	a.Jcc(x.CondA, miss)
	a.ALURM(true, x.ADD, jT0, x.M(jState, offPktDel))
}

// constAccessOK reports whether constAccess handles an access at the
// constant address k: a shared region's (globals, map values) or the
// context's, at an offset small enough for immediates.
func constAccessOK(k uint64) bool {
	r, off := k>>32, k&math.MaxUint32
	switch {
	case r == uint64(RegionCtx):
		return off < 1<<16
	case r >= firstShared:
		return r < 1<<20 && off < 1<<30
	}
	return false
}

// constAccess emits the access o at the constant address k, with the
// rules Machine.access applies to it: r11 becomes the host address, or
// the code jumps to generic, which translates in full from the register. A shared
// region's access takes the verdict this Machine memoized for it
// (constMemoAt), else checks the live region table (constCheck) and
// memoizes what it found, so that a global read every run (a .rodata
// constant) is one compare instead of nine once translated. The context
// takes the image path of ctxImage at that offset; an access the image
// table aliases is done out of line (ctxAlias), which goes on at after.
func (c *jitc) constAccess(o *op, k uint64, need uint8, generic, done, after x.Label) {
	a := &c.a
	n := int(memSize(o.kind))
	off := int32(k & math.MaxUint32)
	if k>>32 == uint64(RegionCtx) {
		if need&permAtomic != 0 {
			a.Jmp(generic) // the context has no atomics
			return
		}
		write := need&permWrite != 0
		full := a.NewLabel()
		if c.ctxShort(uint32(off), n, write, full) {
			c.late = append(c.late, func() {
				a.Bind(full)
				a.MovRI64(jT0, k)
				c.ctxFull(o, k, need, generic, after)
				a.Jmp(done)
			})
			return
		}
		a.Bind(full)
		a.MovRI64(jT0, k)
		c.ctxFull(o, k, need, generic, after)
		return
	}
	// A verdict this Machine reached on the same access since its shared
	// regions last changed (constMemo): the host address, one compare.
	key := constKey(k, n, need)
	e := constMemoAt(key)
	miss := a.NewLabel()
	a.MovRI64(jT0, key)
	a.ALURM(true, x.CMP, jT0, x.M(jState, e+offMemoLo))
	a.Jcc(x.CondNE, miss)
	a.Load(8, jT0, x.M(jState, e+offMemoDelta))
	c.late = append(c.late, func() {
		a.Bind(miss)
		c.constCheck(k, n, need, generic)
		a.MovRI64(jT1, key)
		a.Store(8, x.M(jState, e+offMemoLo), jT1)
		a.Store(8, x.M(jState, e+offMemoDelta), jT0)
		a.Jmp(done)
	})
}

// waysRow is the length of a row of jitState.ways.
var waysRow = int32(len(jitState{}.ways[0]))

// constKey names a constant access to a shared region for its verdict
// (constMemo): the address (region below 1<<20, offset below 1<<30, see
// constAccessOK), log2 of the size and the permissions it needs, in bits
// the address leaves free. No key is MaxUint64, which forgetSlots writes.
func constKey(k uint64, n int, need uint8) uint64 {
	return k | uint64(sizeLog(n))<<52 | uint64(need&(permRead|permWrite|permAtomic))<<54
}

// constMemoAt is the offset in the Machine of the verdict entry for key:
// one of the 2*constMemos entries after the slot memos in jitState.ways,
// chosen by a hash of the address, so that programs sharing a Machine
// spread over them. An entry whose lo is key holds in delta the host
// address constCheck found for the access key names; forgetSlots
// empties them with the slot memos, whenever the shared regions change
// (rebind), which is what makes the verdict valid until then: the
// checks depend only on the region's entry in the table, never on the
// program (a shared region has no policy and no accessor, and the
// checks refuse one that does).
func constMemoAt(key uint64) int32 {
	// The address's hash, 0..31. The region is folded into the low bits
	// before the multiply: region<<32 alone leaves only the multiplier's
	// low half to spread IDs, and dns_guard's .rodata word and both map
	// handles then shared one entry, refilling it at every access.
	k := key & (1<<52 - 1)
	h := int32(((k ^ k>>29) * 0x9e3779b97f4a7c15) >> 59)
	row, j := h/constMemos, h%constMemos
	return offWays + (row*waysRow+memoWays+j)*memoSize
}

// constCheck applies Machine.access's rules to the access of n bytes
// needing need at the constant address k in a shared region, against the
// live region table: r11 becomes the host address, or the code jumps to
// generic, which translates in full. The region and offset are
// immediates, so the region (a map value or global, always slotted)
// needs no division: an offset below the stride is its own remainder.
func (c *jitc) constCheck(k uint64, n int, need uint8, generic x.Label) {
	a := &c.a
	off := int32(k & math.MaxUint32)
	r := int32(k >> 32)
	reg := func(field int32) x.Mem { return x.M(jCX, r*regionSize+field) }
	end := off + int32(n)
	a.ALUMI(true, x.CMP, x.M(jState, offRegions+8), r)
	a.Jcc(x.CondBE, generic)
	a.Load(8, jCX, x.M(jState, offRegions))
	a.Load(1, jT1, reg(offRPerm))
	a.ALURI(false, x.AND, jT1, int32(need|permSlow|permHook))
	a.ALURI(false, x.CMP, jT1, int32(need|permSlow))
	a.Jcc(x.CondNE, generic)
	a.ALUMI(true, x.CMP, reg(offRPolicy), 0)
	a.Jcc(x.CondNE, generic)
	a.ALUMI(false, x.CMP, reg(offRBase), 0)
	a.Jcc(x.CondNE, generic)
	a.ALUMI(false, x.CMP, reg(offRLo), off)
	a.Jcc(x.CondA, generic)
	a.ALUMI(false, x.CMP, reg(offRHi), end)
	a.Jcc(x.CondB, generic)
	a.ALUMI(false, x.CMP, reg(offRStride), off)
	a.Jcc(x.CondBE, generic)
	a.ALUMI(false, x.CMP, reg(offRSlot), end)
	a.Jcc(x.CondB, generic)
	a.Load(8, jT0, reg(offRBuf))
	a.Lea(true, jT0, x.M(jT0, off))
}

// atomic emits the read-modify-write atomics as locked instructions on
// the translated address, the fetch-and/or/xor forms as a
// compare-and-swap loop (load-acquire and store-release are lowered to
// plain loads and stores and never come here); misaligned
// addresses and everything translate refuses go to Go.
func (c *jitc) atomic(pc int, o *op) {
	a := &c.a
	w := o.kind == kAtomic64
	n := 4
	if w {
		n = 8
	}
	aluOp := map[uint64]x.ALU{0x00: x.ADD, 0x40: x.OR, 0x50: x.AND, 0xa0: x.XOR}
	op, plain := aluOp[o.imm]
	fop, fetchLogic := aluOp[o.imm&^atomicFetch]
	fetchLogic = fetchLogic && o.imm&atomicFetch != 0 && fop != x.ADD
	if !plain && !fetchLogic && o.imm != atomicFetch && o.imm != atomicXchg && o.imm != atomicCmpxchg {
		c.exit(pc, exitMem)
		return
	}
	if o.src == regFP {
		c.exit(pc, exitMem) // r10 as an atomic's operand: rare, done by Go
		return
	}
	slow := c.stub(pc, exitMem)
	src := jitReg[o.src]
	translated, memo := a.NewLabel(), a.NewLabel()
	var f fpFact
	if o.dst < regFP {
		f = c.facts[pc][o.dst]
	}
	if k := f.val + uint64(int64(o.off)); f.cnst && constAccessOK(k) && k&uint64(n-1) == 0 {
		// A proven constant address (a global's counter): its region's
		// rules with immediates; the generic path takes the register.
		c.constAccess(o, k, permRead|permWrite|permAtomic, memo, translated, memo) // no aliases: atomics
		a.Jmp(translated)
	}
	a.Bind(memo)
	c.addrTo(jT0, o.dst, o.off)
	a.TestRI(false, jT0, int32(n-1))
	a.Jcc(x.CondNE, slow)
	c.slotMemo(n, true, -1, translated)
	c.translateCall(n, permRead|permWrite|permAtomic, slow)
	a.Bind(translated)
	a.TestRI(false, jT0, int32(n-1))
	a.Jcc(x.CondNE, slow)
	m := x.M(jT0, 0)
	switch {
	case plain:
		a.Lock()
		a.ALUMR(w, op, m, src)
	case o.imm == atomicFetch:
		a.Lock()
		a.XaddMR(w, m, src)
	case o.imm == atomicXchg:
		a.XchgMR(w, m, src)
	case fetchLogic:
		// rax (r0) is cmpxchg's accumulator: park it, loop until the
		// value read is the one replaced, hand it to src (zero-extended
		// for 32 bits).
		loop := a.NewLabel()
		a.MovRR(true, jCX, src)
		a.Store(8, x.M(jState, offSave), x.RAX)
		a.Load(n, x.RAX, m)
		a.Bind(loop)
		a.MovRR(true, jT1, x.RAX)
		a.ALURR(w, fop, jT1, jCX)
		a.Lock()
		a.CmpxchgMR(w, m, jT1)
		a.Jcc(x.CondNE, loop)
		if src == x.RAX {
			a.MovRR(w, x.RAX, x.RAX)
		} else {
			a.MovRR(w, src, x.RAX)
			a.Load(8, x.RAX, x.M(jState, offSave))
		}
	default:
		a.Lock()
		a.CmpxchgMR(w, m, src)
		if !w {
			a.MovRR(false, x.RAX, x.RAX)
		}
	}
}

func sizeLog(n int) int {
	switch n {
	case 1:
		return 0
	case 2:
		return 1
	case 4:
		return 2
	}
	return 3
}

// translateCall translates the address in r11 (see translate) by calling
// the program's one routine for (n, need), and jumps to slow if it
// refused. Sharing the routine keeps a memory access to about 40 bytes of
// code; the call uses 8 bytes of the goroutine stack below the
// trampoline's frame, inside the guard every Go frame may use.
func (c *jitc) translateCall(n int, need uint8, slow x.Label) {
	c.translateCallAs(n, need, true, slow)
}

// translateCallAs is translateCall; a helper's argument (hook false)
// refuses the context image as Machine.Mem does.
func (c *jitc) translateCallAs(n int, need uint8, hook bool, slow x.Label) {
	a := &c.a
	key := n<<8 | int(need)
	if !hook {
		key |= 1 << 16
	}
	l, ok := c.translators[key]
	if !ok {
		l = a.NewLabel()
		c.translators[key] = l
		c.late = append(c.late, func() {
			fail := a.NewLabel()
			a.Bind(l)
			c.translate(n, need, hook, fail)
			a.Ret()
			a.Bind(fail)
			a.ALURR(false, x.XOR, jT0, jT0)
			a.Ret()
		})
	}
	a.Call(l)
	a.TestRR(true, jT0, jT0)
	a.Jcc(x.CondE, slow)
}

// translate turns the address in r11 into a host pointer in r11 for an
// access of n bytes needing perm need, or jumps to slow. It is
// Machine.access: region table lookup, permissions, the window, and for
// slotted regions (map values) the slot rule with the same division-free
// remainder; regions with a context policy or accessor go to slow.
// Stores into the stack region record the dirty range.
func (c *jitc) translate(n int, need uint8, image bool, slow x.Label) {
	a := &c.a
	a.MovRR(true, jCX, jT0)
	a.ShiftRI(true, x.SHR, jCX, 32)
	a.ALURM(true, x.CMP, jCX, x.M(jState, offRegions+8))
	a.Jcc(x.CondAE, slow)
	a.ImulRRI(true, jCX, jCX, regionSize)
	a.ALURM(true, x.ADD, jCX, x.M(jState, offRegions))
	slotted, permOK, hook, end := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Load(1, jT1, x.M(jCX, offRPerm))
	a.ALURI(false, x.AND, jT1, int32(need|permSlow|permHook))
	a.ALURI(false, x.CMP, jT1, int32(need))
	a.Jcc(x.CondE, permOK)
	ctxAccess := image && (need == permRead || need == permRead|permWrite)
	if ctxAccess {
		a.ALURI(false, x.CMP, jT1, int32(need|permSlow|permHook))
		a.Jcc(x.CondE, hook)
	}
	a.ALURI(false, x.CMP, jT1, int32(need|permSlow))
	a.Jcc(x.CondNE, slow)
	a.ALUMI(true, x.CMP, x.M(jCX, offRPolicy), 0)
	a.Jcc(x.CondNE, slow)
	a.ALUMI(false, x.CMP, x.M(jCX, offRStride), 0)
	a.Jcc(x.CondE, slow)
	a.Jmp(slotted)
	a.Bind(permOK)
	inWindow := a.NewLabel()
	c.window(n, slow)
	a.Jmp(inWindow)

	// Slotted: the window, then (i % stride) + n <= slot, where
	// i % stride = hi64(lo64(magic * i) * stride) (see slotRem). The
	// accessible part of the slot becomes the slot memo (see slotMemo).
	a.Bind(slotted)
	if need&permWrite == 0 {
		// A slot read first and written next (a counter: v->packets++)
		// would be translated twice: a slot of a region that would
		// translate it for writing too fills the store memo as well.
		loadOnly := a.NewLabel()
		a.Load(1, jT1, x.M(jCX, offRPerm))
		a.ALURI(false, x.AND, jT1, int32(permWrite|permAtomic))
		a.ALURI(false, x.CMP, jT1, int32(permWrite|permAtomic))
		a.Jcc(x.CondNE, loadOnly)
		c.slotted(n, slow, []int32{offMemo + memoSize, offMemo})
		a.Jmp(end)
		a.Bind(loadOnly)
		c.slotted(n, slow, []int32{offMemo})
	} else {
		// A slot translated for writing is readable; the store memo,
		// which atomics use too, holds only slots that allow them.
		noAtomic := a.NewLabel()
		a.TestM8(x.M(jCX, offRPerm), permAtomic)
		a.Jcc(x.CondE, noAtomic)
		c.slotted(n, slow, []int32{offMemo + memoSize, offMemo})
		a.Jmp(end)
		a.Bind(noAtomic)
		c.slotted(n, slow, []int32{offMemo})
	}
	a.Jmp(end)

	a.Bind(inWindow)
	a.MovRR(false, jT0, jT0) // the offset, zero-extended
	if need&permWrite != 0 {
		// Stores into the stack region remember what to zero.
		notStack, lo := a.NewLabel(), a.NewLabel()
		a.Load(8, jT1, x.M(jState, offRegions))
		a.ALURI(true, x.ADD, jT1, int32(RegionStack)*regionSize)
		a.ALURR(true, x.CMP, jCX, jT1)
		a.Jcc(x.CondNE, notStack)
		a.ALUMR(false, x.CMP, x.M(jState, offDirtyLo), jT0)
		a.Jcc(x.CondBE, lo)
		a.Store(4, x.M(jState, offDirtyLo), jT0)
		a.Bind(lo)
		a.Lea(false, jT1, x.M(jT0, int32(n)))
		a.ALUMR(false, x.CMP, x.M(jState, offDirtyHi), jT1)
		a.Jcc(x.CondAE, notStack)
		a.Store(4, x.M(jState, offDirtyHi), jT1)
		a.Bind(notStack)
	}
	a.ALURM(false, x.SUB, jT0, x.M(jCX, offRBase))
	a.ALURM(true, x.ADD, jT0, x.M(jCX, offRBuf))
	if !ctxAccess {
		a.Bind(end)
		return
	}
	a.Jmp(end)

	// A context access through an accessor with an image: use the image
	// while all of it is fresh and both tables allow the access (the
	// rule of loadSlow and storeSlow).
	a.Bind(hook)
	table := int32(0)
	if need&permWrite != 0 {
		table = 8
	}
	bit := sizeBit(n)
	c.window(n, slow)
	a.Load(8, jT1, x.M(jState, offCtxFr))
	a.TestRR(true, jT1, jT1)
	a.Jcc(x.CondE, slow)
	a.ALUMI(true, x.CMP, x.M(jT1, 0), -1) // CtxAllWords
	a.Jcc(x.CondNE, slow)
	a.MovRR(false, jT0, jT0) // the offset (the context's base is 0)
	a.Load(8, jT1, x.M(jState, offCtxPl+table))
	a.TestM8(x.MI(jT1, jT0, 0), bit)
	a.Jcc(x.CondE, slow)
	noPolicy := a.NewLabel()
	a.Load(8, jT1, x.M(jState, offCtxPol+table))
	a.TestRR(true, jT1, jT1)
	a.Jcc(x.CondE, noPolicy)
	a.TestM8(x.MI(jT1, jT0, 0), bit)
	a.Jcc(x.CondE, slow)
	a.Bind(noPolicy)
	if need&permWrite != 0 {
		c.ctxMarkReg(jT0, n)
	}
	a.ALURM(true, x.ADD, jT0, x.M(jState, offCtxImg))
	a.Bind(end)
}

// slotted is translate's path for a slotted region at rcx: the window and
// the slot rule, then r11 = the host address, the accessible part of the
// slot recorded in the memos.
func (c *jitc) slotted(n int, slow x.Label, memos []int32) {
	a := &c.a
	c.window(n, slow)
	for _, m := range memos {
		c.slotEvict(m)
	}
	a.Store(8, x.M(jState, offSave), x.RAX)
	a.Store(8, x.M(jState, offSave+8), x.RDX)
	a.MovRR(false, x.RDX, jT0)
	a.ALURM(false, x.SUB, x.RDX, x.M(jCX, offRBase))
	a.Load(8, x.RAX, x.M(jCX, offRMagic))
	a.ImulRR(true, x.RAX, x.RDX)
	a.Load(4, x.RDX, x.M(jCX, offRStride))
	a.MulRDX()
	a.MovRR(true, jT1, x.RDX) // the remainder
	a.Load(8, x.RAX, x.M(jState, offSave))
	a.Load(8, x.RDX, x.M(jState, offSave+8))
	a.Load(4, jCX, x.M(jCX, offRSlot)) // rcx: the slot size; the region is reloaded below
	a.ALURR(true, x.SUB, jCX, jT1)     // what the slot has from the address on
	a.ALURI(true, x.CMP, jCX, int32(n))
	a.Jcc(x.CondL, slow)
	a.Neg(true, jT1)
	a.ALURR(true, x.ADD, jT1, jT0) // the slot's start
	for _, m := range memos {
		a.Store(8, x.M(jState, m+offMemoLo), jT1)
	}
	for k := range 4 {
		a.Lea(true, jT1, x.MI(jT0, jCX, -int32(1)<<k)) // the last start of 1<<k bytes
		for _, m := range memos {
			a.Store(8, x.M(jState, m+offMemoMax+8*int32(k)), jT1)
		}
	}
	// Reload the region pointer (rcx was reused), translate, and record
	// host - virtual.
	a.MovRR(true, jCX, jT0)
	a.ShiftRI(true, x.SHR, jCX, 32)
	a.ImulRRI(true, jCX, jCX, regionSize)
	a.ALURM(true, x.ADD, jCX, x.M(jState, offRegions))
	a.MovRR(true, jT1, jT0)
	a.MovRR(false, jT0, jT0)
	a.ALURM(false, x.SUB, jT0, x.M(jCX, offRBase))
	a.ALURM(true, x.ADD, jT0, x.M(jCX, offRBuf))
	a.Neg(true, jT1)
	a.ALURR(true, x.ADD, jT1, jT0)
	for _, m := range memos {
		a.Store(8, x.M(jState, m+offMemoDelta), jT1)
	}
}

// window checks lo <= offset and offset + n <= hi for the offset in the
// low half of r11 and the region at rcx.
func (c *jitc) window(n int, slow x.Label) {
	a := &c.a
	a.MovRR(false, jT1, jT0) // the offset, zero-extended
	a.ALURM(false, x.CMP, jT1, x.M(jCX, offRLo))
	a.Jcc(x.CondB, slow)
	a.ALURI(true, x.ADD, jT1, int32(n))
	a.Store(8, x.M(jState, offSave), x.RAX) // borrow rax for hi
	a.Load(4, x.RAX, x.M(jCX, offRHi))
	a.ALURR(true, x.CMP, jT1, x.RAX)
	a.Load(8, x.RAX, x.M(jState, offSave))
	a.Jcc(x.CondA, slow)
}

// slotMemo emits the checks of the slot memo and then its other ways
// (jitState.ways) for an access of n bytes at the address in r11: inside
// a slot compiled code translated (a map value), r11 becomes the host
// address and the code goes on at done; a miss falls through. A slot is
// the unit the slot rule confines accesses to, so an access inside one
// that translated is allowed, to the same memory, until the shared
// regions change, which only Machine.rebind does, and it forgets the
// memos (Machine.forgetSlots); they outlive a run. Stores use the memos
// of slots translated for writing. A hit in a way is not swapped into
// the memo: two slots used in turn (a counter in .bss and one in an
// array) then swapped 12 words on every access, and the next access read
// them back through store forwarding. With se >= 0, the site entry at se
// (jit_sitememo) is set to name the memo that hit.
func (c *jitc) slotMemo(n int, write bool, se int32, done x.Label) {
	a := &c.a
	for _, m := range rowMemos(write) {
		next := a.NewLabel()
		c.memoCheck(m, n, next)
		if se >= 0 {
			a.StoreImm(8, x.M(jState, se), m-sharedMemo(write))
		}
		a.Jmp(done)
		a.Bind(next)
	}
}

// slotEvict pushes the memo at offset m (of jitState.memo) into the way
// wayNext names, before a translation replaces it. It keeps every
// register but r10.
func (c *jitc) slotEvict(m int32) {
	a := &c.a
	dir := (m - offMemo) / memoSize
	next := offWayNext + 8*dir
	wrap := a.NewLabel()
	a.Store(8, x.M(jState, offSave), x.RAX)
	a.Load(8, x.RAX, x.M(jState, next))
	a.ImulRRI(true, x.RAX, x.RAX, memoSize)
	for i := int32(0); i < memoSize; i += 8 {
		a.Load(8, jT1, x.M(jState, m+i))
		a.Store(8, x.MI(jState, x.RAX, offWays+dir*waysRow*memoSize+i), jT1)
	}
	a.Load(8, x.RAX, x.M(jState, next))
	a.ALURI(true, x.ADD, x.RAX, 1)
	a.ALURI(true, x.CMP, x.RAX, memoWays)
	a.Jcc(x.CondB, wrap)
	a.ALURR(false, x.XOR, x.RAX, x.RAX)
	a.Bind(wrap)
	a.Store(8, x.M(jState, next), x.RAX)
	a.Load(8, x.RAX, x.M(jState, offSave))
}

var (
	offPktData = int32(unsafe.Offsetof(Machine{}.pktData))
	offPktEnd  = int32(unsafe.Offsetof(Machine{}.pktEnd))
)

// ldAbs emits LD_ABS/LD_IND at op pc as Machine.ldAbs does them: r0 =
// the big-endian 1, 2 or 4 bytes at data+off when they lie before
// data_end. A negative offset (SKF_LL_OFF and the like) and a load past
// the end leave to Go, which ends the program there with r0 = 0.
func (c *jitc) ldAbs(pc int, o *op) {
	a := &c.a
	n := 1 << ((o.kind - kLdAbsB) % 3)
	if o.kind < kLdIndB {
		if o.off < 0 {
			c.exit(pc, exitMem)
			return
		}
		a.MovRI64(jT0, uint64(o.off))
	} else {
		slow := c.stub(pc, exitMem)
		if o.src == regFP {
			a.Load(4, jT0, fpMem())
		} else {
			a.MovRR(false, jT0, jitReg[o.src])
		}
		a.ALURI(false, x.ADD, jT0, o.off)
		a.Movsx(true, 4, jT0, jT0)
		a.TestRR(true, jT0, jT0)
		a.Jcc(x.CondL, slow)
	}
	slow := c.stub(pc, exitMem)
	a.Load(4, jT1, x.M(jState, offPktEnd))
	a.ALURM(false, x.SUB, jT1, x.M(jState, offPktData))
	a.Lea(true, jCX, x.M(jT0, int32(n)))
	a.ALURR(true, x.CMP, jCX, jT1)
	a.Jcc(x.CondA, slow)
	a.Load(4, jT1, x.M(jState, offPktData))
	a.ALURR(true, x.ADD, jT1, jT0)
	a.Load(8, jCX, x.M(jState, offRegions))
	a.ALURM(true, x.ADD, jT1, x.M(jCX, int32(RegionPacket)*regionSize+offRBuf))
	r0 := jitReg[0]
	a.Load(n, r0, x.M(jT1, 0))
	switch n {
	case 2:
		a.Bswap(false, r0)
		a.ShiftRI(false, x.SHR, r0, 16)
	case 4:
		a.Bswap(false, r0)
	}
}
