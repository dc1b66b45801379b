package vm

import "math"

// The compiler's proofs: a forward analysis over the lowered program that
// finds which of r0-r9 hold r10 plus a constant on every path to an op.
// An access through such a register whose whole extent lies in the
// current frame is an access of the stack at a known offset, which needs
// no region check (as an access through r10 itself does not).
//
// The analysis must be sound, not complete: a register it cannot follow
// is unknown, every join of differing facts is unknown, every op writes
// unknown into every register it may write (calls: r0-r5, atomics: their
// operands and r0, LD_ABS: r0), and an entry (op 0, a call target, a
// callback) starts with nothing known. Go, when compiled code leaves to
// it mid-program, changes registers only as the op it performs does.

// fpFact says register r = r10 + off (known) or nothing (zero value).
type fpFact struct {
	known bool
	off   int64
}

// fpFacts is the state before one op: facts about r0-r9.
type fpFacts [regFP]fpFact

// maxFPOff bounds the offsets followed, far beyond any frame, so that
// sums never overflow.
const maxFPOff = 1 << 32

// stackProofs computes the facts before every op of p. reached[pc] is
// false for ops no path reaches from an entry (their facts are empty).
func stackProofs(p *Program) []fpFacts {
	n := len(p.code)
	in := make([]fpFacts, n)
	seen := make([]bool, n)
	var work []int
	// Entries start with nothing known; they are also where Go starts
	// or resumes frames it set up (calls it made, callbacks).
	entry := make([]bool, n)
	mark := func(pc int) {
		if pc >= 0 && pc < n && !entry[pc] {
			entry[pc] = true
			seen[pc] = true
			work = append(work, pc)
		}
	}
	mark(0)
	for _, o := range p.code {
		if o.kind == kCall {
			mark(int(o.off))
		}
	}
	for _, t := range p.funcs {
		mark(int(t))
	}
	flow := func(pc int, f fpFacts) {
		if pc < 0 || pc >= n {
			return
		}
		if entry[pc] {
			return // nothing known, whatever flows in
		}
		if !seen[pc] {
			seen[pc], in[pc] = true, f
			work = append(work, pc)
			return
		}
		changed := false
		for r := range f {
			if in[pc][r].known && in[pc][r] != f[r] {
				in[pc][r] = fpFact{}
				changed = true
			}
		}
		if changed {
			work = append(work, pc)
		}
	}
	for len(work) > 0 {
		pc := work[len(work)-1]
		work = work[:len(work)-1]
		o := &p.code[pc]
		out := fpStep(o, in[pc])
		switch _, _, _, cond := jumpKind(o.kind); {
		case o.kind == kExit:
		case o.kind == kJa:
			flow(int(o.off), out)
		case cond || o.kind == kMayGoto:
			flow(int(o.off), out)
			flow(pc+1, out)
		default:
			flow(pc+1, out)
		}
	}
	return in
}

// fpStep is the facts after o given f before it.
func fpStep(o *op, f fpFacts) fpFacts {
	set := func(r uint8, v fpFact) {
		if r < regFP {
			f[r] = v
		}
	}
	get := func(r uint8) fpFact {
		switch {
		case r == regFP:
			return fpFact{known: true}
		case r < regFP:
			return f[r]
		}
		return fpFact{}
	}
	add := func(r uint8, d int64) {
		v := get(r)
		if v.known && d > -maxFPOff && d < maxFPOff {
			v.off += d
			if v.off > -maxFPOff && v.off < maxFPOff {
				set(r, v)
				return
			}
		}
		set(r, fpFact{})
	}
	switch k := o.kind; {
	case k == kMov64Reg:
		set(o.dst, get(o.src))
	case k == kAdd64Imm:
		add(o.dst, int64(o.imm))
	case k == kSub64Imm:
		if int64(o.imm) == math.MinInt64 {
			set(o.dst, fpFact{})
		} else {
			add(o.dst, -int64(o.imm))
		}
	case k >= kAdd64Imm && k <= kSwap64:
		set(o.dst, fpFact{}) // every other ALU op writes dst only
	case k >= kLdxB && k <= kLdxSW:
		set(o.dst, fpFact{})
	case k >= kStB && k <= kStxDW, k == kNop, k == kExit, k == kJa, k == kMayGoto:
	case k == kCall, k == kCallHelper, k == kCallx, k == kPoisoned:
		for r := range uint8(6) {
			set(r, fpFact{})
		}
	case k == kAtomic32 || k == kAtomic64:
		set(0, fpFact{})
		set(o.src, fpFact{})
		set(o.dst, fpFact{})
	case k >= kLdAbsB && k <= kLdIndW:
		set(0, fpFact{})
		set(o.dst, fpFact{})
	default:
		if _, _, _, ok := jumpKind(k); ok {
			break
		}
		return fpFacts{} // an op kind this analysis does not know
	}
	return f
}

// stackOff reports whether the access of n bytes by memory op o (a load
// or store, not an atomic) at op pc is proven to lie in the current
// frame, and its offset from r10.
func stackOff(o *op, f *fpFacts) (int32, bool) {
	var base uint8
	switch {
	case o.kind >= kLdxB && o.kind <= kLdxSW:
		base = o.src
	case isStore(o.kind):
		base = o.dst
	default:
		return 0, false
	}
	var off int64
	switch {
	case base == regFP:
	case base < regFP && f != nil && f[base].known:
		off = f[base].off
	default:
		return 0, false
	}
	off += int64(o.off)
	n := int64(memSize(o.kind))
	if off < -StackSize || off+n > 0 {
		return 0, false
	}
	return int32(off), true
}

// jumpKind maps every conditional jump kind to (its Imm form, register
// operand, 32-bit).
func jumpKind(k uint8) (base uint8, reg, w32 bool, ok bool) {
	switch {
	case k >= kJeqImm && k <= kJsleImm:
		return k, false, false, true
	case k >= kJeqReg && k <= kJsleReg:
		return k - kJeqReg + kJeqImm, true, false, true
	case k >= kJeq32Imm && k <= kJsle32Imm:
		return k - kJeq32Imm + kJeqImm, false, true, true
	case k >= kJeq32Reg && k <= kJsle32Reg:
		return k - kJeq32Reg + kJeqImm, true, true, true
	}
	return 0, false, false, false
}

func isStore(kind uint8) bool { return kind >= kStB && kind <= kStxDW }
