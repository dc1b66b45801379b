package engine

import (
	"math"

	"github.com/cilium/ebpf/asm"
)

// Conditional jumps of the load-time checks' dataflow: which edges the
// verifier takes, and what each edge learns.

// branch is a conditional jump at index i: the states on its fall-through
// and taken edges, nil for an edge the verifier knows is not taken.
func (f *flow) branch(i int, st regState) (fall, taken *regState) {
	ins := f.a.ins[i]
	op := ins.OpCode
	jop := op.JumpOp()
	is32 := op.Class() == asm.Jump32Class
	dst := st[ins.Dst]
	src := constant(uint64(ins.Constant))
	if is32 {
		src = constant(uint64(uint32(ins.Constant)))
	}
	srcReg := -1
	if op.Source() == asm.RegSource {
		src, srcReg = st[ins.Src], int(ins.Src)
	}
	both := func(a, b regState) (*regState, *regState) { return &a, &b }
	isPkt := func(r absReg) bool { return r.kind == rPkt || r.kind == rPktEnd }
	switch {
	case jop == asm.JCOND || jop == asm.InvalidJumpOp:
		return both(st, st)
	case isPkt(dst) || isPkt(src):
		if srcReg < 0 || is32 {
			return both(st, st)
		}
		if dst.kind == rUnknown || src.kind == rUnknown {
			// A bound this analysis cannot read (a pointer it lost
			// track of): it proves nothing about packet pointers
			// from here on.
			for r := range st {
				if isPkt(st[r]) {
					st[r] = absReg{}
				}
			}
			return both(st, st)
		}
		return f.pktBranch(ins, jop, st)
	case dst.kind == rScalar && (src.kind == rScalar):
		return scalarBranch(ins, jop, is32, srcReg, st)
	case dst.kind == rScalar || src.kind == rScalar:
		// Compared with something unknown: the verifier may learn
		// from it, this analysis does not.
		inexact(&st, int(ins.Dst))
		if srcReg >= 0 {
			inexact(&st, srcReg)
		}
	}
	return both(st, st)
}

// flipJump is the operation with its operands swapped.
func flipJump(op asm.JumpOp) asm.JumpOp {
	switch op {
	case asm.JGT:
		return asm.JLT
	case asm.JGE:
		return asm.JLE
	case asm.JLT:
		return asm.JGT
	case asm.JLE:
		return asm.JGE
	case asm.JSGT:
		return asm.JSLT
	case asm.JSGE:
		return asm.JSLE
	case asm.JSLT:
		return asm.JSGT
	case asm.JSLE:
		return asm.JSGE
	}
	return op
}

// pktBranch compares a packet pointer with data_end as the verifier's
// is_pkt_ptr_branch_taken, try_match_pkt_pointers, find_good_pkt_pointers
// and mark_pkt_end do.
func (f *flow) pktBranch(ins asm.Instruction, jop asm.JumpOp, st regState) (fall, taken *regState) {
	dst, src := st[ins.Dst], st[ins.Src]
	preg := int(ins.Dst)
	switch {
	case dst.kind == rPkt && src.kind == rPktEnd:
	case dst.kind == rPktEnd && src.kind == rPkt:
		preg, jop = int(ins.Src), flipJump(jop)
	default:
		return &st, &st // pkt and pkt, end and end: nothing learnt
	}
	p := st[preg]
	// Now "if (p jop data_end) goto".
	if p.rngHi < 0 {
		allBeyond := p.rng == beyondPktEnd && p.rngHi == beyondPktEnd
		switch {
		case jop == asm.JGT && allBeyond, jop == asm.JGE:
			return nil, &st
		case jop == asm.JLE && allBeyond, jop == asm.JLT:
			return &st, nil
		}
	}
	in, out := st, st
	var open bool
	var mark int64
	var inIsFall bool
	switch jop {
	case asm.JGT:
		inIsFall, open, mark = true, false, beyondPktEnd
	case asm.JGE:
		inIsFall, open, mark = true, true, atPktEnd
	case asm.JLT:
		inIsFall, open, mark = false, true, atPktEnd
	case asm.JLE:
		inIsFall, open, mark = false, false, beyondPktEnd
	default:
		return &st, &st
	}
	if !(p.off < 0 || (p.off == 0 && open) || p.umax > maxPacketOff || p.umax+uint64(p.off) > maxPacketOff) {
		bound := p.off
		if open {
			bound++
		}
		for r := range in {
			if in[r].kind == rPkt && in[r].id == p.id {
				in[r].rng, in[r].rngHi = max(in[r].rng, bound), max(in[r].rngHi, bound)
			}
		}
	}
	out[preg].rng, out[preg].rngHi = mark, mark
	if inIsFall {
		return &in, &out
	}
	return &out, &in
}

