package engine

import (
	"math"
	"slices"

	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/skb"
)

// The forward dataflow of the load-time checks. Each function is split into
// basic blocks; a block's entry state is the join of the states on its
// incoming edges, recomputed until nothing changes, and only then does a
// last pass over the reachable blocks report findings. A fact survives a
// join only if it holds on every edge: a packet pointer keeps the least
// range of its incoming states, and two states that disagree about what a
// register is (its offset, its variable part) make it unknown. Unknown is
// never accused: a finding holds on a path the verifier also walks, so the
// kernel refuses what is reported.

// Register kinds of the analysis.
const (
	rUnknown = iota // nothing known: never accused
	rScalar         // a number in [umin, umax]
	rFP             // r10 + off
	rCtx            // context + off
	rPkt            // skb->data + variable part + off, accessible up to rng
	rPktEnd         // skb->data_end
	rMapRO          // a value of a map programs cannot write (.rodata)
	rFunc           // the address of function off (a subprog index), a callback
)

// The kernel's negative packet ranges, set on the branch where a pointer
// was found at or beyond data_end (mark_pkt_end).
const (
	beyondPktEnd = -1
	atPktEnd     = -2
	maxPacketOff = 0xffff // MAX_PACKET_OFF
)

// absReg is what the analysis knows of a register.
type absReg struct {
	kind uint8
	// exact: a scalar's bounds are the verifier's own (they came from
	// loads of known width, constants and refinements it makes too), so
	// whether it is a constant, and how large it can be, are the
	// verifier's answers. Only exact scalars move packet pointers.
	exact bool
	// weak: linked to lid with an offset, which the verifier refines
	// along with lid and this analysis does not (it turns inexact).
	weak bool
	off  int64
	// rng and rngHi are the least and the greatest packet range (the
	// verifier's reg->range) over the paths merged here: rng decides
	// findings, which need one path; rngHi decides branches, which need
	// all of them.
	rng, rngHi int64
	// id is a packet pointer's verifier id (0: no variable part, as
	// data itself); lid links copies of a scalar.
	id, lid uint32
	// umin, umax: a scalar's bounds, a packet pointer's variable part.
	umin, umax uint64
	// at: the stack offset of a spilled scalar (fp+at), 0 in registers.
	at int16
}

// regState is registers r0-r10, then spilled scalars in nSpills slots:
// the verifier keeps a spilled scalar's bounds and links, and compilers
// spill. A spill at fp+at lives in slot spillSlot(at) (a later spill to
// the same slot forgets the earlier one), so the slots of two states line
// up at a join.
type regState [11 + nSpills]absReg

const nSpills = 8

func spillSlot(at int64) int { return 11 + int((-at/8-1)%nSpills) }

// forgetStack drops the spills in [at, at+n), all of them if n < 0.
func (st *regState) forgetStack(at, n int64) {
	for e := 11; e < len(st); e++ {
		if s := int64(st[e].at); st[e].kind != rUnknown && (n < 0 || (s < at+n && at < s+8)) {
			st[e] = absReg{}
		}
	}
}

func scalar(lo, hi uint64, exact bool) absReg {
	return absReg{kind: rScalar, umin: lo, umax: hi, exact: exact}
}

func constant(v uint64) absReg { return scalar(v, v, true) }

// known: the verifier knows the register's value (tnum_is_const).
func (r absReg) known() bool { return r.kind == rScalar && r.exact && r.umin == r.umax }

// unknownOf is the verifier's unknown scalar of n bytes.
func unknownOf(n int64) absReg {
	if n >= 8 {
		return scalar(0, math.MaxUint64, true)
	}
	return scalar(0, 1<<(8*n)-1, true)
}

// block is a basic block of one function.
type block struct {
	first, last int    // instruction indices
	succ        [2]int // fall-through, taken; -1 if none
	preds       []int
	in          *regState
	out         [2]*regState
	visits      int
}

// flow is the dataflow of one function.
type flow struct {
	a      *analysis
	k      int // the function
	blocks []*block
	at     map[int]int // first instruction -> block
	ids    map[[3]uint32]uint32
	nextID uint32
}

const (
	widenAfter = 8  // visits of a block before differing registers turn unknown
	maxVisits  = 64 // per block on average, then the function is given up
	// maxBlocks bounds the states kept (three of about 1.2 KiB a block):
	// a larger function is not analysed, whatever bytecode it is.
	maxBlocks = 1 << 14
)

