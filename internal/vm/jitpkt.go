package vm

// Packet range proofs: the verifier's "data + N <= data_end" for compiled
// code. Nothing in the VM types r1, so a compare against a register that
// merely looks like data_end proves nothing; what anchors the proof is a
// check at run time. A 4-byte load through the probable context pointer
// (hintAddr) at the offset the owner names for the packet's data
// (Options.PacketPointers) is followed in compiled code by a compare of
// the loaded value with the start of the packet window, and at data_end's
// offset with its end; a value that differs leaves compiled code for the
// rest of the frame, which the interpreter then runs (exitDeopt). After
// the compare the register is known to hold the window's start (or end)
// plus a constant, whatever the context is. A conditional jump between a
// register known as data+N and one known as data_end+M then proves, on
// one of its edges, that the window holds at least N-M bytes (room), and
// an access through data+c inside that room needs no window check: its
// host address is the address plus the window's delta.
//
// The window changes only in Go: every call (helpers, kfuncs,
// bpf-to-bpf, tail calls) forgets all of it, as the verifier
// invalidates packet pointers after a helper that may change the packet.
// Memory exits to Go do not change the window. Like the stack proofs,
// the analysis keeps a fact only if every path brings the same one, and
// an entry starts with nothing known.

// PacketPointers names where a context holds the packet's data and
// data_end pointers as 4-byte values (struct __sk_buff's data and
// data_end): compiled code checks the values loaded from there against the
// packet window and, when they match, proves packet accesses against
// the program's own bounds checks instead of the window (see jitpkt.go).
// The zero value names none.
type PacketPointers struct {
	Data, End int32
}

// pktKind says what a register holds: the window's start (data) or end
// (data_end), plus pktFact.off.
const (
	pktData uint8 = iota + 1
	pktEnd
	pktVar // a pointer checked inside the window at guard site id (jitpktvar.go)
)

type pktFact struct {
	kind uint8
	id   int32 // pktVar: the guard site, its op's pc + 1
	off  int64
}

// pktFacts is the state before one op: facts about r0-r9, the bytes the
// window is proven to hold past data, and past the pointer of guard site
// vid (vroom; vid is 0 when vroom is).
type pktFacts struct {
	r     [regFP]pktFact
	room  int64
	vid   int32
	vroom int64
}

// maxPktOff bounds the offsets followed, so that sums never overflow and
// a proof never reaches past a packet of 4 GiB.
const maxPktOff = 1 << 31

