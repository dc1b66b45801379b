package vm

import "encoding/binary"

// The compiler's proofs: a forward analysis over the lowered program that
// finds which of r0-r9 hold r10 plus a constant, or a constant, on every
// path to an op. An access through such a register whose whole extent
// lies in the current frame is an access of the stack at a known offset,
// which needs no region check (as an access through r10 itself does not).
// An access through a constant (ld_imm64 of a global's or map value's
// address, plus offsets) is an access of a known region at a known
// offset: compiled code checks that region's rules with the region and
// offset as immediates (jit_mem_linux_amd64.go, constAccess) and uses the
// constant, not the register, as the address, so that even a wrong proof
// could not reach outside the regions; it would only give a wrong answer,
// which the engine-against-interpreter fuzz targets look for.
//
// Besides proofs it keeps hints, which nothing trusts: r1 at op 0 is
// probably the context (Machine.Run sets CtxAddr), so a register it
// flows into with constant offsets is guarded by one compare against
// the address it should hold before the context fast path runs; r0 after
// a helper is probably a map value or NULL, whose accesses try the slot
// memo before the packet window. A hint only orders the fast paths: a
// guard or window that fails falls back to the full translation.
//
// The context hint also survives a spill: clang keeps the context in a
// stack slot when registers run short and reloads it for each access
// (nat44 stores skb->mark through such a reload), so an 8-byte store of
// a hinted register to a proven stack offset is remembered (spillSet)
// until a store to the frame overlaps it or paths disagree, and an
// 8-byte load from that offset gets the hint back.
//
// The analysis must be sound, not complete: a register it cannot follow
// is unknown, every join of differing facts is unknown, every op writes
// unknown into every register it may write (calls: r0-r5, atomics: their
// operands and r0, LD_ABS: r0), and an entry (op 0, a call target, a
// callback) starts with nothing known. Go, when compiled code leaves to
// it mid-program, changes registers only as the op it performs does.

// fpFact says register r = r10 + off (known), r = val (cnst), or nothing
// (zero value); hint says what r probably holds (see hintAddr, hintSlot).
type fpFact struct {
	known bool
	off   int64
	cnst  bool
	hint  uint8
	val   uint64 // cnst: the value; hintAddr: the address expected
}

// Hints (never trusted): hintAddr, r probably equals val (the context
// pointer plus constants); hintSlot, r is probably a map value or NULL.
const (
	hintAddr uint8 = iota + 1
	hintSlot
)

// fpFacts is the state before one op: facts about r0-r9.
type fpFacts [regFP]fpFact

// spillSet is the frame's stack slots known to hold a hinted address
// (hintAddr): 8 bytes at r10+off hold val, probably.
type spillSet [maxSpills]spilled

type spilled struct {
	ok  bool
	off int32
	val uint64
}

// maxSpills is how many spilled hints the analysis follows at once.
const maxSpills = 4

// join keeps the slots s and t agree on; it reports whether s changed.
func (s *spillSet) join(t *spillSet) bool {
	changed := false
	for i := range s {
		if s[i].ok && !spillsHold(t, s[i]) {
			s[i] = spilled{}
			changed = true
		}
	}
	return changed
}

// spillsHold reports whether t holds e.
func spillsHold(t *spillSet, e spilled) bool {
	for _, x := range t {
		if x == e {
			return true
		}
	}
	return false
}

// step is the spill set after o, given the facts f before it; out is the
// facts after it, which a reload of a spilled hint completes.
func (s spillSet) step(o *op, f *fpFacts, out *fpFacts) spillSet {
	k := o.kind
	switch {
	case isStore(k) || k == kAtomic32 || k == kAtomic64:
		so, ok := stackOff(o, f)
		if k == kAtomic32 || k == kAtomic64 {
			so, ok = atomicStackOff(o, f)
		}
		if !ok {
			return s // not proven in the frame: only a hint is lost if it lands there
		}
		n := int32(memSize(k))
		for i := range s {
			if s[i].ok && s[i].off < so+n && so < s[i].off+8 {
				s[i] = spilled{}
			}
		}
		if k == kStxDW && o.src < regFP && f[o.src].hint == hintAddr {
			for i := range s {
				if !s[i].ok {
					s[i] = spilled{ok: true, off: so, val: f[o.src].val}
					break
				}
			}
		}
	case k == kLdxDW:
		if so, ok := stackOff(o, f); ok && o.dst < regFP {
			for _, e := range s {
				if e.ok && e.off == so {
					out[o.dst] = fpFact{hint: hintAddr, val: e.val}
				}
			}
		}
	}
	return s
}

// atomicStackOff is stackOff for an atomic op: its address is dst+off.
func atomicStackOff(o *op, f *fpFacts) (int32, bool) {
	var off int64
	switch {
	case o.dst == regFP:
	case o.dst < regFP && f[o.dst].known:
		off = f[o.dst].off
	default:
		return 0, false
	}
	off += int64(o.off)
	if off < -StackSize || off+int64(memSize(o.kind)) > 0 {
		return 0, false
	}
	return int32(off), true
}

// maxFPOff bounds the offsets followed, far beyond any frame, so that
// sums never overflow.
const maxFPOff = 1 << 32