// inexact marks register r, and the registers linked with it, as known
// less well here than by the verifier.
func inexact(st *regState, r int) {
	if st[r].kind != rScalar {
		return
	}
	if lid := st[r].lid; lid != 0 {
		for q := range st {
			if st[q].kind == rScalar && st[q].lid == lid {
				st[q].exact = false
			}
		}
	}
	st[r].exact = false
}

// scalarBranch decides and refines a comparison of two scalars as the
// verifier's is_scalar_branch_taken and reg_set_min_max do where this
// analysis can follow them; elsewhere the scalars turn inexact.
func scalarBranch(ins asm.Instruction, jop asm.JumpOp, is32 bool, srcReg int, st regState) (fall, taken *regState) {
	dst, src := st[ins.Dst], st[ins.Src]
	if srcReg < 0 {
		src = constant(uint64(ins.Constant))
		if is32 {
			src = constant(uint64(uint32(ins.Constant)))
		}
	}
	limit, slimit := uint64(math.MaxUint64), uint64(math.MaxInt64)
	if is32 {
		limit, slimit = math.MaxUint32, math.MaxInt32
	}
	signed := jop == asm.JSGT || jop == asm.JSGE || jop == asm.JSLT || jop == asm.JSLE
	fits := dst.umax <= limit && src.umax <= limit
	if signed {
		fits = dst.umax <= slimit && src.umax <= slimit
		switch jop { // the same order on these numbers
		case asm.JSGT:
			jop = asm.JGT
		case asm.JSGE:
			jop = asm.JGE
		case asm.JSLT:
			jop = asm.JLT
		case asm.JSLE:
			jop = asm.JLE
		}
	}
	giveUp := func() (*regState, *regState) {
		inexact(&st, int(ins.Dst))
		if srcReg >= 0 {
			inexact(&st, srcReg)
		}
		return &st, &st
	}
	if !fits || jop == asm.JSet {
		return giveUp()
	}
	switch decide(jop, dst, src) {
	case 1:
		return nil, &st
	case 0:
		return &st, nil
	}
	// Refine the one that is not a constant, against the one that is.
	r, k, op := int(ins.Dst), src, jop
	if !src.known() {
		if !dst.known() || srcReg < 0 {
			return giveUp()
		}
		r, k, op = srcReg, dst, flipJump(jop)
	}
	t, fl := st, st
	lo, hi := st[r].umin, st[r].umax
	v := k.umin
	var tl, th, fl0, fh = lo, hi, lo, hi
	switch op {
	case asm.JGT:
		tl, fh = max(lo, v+1), min(hi, v)
	case asm.JGE:
		tl, fh = max(lo, v), min(hi, v-1)
	case asm.JLT:
		th, fl0 = min(hi, v-1), max(lo, v)
	case asm.JLE:
		th, fl0 = min(hi, v), max(lo, v+1)
	case asm.JEq, asm.JNE:
		eqLo, eqHi, neLo, neHi := v, v, lo, hi
		if lo == v {
			neLo++
		}
		if hi == v {
			neHi--
		}
		if op == asm.JEq {
			tl, th, fl0, fh = eqLo, eqHi, neLo, neHi
		} else {
			tl, th, fl0, fh = neLo, neHi, eqLo, eqHi
		}
	default:
		return giveUp()
	}
	refine(&t, r, tl, th)
	refine(&fl, r, fl0, fh)
	return &fl, &t
}

// refine narrows register r (and its plain copies) to [lo, hi].
func refine(st *regState, r int, lo, hi uint64) {
	reg := st[r]
	lid, weak := reg.lid, reg.weak
	for q := range st {
		if q != r && (lid == 0 || st[q].kind != rScalar || st[q].lid != lid) {
			continue
		}
		if q != r && (weak || st[q].weak) {
			st[q].exact = false // linked with an offset
			continue
		}
		st[q].umin, st[q].umax = max(st[q].umin, lo), min(st[q].umax, hi)
	}
}

// decide is 1 if "a jop b" holds for all values, 0 if for none, -1 if
// it depends (unsigned order).
func decide(jop asm.JumpOp, a, b absReg) int {
	switch jop {
	case asm.JGT:
		return order(a.umin > b.umax, a.umax <= b.umin)
	case asm.JGE:
		return order(a.umin >= b.umax, a.umax < b.umin)
	case asm.JLT:
		return order(a.umax < b.umin, a.umin >= b.umax)
	case asm.JLE:
		return order(a.umax <= b.umin, a.umin > b.umax)
	case asm.JEq:
		return order(a.umin == a.umax && b.umin == b.umax && a.umin == b.umin, a.umax < b.umin || b.umax < a.umin)
	case asm.JNE:
		return order(a.umax < b.umin || b.umax < a.umin, a.umin == a.umax && b.umin == b.umax && a.umin == b.umin)
	}
	return -1
}

func order(always, never bool) int {
	switch {
	case always:
		return 1
	case never:
		return 0
	}
	return -1
}