// scanFlow analyses function k; it reports nothing if the dataflow does
// not settle.
func (a *analysis) scanFlow(k int) {
	sp := a.subs[k]
	f := &flow{a: a, k: k, at: make(map[int]int), ids: make(map[[3]uint32]uint32), nextID: 1 << 24}
	f.buildBlocks(sp)
	if len(f.blocks) > maxBlocks || !f.solve() {
		return
	}
	for _, b := range f.blocks {
		if b.in != nil {
			f.transfer(b, *b.in, true)
		}
	}
}

func (f *flow) buildBlocks(sp *subprog) {
	a := f.a
	leader := map[int]bool{sp.start: true}
	for i := sp.start; i < sp.end; i++ {
		ins := a.ins[i]
		if !ins.OpCode.Class().IsJump() || ins.IsFunctionCall() || ins.OpCode.JumpOp() == asm.Call {
			continue
		}
		if j := a.target(i); j >= sp.start && j < sp.end {
			leader[j] = true
		}
		if i+1 < sp.end {
			leader[i+1] = true
		}
	}
	starts := make([]int, 0, len(leader))
	for i := range leader {
		starts = append(starts, i)
	}
	slices.Sort(starts)
	for n, s := range starts {
		end := sp.end
		if n+1 < len(starts) {
			end = starts[n+1]
		}
		f.at[s] = len(f.blocks)
		f.blocks = append(f.blocks, &block{first: s, last: end - 1, succ: [2]int{-1, -1}})
	}
	for bi, b := range f.blocks {
		ins := a.ins[b.last]
		op := ins.OpCode
		jump := op.Class().IsJump() && !ins.IsFunctionCall() && op.JumpOp() != asm.Call
		if !jump || (op.JumpOp() != asm.Exit && op.JumpOp() != asm.Ja) {
			if n, ok := f.at[b.last+1]; ok {
				b.succ[0] = n
			}
		}
		if jump && op.JumpOp() != asm.Exit {
			if n, ok := f.at[a.target(b.last)]; ok {
				b.succ[1] = n
			}
		}
		for _, s := range b.succ {
			if s >= 0 && !slices.Contains(f.blocks[s].preds, bi) {
				f.blocks[s].preds = append(f.blocks[s].preds, bi)
			}
		}
	}
}

// solve iterates block entry states to a fixed point.
func (f *flow) solve() bool {
	queue := []int{0}
	queued := make([]bool, len(f.blocks))
	queued[0] = true
	budget := maxVisits * len(f.blocks)
	for len(queue) > 0 {
		if budget--; budget < 0 {
			return false
		}
		bi := queue[0]
		queue = queue[1:]
		queued[bi] = false
		b := f.blocks[bi]
		var st regState
		has := false
		if bi == 0 {
			st, has = f.a.entryState(f.k), true
		}
		for _, p := range b.preds {
			pb := f.blocks[p]
			for e, s := range pb.succ {
				if s != bi || pb.out[e] == nil {
					continue
				}
				if has {
					st = f.join(bi, &st, pb.out[e])
				} else {
					st, has = *pb.out[e], true
				}
			}
		}
		if !has {
			continue
		}
		if b.in != nil && b.visits >= widenAfter {
			st = widen(b.in, &st)
		}
		if b.in != nil && *b.in == st {
			continue
		}
		b.in = &st
		b.visits++
		out := f.transfer(b, st, false)
		for e, s := range b.succ {
			if s < 0 {
				continue
			}
			if (out[e] == nil) != (b.out[e] == nil) || (out[e] != nil && *out[e] != *b.out[e]) {
				b.out[e] = out[e]
				if !queued[s] {
					queued[s] = true
					queue = append(queue, s)
				}
			}
		}
	}
	return true
}

// join merges the states of two edges into block bi.
func (f *flow) join(bi int, x, y *regState) regState {
	var st regState
	for r := range st {
		st[r] = f.joinReg(bi, x[r], y[r])
	}
	return st
}

