package vm

// Variable packet pointers: cursor parsing moves a pointer by a length
// read from the packet (p = data + ihl*4, p += doff*4), which no constant
// offset follows. Compiled code checks such a sum, at the start of the op
// after the add, against the whole window, lo <= p <= hi, and leaves for
// the interpreter otherwise (exitDeopt), as for the loads of data and
// data_end. From there on the register is the pointer of that guard site
// plus a constant, and a compare of it against data_end+M proves room
// past it the way one of data does: p >= lo by the check, p+N <= end+M
// <= hi by the compare and the check of data_end, with no wrap since p,
// N and M are bounded. The room is relative to the value the guard saw,
// not to data, so a new load of data leaves it; a new pass through the
// same guard forgets it, and a call forgets everything.

// pktVarSites marks the 64-bit register adds whose result compiled code
// can check at the start of the next op: one reached only from the add.
func pktVarSites(p *Program, joined []bool) []bool {
	sites := make([]bool, len(p.code))
	for pc, o := range p.code {
		sites[pc] = o.kind == kAdd64Reg && o.dst < regFP && o.src < regFP && !joined[pc+1] && pc+1 < len(p.code)
	}
	return sites
}

// pktVarGuarded reports whether the add o at a site is worth a check: it
// moves a packet pointer (data or an already checked one) by a register.
func pktVarGuarded(o *op, f *pktFacts) bool {
	ptr := func(k uint8) bool { return k == pktData || k == pktVar }
	return ptr(f.r[o.dst].kind) || ptr(f.r[o.src].kind)
}

// varGuard is the check of guard site id on register r: older values of
// the site, and the room past them, are gone.
func (f *pktFacts) varGuard(r uint8, id int32) {
	for i := range f.r {
		if f.r[i].kind == pktVar && f.r[i].id == id {
			f.r[i] = pktFact{}
		}
	}
	if f.vid == id {
		f.vid, f.vroom = 0, 0
	}
	f.r[r] = pktFact{kind: pktVar, id: id}
}

// prove records room bytes proven past the pointer ptr stands for; room
// past one variable pointer at a time is kept, the latest.
func (f *pktFacts) prove(ptr pktFact, room int64) {
	switch {
	case ptr.kind == pktData:
		f.room = max(f.room, room)
	case ptr.kind == pktVar && ptr.id == f.vid:
		f.vroom = max(f.vroom, room)
	case ptr.kind == pktVar:
		f.vid, f.vroom = ptr.id, room
	}
}