// Every register known as data+c holds the same value of data on any one
// path, and the room is relative to it: a load of data forgets the others.
//
// pktProofs computes the packet facts before every op of p; guard[pc] is
// pktData or pktEnd for a load whose result compiled code must check
// against the window. nil when the program has no context hint to start
// from or pp names nothing.
func pktProofs(p *Program, stack []fpFacts, pp PacketPointers) (in []pktFacts, guard []uint8) {
	if pp == (PacketPointers{}) {
		return nil, nil
	}
	n := len(p.code)
	// The check of a load at pc runs at the start of op pc+1, where both
	// the load's own code and Go, after doing the load for it, go on; so
	// op pc+1 must be reached from nowhere else (no jump target, entry
	// or return point).
	joined := make([]bool, n+1)
	joined[0] = true
	for _, o := range p.code {
		if _, _, _, cond := jumpKind(o.kind); cond || o.kind == kJa || o.kind == kMayGoto || o.kind == kCall {
			if t := int(o.off); t >= 0 && t < n {
				joined[t] = true
			}
		}
	}
	for _, t := range p.funcs {
		if t >= 0 && int(t) < n {
			joined[t] = true
		}
	}
	guard = make([]uint8, n)
	vsite := pktVarSites(p, joined)
	any := false
	for pc := range p.code {
		o := &p.code[pc]
		if o.kind != kLdxW || o.src >= regFP || pc+1 >= n || joined[pc+1] {
			continue
		}
		f := stack[pc][o.src]
		if f.hint != hintAddr {
			continue
		}
		switch f.val + uint64(int64(o.off)) {
		case CtxAddr + uint64(pp.Data):
			guard[pc], any = pktData, true
		case CtxAddr + uint64(pp.End):
			guard[pc], any = pktEnd, true
		}
	}
	if !any {
		return nil, nil
	}
	in = make([]pktFacts, n)
	seen := make([]bool, n)
	entry := make([]bool, n)
	var work []int
	mark := func(pc int) {
		if pc >= 0 && pc < n && !entry[pc] {
			entry[pc], seen[pc] = true, true
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
	flow := func(pc int, f pktFacts) {
		if pc < 0 || pc >= n || entry[pc] {
			return
		}
		if !seen[pc] {
			seen[pc], in[pc] = true, f
			work = append(work, pc)
			return
		}
		changed := false
		for r := range f.r {
			if in[pc].r[r] != (pktFact{}) && in[pc].r[r] != f.r[r] {
				in[pc].r[r] = pktFact{}
				changed = true
			}
		}
		if f.room < in[pc].room {
			in[pc].room = f.room
			changed = true
		}
		if f.vid != in[pc].vid && in[pc].vid != 0 {
			in[pc].vid, in[pc].vroom = 0, 0
			changed = true
		} else if f.vroom < in[pc].vroom {
			in[pc].vroom = f.vroom
			changed = true
		}
		if changed {
			work = append(work, pc)
		}
	}
	for len(work) > 0 {
		pc := work[len(work)-1]
		work = work[:len(work)-1]
		o := &p.code[pc]
		g := guard[pc]
		if vsite[pc] && pktVarGuarded(o, &in[pc]) {
			g = pktVar
		}
		out := pktStep(o, in[pc], g, pc)
		switch _, _, _, cond := jumpKind(o.kind); {
		case o.kind == kExit:
		case o.kind == kJa:
			flow(int(o.off), out)
		case cond:
			taken, fall := out, out
			if ptr, r, onTaken, ok := pktCompare(o, &in[pc]); ok {
				e := &fall
				if onTaken {
					e = &taken
				}
				e.prove(ptr, r)
			}
			flow(int(o.off), taken)
			flow(pc+1, fall)
		case o.kind == kMayGoto:
			flow(int(o.off), out)
			flow(pc+1, out)
		default:
			flow(pc+1, out)
		}
	}
	for pc := range vsite {
		if vsite[pc] && seen[pc] && pktVarGuarded(&p.code[pc], &in[pc]) {
			guard[pc] = pktVar
		}
	}
	return in, guard
}

// pktStep is the facts after o, at pc, given f before it; g is the guard
// of o.
func pktStep(o *op, f pktFacts, g uint8, pc int) pktFacts {
	set := func(r uint8, v pktFact) {
		if r < regFP {
			f.r[r] = v
		}
	}
	get := func(r uint8) pktFact {
		if r < regFP {
			return f.r[r]
		}
		return pktFact{}
	}
	add := func(r uint8, d int64) {
		v := get(r)
		if v.kind == 0 || d <= -maxPktOff || d >= maxPktOff || v.off+d <= -maxPktOff || v.off+d >= maxPktOff {
			set(r, pktFact{})
			return
		}
		v.off += d
		set(r, v)
	}
	switch k := o.kind; {
	case g == pktData:
		// The room is relative to one value of data: another load of it
		// may read another (a context the program stored into), so
		// every register holding the old one, and the room, go.
		for r := range f.r {
			if f.r[r].kind == pktData {
				f.r[r] = pktFact{}
			}
		}
		f.room = 0
		set(o.dst, pktFact{kind: g}) // checked after the load (jitc.pktPtrGuard)
	case g == pktVar:
		f.varGuard(o.dst, int32(pc+1))
	case g != 0:
		set(o.dst, pktFact{kind: g}) // checked after the load (jitc.pktPtrGuard)
	case k == kMov64Reg:
		set(o.dst, get(o.src))
	case k == kAdd64Imm:
		add(o.dst, int64(o.imm))
	case k == kSub64Imm:
		add(o.dst, -int64(o.imm))
	case k >= kAdd64Imm && k <= kSwap64, k >= kLdxB && k <= kLdxSW:
		set(o.dst, pktFact{}) // every other ALU op and load writes dst only
	case k >= kStB && k <= kStxDW, k == kNop, k == kExit, k == kJa, k == kMayGoto:
	case k >= kLdAbsB && k <= kLdIndW:
		set(0, pktFact{})
		set(o.dst, pktFact{})
	case k == kAtomic32 || k == kAtomic64:
		set(0, pktFact{})
		set(o.src, pktFact{})
		set(o.dst, pktFact{})
	default:
		if _, _, _, ok := jumpKind(k); ok {
			break
		}
		// Calls of every kind (the packet may change) and whatever
		// this analysis does not know: nothing is left.
		return pktFacts{}
	}
	return f
}

// pktCompare reads a 64-bit unsigned register compare between data+N and
// data_end+M: it reports the room it proves, and whether on the taken
// edge (else on the fall-through). Addresses do not wrap: the packet
// lies in the low 4 GiB of its region and offsets are bounded.
func pktCompare(o *op, f *pktFacts) (ptr pktFact, room int64, onTaken, ok bool) {
	if o.dst >= regFP || o.src >= regFP {
		return ptr, 0, false, false
	}
	var strict bool // the edge proves data+N < data_end+M
	a, b := f.r[o.dst], f.r[o.src]
	switch {
	case (a.kind == pktData || a.kind == pktVar) && b.kind == pktEnd:
		// dst is data+N, src is data_end+M.
		switch o.kind {
		case kJgtReg: // taken: a > b; fall: a <= b
			onTaken = false
		case kJgeReg: // fall: a < b
			onTaken, strict = false, true
		case kJltReg: // taken: a < b
			onTaken, strict = true, true
		case kJleReg: // taken: a <= b
			onTaken = true
		default:
			return ptr, 0, false, false
		}
	case a.kind == pktEnd && (b.kind == pktData || b.kind == pktVar):
		a, b = b, a // dst is data_end+M, src is data+N
		switch o.kind {
		case kJgtReg: // taken: end > data
			onTaken, strict = true, true
		case kJgeReg: // taken: end >= data
			onTaken = true
		case kJltReg: // fall: end >= data
			onTaken = false
		case kJleReg: // fall: end > data
			onTaken, strict = false, true
		default:
			return ptr, 0, false, false
		}
	default:
		return ptr, 0, false, false
	}
	// Neither side may wrap, or the unsigned compare would prove nothing
	// about the numbers: data and data_end are below 2^32 once checked
	// (data_end may be as low as 1), and so is a checked variable
	// pointer, so N and M must not be negative.
	if a.off < 0 || b.off < 0 {
		return ptr, 0, false, false
	}
	room = a.off - b.off // data + N <= end + M: room N - M
	if strict {
		room++
	}
	return a, room, onTaken, room > 0
}

// pktProven reports whether the access of n bytes at off through
// register r, which holds data+c (or a checked variable pointer plus c)
// before op pc, lies in the proven room.
func pktProven(f *pktFacts, r uint8, off int32, n int) bool {
	if f == nil || r >= regFP {
		return false
	}
	room := f.room
	switch v := f.r[r]; {
	case v.kind == pktVar && v.id == f.vid:
		room = f.vroom
	case v.kind != pktData:
		return false
	}
	lo := f.r[r].off + int64(off)
	return lo >= 0 && lo+int64(n) <= room
}