func (f *flow) joinReg(bi int, x, y absReg) absReg {
	if x == y {
		return x
	}
	if x.kind != y.kind || x.at != y.at {
		return absReg{}
	}
	switch x.kind {
	case rScalar:
		out := scalar(min(x.umin, y.umin), max(x.umax, y.umax), x.exact && y.exact && x.umin == y.umin && x.umax == y.umax)
		out.at = x.at
		if x.lid == y.lid && x.weak == y.weak {
			out.lid, out.weak = x.lid, x.weak
		} else {
			out.exact = false // linked elsewhere on one path: refined there, not here
		}
		return out
	case rPkt:
		if x.off != y.off || x.umin != y.umin || x.umax != y.umax {
			return absReg{}
		}
		out := x
		out.rng, out.rngHi = min(x.rng, y.rng), max(x.rngHi, y.rngHi)
		if x.id != y.id {
			// The two are one pointer on neither path's terms: a check
			// of one id's pointers leaves this one unchecked on the
			// other path. Pairs map to one id, so registers equal on
			// every path stay equal.
			key := [3]uint32{uint32(bi), x.id, y.id}
			id, ok := f.ids[key]
			if !ok {
				id = f.nextID
				f.nextID++
				f.ids[key] = id
			}
			out.id = id
		}
		return out
	case rFP, rCtx, rMapRO, rFunc:
		if x.off == y.off {
			return x
		}
	case rPktEnd:
		return x
	}
	return absReg{}
}

// widen makes every register that still changes at a loop head unknown,
// so the iteration ends; packet ranges only shrink, and are kept.
func widen(old, cur *regState) regState {
	st := *cur
	for r := range st {
		o, c := old[r], cur[r]
		o.rng, o.rngHi, c.rng, c.rngHi = 0, 0, 0, 0
		if o != c {
			st[r] = absReg{}
		} else if cur[r].kind == rPkt {
			st[r].rng, st[r].rngHi = min(old[r].rng, cur[r].rng), max(old[r].rngHi, cur[r].rngHi)
		}
	}
	return st
}

// transfer runs block b from st; it returns the states on its fall-through
// and taken edges (nil where the verifier would not go). With emit it
// reports findings.
func (f *flow) transfer(b *block, st regState, emit bool) [2]*regState {
	a := f.a
	sp := a.subs[f.k]
	for i := b.first; i < b.last; i++ {
		f.step(i, sp, &st, emit)
	}
	ins := a.ins[b.last]
	op := ins.OpCode
	if !op.Class().IsJump() || ins.IsFunctionCall() || op.JumpOp() == asm.Call {
		f.step(b.last, sp, &st, emit)
		return [2]*regState{&st, nil}
	}
	switch op.JumpOp() {
	case asm.Exit:
		return [2]*regState{}
	case asm.Ja:
		return [2]*regState{nil, &st}
	}
	fall, taken := f.branch(b.last, st)
	return [2]*regState{fall, taken}
}

// step interprets one instruction that does not branch.
func (f *flow) step(i int, sp *subprog, regs *regState, emit bool) {
	a := f.a
	ins := a.ins[i]
	op := ins.OpCode
	switch cls := op.Class(); {
	case cls == asm.LdXClass:
		base := regs[ins.Src]
		n := int64(op.Size().Sizeof())
		if emit {
			a.access(i, sp, base, int64(ins.Offset), n)
		}
		v := loadResult(base, ins, n)
		if at := base.off + int64(ins.Offset); base.kind == rFP && n == 8 && at < 0 && at%8 == 0 && op.Mode() == asm.MemMode {
			if e := spillSlot(at); int64(regs[e].at) == at {
				v = regs[e]
				v.at = 0
			}
		}
		regs[ins.Dst] = v
	case (cls == asm.StClass || cls == asm.StXClass) && op.Mode() == asm.MemMode:
		n := int64(op.Size().Sizeof())
		if emit {
			a.access(i, sp, regs[ins.Dst], int64(ins.Offset), n)
		}
		f.store(i, regs, n)
	case cls == asm.StXClass: // atomics
		n := int64(op.Size().Sizeof())
		if emit {
			a.access(i, sp, regs[ins.Dst], int64(ins.Offset), n)
		}
		f.store(i, regs, n)
		if ins.Constant&1 != 0 { // BPF_FETCH
			regs[ins.Src] = absReg{}
		}
		regs[0] = absReg{} // cmpxchg
	case cls == asm.ALU64Class:
		f.alu64(i, regs)
	case cls == asm.ALUClass:
		alu32(ins, regs)
	case cls == asm.LdClass:
		regs[ins.Dst] = absReg{}
		switch {
		case ins.IsLoadOfFunctionPointer():
			if k := a.subAt(a.target(i)); k >= 0 {
				regs[ins.Dst] = absReg{kind: rFunc, off: int64(k)}
			}
		case ins.IsLoadFromMap():
			if ins.Src == asm.PseudoMapValue && a.readOnly != nil && a.readOnly(int32(uint32(ins.Constant))) {
				regs[ins.Dst] = absReg{kind: rMapRO}
			}
		case op.IsDWordLoad():
			regs[ins.Dst] = constant(uint64(ins.Constant))
		}
		if op.Mode() == asm.AbsMode || op.Mode() == asm.IndMode {
			for r := range 6 {
				regs[r] = absReg{}
			}
		}
	case cls.IsJump() && (ins.IsFunctionCall() || op.JumpOp() == asm.Call):
		if emit {
			a.call(i, sp, regs)
		}
		ret := absReg{}
		if ins.IsBuiltinCall() && unknownResult[asm.BuiltinFunc(ins.Constant)] {
			ret = unknownOf(8)
		}
		for r := range 6 {
			regs[r] = absReg{}
		}
		regs[0] = ret
		regs.forgetStack(0, -1) // the callee may write the caller's stack
		for r := range regs {
			if regs[r].kind == rPkt || regs[r].kind == rPktEnd {
				regs[r] = absReg{} // helpers and subprograms may move the packet
			}
		}
	}
}

