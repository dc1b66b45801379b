package vm

import x "github.com/tcxgo/tcx/internal/vm/amd64"

// Site memos: an access through a probable map value (hintSlot) checks a
// slot memo of its own before the shared memo and its ways. A run that
// goes through several map values in turn (a counter in each of a few
// array entries and a hash value: proto_counters) otherwise finds the
// shared memo holding another slot at almost every access and walks the
// ways, two compares and a jump each, in out-of-line code. The entry is
// a copy of a memo that translated (the shared memo or a way, both valid
// until Machine.rebind), so it is as valid as they are, and forgetSlots
// empties it with them; entries for loads and for stores are apart,
// since a slot translated for reading need not be writable. Sites of
// different programs may share an entry (siteMemoAt), which costs only
// misses: every entry is right for every program of the Machine.

// codeSalt is a hash of a program's ops, which siteMemoAt mixes with a
// site's op index: programs sharing a Machine mostly spread their sites
// over different entries, and compiling the same program again gives
// the same ones.
func codeSalt(code []op) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := range code {
		o := &code[i]
		h = (h ^ uint64(o.kind) ^ uint64(o.dst)<<8 ^ uint64(o.src)<<16 ^ uint64(uint32(o.off))<<24) * 0x100000001b3
		h = (h ^ o.imm) * 0x100000001b3
	}
	return h
}

// siteMemoAt is the offset in the Machine of the site memo of the access
// at op pc, for a store if write.
func (c *jitc) siteMemoAt(pc int, write bool) int32 {
	h := int32(((c.salt ^ uint64(pc)) * 0x9e3779b97f4a7c15) >> (64 - 5))
	dir := int32(0)
	if write {
		dir = 1
	}
	return offSites + (dir*siteMemos+h)*memoSize
}

// memoCheck is the check of the memo at offset m for an access of n bytes
// at the address in r11: r11 becomes the host address, or the code jumps
// to miss.
func (c *jitc) memoCheck(m int32, n int, miss x.Label) {
	a := &c.a
	a.ALURM(true, x.CMP, jT0, x.M(jState, m+offMemoLo))
	a.Jcc(x.CondB, miss)
	a.ALURM(true, x.CMP, jT0, x.M(jState, m+offMemoMax+8*int32(sizeLog(n))))
	a.Jcc(x.CondA, miss)
	a.ALURM(true, x.ADD, jT0, x.M(jState, m+offMemoDelta))
}

// slotMemoFill is slotMemo (the shared memo, then its ways) for a site
// whose memo is at se: the memo or way that holds the address is copied
// there before the code goes on at done. A miss falls through.
func (c *jitc) slotMemoFill(n int, write bool, se int32, done x.Label) {
	a := &c.a
	dir := int32(0)
	if write {
		dir = 1
	}
	memos := []int32{sharedMemo(write)}
	for w := range int32(memoWays) {
		memos = append(memos, offWays+(dir*waysRow+w)*memoSize)
	}
	for _, m := range memos {
		next := a.NewLabel()
		a.ALURM(true, x.CMP, jT0, x.M(jState, m+offMemoLo))
		a.Jcc(x.CondB, next)
		a.ALURM(true, x.CMP, jT0, x.M(jState, m+offMemoMax+8*int32(sizeLog(n))))
		a.Jcc(x.CondA, next)
		c.memoCopy(m, se)
		a.ALURM(true, x.ADD, jT0, x.M(jState, se+offMemoDelta))
		a.Jmp(done)
		a.Bind(next)
	}
}

// memoCopy copies the memo at offset from to the one at to, with r10.
func (c *jitc) memoCopy(from, to int32) {
	a := &c.a
	for i := int32(0); i < memoSize; i += 8 {
		a.Load(8, jT1, x.M(jState, from+i))
		a.Store(8, x.M(jState, to+i), jT1)
	}
}

// sharedMemo is the offset in the Machine of jitState.memo for loads, or
// for stores if write.
func sharedMemo(write bool) int32 {
	if write {
		return offMemo + memoSize
	}
	return offMemo
}