// stackProofs computes the facts before every op of p. reached[pc] is
// false for ops no path reaches from an entry (their facts are empty).
func stackProofs(p *Program) []fpFacts {
	n := len(p.code)
	in := make([]fpFacts, n)
	spills := make([]spillSet, n)
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
	if n > 0 {
		// Only a hint: an entry's facts never change, whatever flows in.
		in[0][1] = fpFact{hint: hintAddr, val: CtxAddr}
	}
	for _, o := range p.code {
		if o.kind == kCall {
			mark(int(o.off))
			// A subprogram's first argument is mostly the context too
			// (a helper of the program's that takes the skb).
			if t := int(o.off); t > 0 && t < n {
				in[t][1] = fpFact{hint: hintAddr, val: CtxAddr}
			}
		}
	}
	for _, t := range p.funcs {
		mark(int(t))
	}
	flow := func(pc int, f fpFacts, s *spillSet) {
		if pc < 0 || pc >= n {
			return
		}
		if entry[pc] {
			return // nothing known, whatever flows in
		}
		if !seen[pc] {
			seen[pc], in[pc], spills[pc] = true, f, *s
			work = append(work, pc)
			return
		}
		changed := spills[pc].join(s)
		for r := range f {
			if j := joinFact(in[pc][r], f[r]); j != in[pc][r] {
				in[pc][r] = j
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
		s := spills[pc].step(o, &in[pc], &out)
		switch _, _, _, cond := jumpKind(o.kind); {
		case o.kind == kExit:
		case o.kind == kJa:
			flow(int(o.off), out, &s)
		case cond || o.kind == kMayGoto:
			flow(int(o.off), out, &s)
			flow(pc+1, out, &s)
		default:
			flow(pc+1, out, &s)
		}
	}
	return in
}

// joinFact is what is known of a register that holds a on one path and b
// on another: the same fact, or a hint that it is a map value or global
// (hintSlot) when each is one or a constant address in a shared region
// (a pointer clang chose between two counters: config_filter's passed
// or dropped), or nothing. Facts only lose precision at a join
// (cnst, then hintSlot, then nothing), so the analysis ends.
func joinFact(a, b fpFact) fpFact {
	switch {
	case a == b:
		return a
	case slotLike(a) && slotLike(b):
		return fpFact{hint: hintSlot}
	}
	return fpFact{}
}

// slotLike reports whether f says its register is probably a map value
// or global: hintSlot, or a constant address in a shared region.
func slotLike(f fpFact) bool {
	return f.hint == hintSlot || f.cnst && f.val>>32 >= firstShared && f.val>>32 < 1<<20
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
	// add is dst += d, where d is a constant.
	add := func(r uint8, d uint64) {
		v := get(r)
		switch {
		case v.known:
			if s := int64(d); s > -maxFPOff && s < maxFPOff {
				v.off += s
				if v.off > -maxFPOff && v.off < maxFPOff {
					set(r, v)
					return
				}
			}
			set(r, fpFact{})
		case v.cnst || v.hint == hintAddr:
			v.val += d // wraps as the machine's add does
			set(r, v)
		case v.hint == hintSlot:
			set(r, v)
		default:
			set(r, fpFact{})
		}
	}
	switch k := o.kind; {
	case k == kMov64Reg:
		set(o.dst, get(o.src))
	case k == kMov64Imm || k == kMov32Imm:
		set(o.dst, fpFact{cnst: true, val: o.imm}) // both load imm as it is (interp.go)
	case k == kAdd64Imm:
		add(o.dst, o.imm)
	case k == kSub64Imm:
		add(o.dst, -o.imm)
	case k == kAdd64Reg && get(o.src).cnst:
		add(o.dst, get(o.src).val)
	case k == kAdd64Reg && get(o.dst).cnst && get(o.src).known:
		d := get(o.dst).val
		set(o.dst, get(o.src))
		add(o.dst, d)
	case k == kAdd64Reg && (slotLike(get(o.dst)) && get(o.src) == fpFact{} || slotLike(get(o.src)) && get(o.dst) == fpFact{}):
		// A global or map value plus an index (config_filter's
		// verdicts[i]): probably still one.
		set(o.dst, fpFact{hint: hintSlot})
	case k >= kAdd64Imm && k <= kSwap64:
		set(o.dst, fpFact{}) // every other ALU op writes dst only
	case k >= kLdxB && k <= kLdxSW:
		set(o.dst, fpFact{})
	case k >= kStB && k <= kStxDW, k == kNop, k == kExit, k == kJa, k == kMayGoto:
	case k == kCall, k == kCallHelper, k == kCallx, k == kPoisoned:
		for r := range uint8(6) {
			set(r, fpFact{})
		}
		if k == kCallHelper {
			set(0, fpFact{hint: hintSlot})
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

// constLoad reports the value a load o (of n bytes) at the proven
// constant address k reads, when k lies in a constant region
// (Region.Constant) of p's address space and the access passes every
// rule Machine.access applies (read permission, bounds, the slot), so
// that compiled code may use the value instead of loading it. The region
// cannot change or go while p may run, so the interpreter reads the
// same.
func constLoad(p *Program, o *op, k uint64) (uint64, bool) {
	if p.as == nil || o.kind < kLdxB || o.kind > kLdxSW {
		return 0, false
	}
	regs := p.as.snap.Load()
	id, off := k>>32, uint32(k)
	if regs == nil || id < firstShared || id-firstShared >= uint64(len(*regs)) {
		return 0, false
	}
	r := &(*regs)[id-firstShared]
	b := r.accessSlow(off, memSize(o.kind), permRead) // Machine.access's rules
	if !r.constant || b == nil {
		return 0, false
	}
	var w [8]byte
	copy(w[:], b)
	return loadExtend(o.kind, binary.LittleEndian.Uint64(w[:])), true
}