// store updates the spills for a store of n bytes; a plain 8-byte store
// of a scalar to the stack is a spill, linked with its register as the
// verifier's save_register_state links them.
func (f *flow) store(i int, regs *regState, n int64) {
	ins := f.a.ins[i]
	base := regs[ins.Dst]
	switch base.kind {
	case rFP:
	case rPkt, rPktEnd, rCtx, rMapRO:
		return // not the stack
	default:
		regs.forgetStack(0, -1) // it may be the stack
		return
	}
	at := base.off + int64(ins.Offset)
	regs.forgetStack(at, n)
	op := ins.OpCode
	if op.Class() != asm.StXClass || op.Mode() != asm.MemMode || n != 8 || at >= 0 || at%8 != 0 {
		return
	}
	v := regs[ins.Src]
	if v.kind != rScalar {
		return
	}
	if !v.known() && v.lid == 0 {
		v.lid, v.weak = uint32(i+1)|1<<30, false
		regs[ins.Src] = v
	}
	v.at = int16(at)
	regs[spillSlot(at)] = v
}

// unknownResult are helpers whose result the verifier knows nothing about
// but that it is a number (do_refine_retval_range leaves them alone).
var unknownResult = map[asm.BuiltinFunc]bool{
	asm.FnKtimeGetNs: true, asm.FnKtimeGetBootNs: true, asm.FnKtimeGetCoarseNs: true,
	asm.FnKtimeGetTaiNs: true, asm.FnGetPrandomU32: true, asm.FnJiffies64: true,
}

// loadResult is what a load of n bytes from base puts in its register.
func loadResult(base absReg, ins asm.Instruction, n int64) absReg {
	op := ins.OpCode
	if op.Mode() != asm.MemMode {
		return absReg{} // sign-extending loads
	}
	switch base.kind {
	case rCtx:
		off := base.off + int64(ins.Offset)
		switch {
		case off == skb.CtxData && n == 4:
			return absReg{kind: rPkt}
		case off == skb.CtxDataEnd && n == 4:
			return absReg{kind: rPktEnd}
		case off+n > skb.CtxData && off < skb.CtxDataEnd+4,
			off+n > skb.CtxDataMeta && off < skb.CtxTstamp,
			off+n > skb.CtxSk && off < skb.CtxSk+8:
			return absReg{} // pointers
		}
		return unknownOf(n)
	case rPkt:
		return unknownOf(n)
	}
	return absReg{}
}

// alu64 interprets a 64-bit ALU instruction as the verifier's
// adjust_reg_min_max_vals and adjust_ptr_min_max_vals do, where it can.
func (f *flow) alu64(i int, regs *regState) {
	ins := f.a.ins[i]
	op := ins.OpCode
	dst := regs[ins.Dst]
	var src absReg
	if op.Source() == asm.ImmSource {
		src = constant(uint64(ins.Constant))
	} else {
		src = regs[ins.Src]
	}
	switch aop := op.ALUOp(); {
	case aop == asm.Mov && op.Source() == asm.RegSource && ins.Offset == 0:
		if src.kind == rScalar && !src.known() {
			if src.lid == 0 { // the verifier links the two copies
				src.lid, src.weak = uint32(i+1)|1<<30, false
				regs[ins.Src] = src
			}
		}
		regs[ins.Dst] = src
	case aop == asm.Mov && op.Source() == asm.ImmSource:
		regs[ins.Dst] = src
	case aop == asm.Add || aop == asm.Sub:
		regs[ins.Dst] = f.addSub(i, dst, src, aop == asm.Sub)
	case dst.kind == rScalar && src.kind == rScalar:
		regs[ins.Dst] = scalarOp(aop, dst, src, 64)
	default:
		regs[ins.Dst] = absReg{}
	}
}

