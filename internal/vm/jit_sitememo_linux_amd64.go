package vm

import x "github.com/tcxgo/tcx/internal/vm/amd64"

// Site entries: an access through a probable map value (hintSlot) first
// checks the memo that served it last (jitState.siteWay), then the
// shared memo and its ways. A run that goes through several map values
// in turn (a counter in each of a few array entries and a hash value:
// proto_counters) otherwise finds the shared memo holding another slot
// at almost every access and walks the ways, two compares and a jump
// each, in out-of-line code. The entry names a memo rather than holding
// a copy of one: a site whose slot changes from run to run (a program
// writing thirty fields of a per-flow value, ctx_fields) then pays a
// check and a one-word store where a copy cost twelve moves at every
// site, every run, which had doubled that program's run. Memos are valid
// until Machine.rebind empties them, and an entry only ever names one of
// its row's memos, so whatever it names is valid or misses; entries for
// loads and for stores are apart, since a slot translated for reading
// need not be writable. Sites of different programs may share an entry
// (siteMemoAt), which costs only misses.

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

// siteMemoAt is the offset in the Machine of the site entry of the
// access at op pc, for a store if write.
func (c *jitc) siteMemoAt(pc int, write bool) int32 {
	h := int32(((c.salt ^ uint64(pc)) * 0x9e3779b97f4a7c15) >> (64 - 5))
	dir := int32(0)
	if write {
		dir = 1
	}
	return offSiteWay + (dir*siteMemos+h)*8
}

// siteCheck is the check of the memo the site entry at offset se names,
// for an access of n bytes at the address in r11: r11 becomes the host
// address, or the code jumps to miss. It uses r10.
func (c *jitc) siteCheck(se int32, write bool, n int, miss x.Label) {
	a := &c.a
	m := sharedMemo(write)
	a.Load(8, jT1, x.M(jState, se))
	a.ALURM(true, x.CMP, jT0, x.MI(jState, jT1, m+offMemoLo))
	a.Jcc(x.CondB, miss)
	a.ALURM(true, x.CMP, jT0, x.MI(jState, jT1, m+offMemoMax+8*int32(sizeLog(n))))
	a.Jcc(x.CondA, miss)
	a.ALURM(true, x.ADD, jT0, x.MI(jState, jT1, m+offMemoDelta))
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

// rowMemos are the offsets in the Machine of the memos of a direction:
// its shared memo, then its ways.
func rowMemos(write bool) []int32 {
	dir := int32(0)
	if write {
		dir = 1
	}
	memos := []int32{sharedMemo(write)}
	for w := range int32(memoWays) {
		memos = append(memos, offWays+(dir*waysRow+w)*memoSize)
	}
	return memos
}

// sharedMemo is the offset in the Machine of jitState.memo for loads, or
// for stores if write.
func sharedMemo(write bool) int32 {
	if write {
		return offMemo + memoSize
	}
	return offMemo
}