// addSub is dst += src or dst -= src.
func (f *flow) addSub(i int, dst, src absReg, sub bool) absReg {
	if dst.kind == rScalar && src.kind == rScalar {
		out := scalar(0, math.MaxUint64, false)
		if sub {
			if dst.umin >= src.umax {
				out = scalar(dst.umin-src.umax, dst.umax-src.umin, dst.exact && src.exact)
			}
		} else if lo, hi := dst.umin+src.umin, dst.umax+src.umax; lo >= dst.umin && hi >= dst.umax {
			out = scalar(lo, hi, dst.exact && src.exact)
		}
		if src.known() && dst.lid != 0 {
			out.lid, out.weak = dst.lid, true // linked with an offset
		}
		return out
	}
	ptr, off := dst, src
	if !sub && src.kind != rScalar && dst.kind == rScalar {
		ptr, off = src, dst // scalar += pointer
	}
	if off.kind != rScalar || !off.exact {
		return absReg{} // the verifier may know it as a constant; this does not
	}
	switch ptr.kind {
	case rFP, rCtx, rMapRO, rPkt:
	default:
		return absReg{}
	}
	if off.known() {
		d := int64(off.umin)
		if sub {
			d = -d
		}
		if int64(int32(ptr.off+d)) != ptr.off+d {
			return absReg{}
		}
		ptr.off += d
		return ptr
	}
	if ptr.kind != rPkt {
		return absReg{} // a variable offset into the stack or context
	}
	// A new variable part: a new id, and (for an addition, or a
	// subtrahend that may be negative) no range.
	out := ptr
	out.id = uint32(i + 1)
	if sub {
		if ptr.umin < off.umax {
			out.umin, out.umax = 0, math.MaxUint64
		} else {
			out.umin, out.umax = ptr.umin-off.umax, ptr.umax-off.umin
		}
		if off.umax > math.MaxInt64 {
			out.rng, out.rngHi = 0, 0
		}
		return out
	}
	lo, hi := ptr.umin+off.umin, ptr.umax+off.umax
	if lo < ptr.umin || hi < ptr.umax {
		lo, hi = 0, math.MaxUint64
	}
	out.umin, out.umax = lo, hi
	out.rng, out.rngHi = 0, 0
	return out
}

// scalarOp is a scalar ALU operation on width bits other than add and
// sub; its result is exact where the verifier's bounds are plainly these.
func scalarOp(aop asm.ALUOp, dst, src absReg, width uint) absReg {
	full := uint64(math.MaxUint64)
	if width == 32 {
		full = math.MaxUint32
		if dst.umax > full { // the low half of a wider number
			dst = scalar(0, full, dst.exact && dst.umin == 0 && dst.umax == math.MaxUint64)
		}
	}
	out := scalar(0, full, false)
	switch {
	case aop == asm.And && src.known():
		m := src.umin & full
		// A mask of an unknown of some width (or of a number bounded
		// from 0) is what the verifier's tnum and bounds agree on.
		out = scalar(0, min(dst.umax, m), dst.exact && dst.umin == 0)
		if dst.known() {
			out = constant(dst.umin & m)
		}
	case aop == asm.RSh && src.known() && src.umin < uint64(width):
		out = scalar(dst.umin>>src.umin, dst.umax>>src.umin, dst.exact)
	case aop == asm.LSh && src.known() && src.umin < uint64(width) && dst.umax <= full>>src.umin:
		out = scalar(dst.umin<<src.umin, dst.umax<<src.umin, dst.exact)
	}
	return out
}

// alu32 interprets a 32-bit ALU instruction: a scalar, zero-extended.
func alu32(ins asm.Instruction, regs *regState) {
	op := ins.OpCode
	dst := regs[ins.Dst]
	src := constant(uint64(uint32(ins.Constant)))
	if op.Source() == asm.RegSource {
		src = regs[ins.Src]
	}
	switch {
	case op.ALUOp() == asm.Mov && op.Source() == asm.ImmSource:
		regs[ins.Dst] = src
	case dst.kind == rScalar && src.kind == rScalar && op.ALUOp() != asm.Mov:
		regs[ins.Dst] = scalarOp(op.ALUOp(), dst, src, 32)
	default:
		regs[ins.Dst] = scalar(0, math.MaxUint32, false)
	}
}
