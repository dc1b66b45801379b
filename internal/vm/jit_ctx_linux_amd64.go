package vm

import (
	"math"
	"unsafe"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// This file holds compiled code's context accesses: the image paths a
// load or store takes when its address is the context's (ctxFull at a
// constant offset, ctxImage at a register's, both with the tables and the
// policy checked at run time), and the short path for context accesses at
// addresses the analysis proves or guesses (a load of skb->data through
// r1): whether the image tables, the policy and the window allow such an
// access does not change while the program and the context accessor stay
// the same, so Go decides it once per site when it publishes the context
// (jitCtxSites) instead of compiled code deciding it at every access with
// four dependent loads; what can change between two exits, whether the
// image is fresh, the entry stubs read once (ctxLiveEntry).

// ctxSite is a context access at a constant offset: n bytes at off, a
// store if write.
type ctxSite struct {
	off   uint32
	n     uint8
	write bool
}

var (
	offCtxLive  = offJIT + int32(unsafe.Offsetof(jitState{}.ctxLive))
	offCtxSites = offJIT + int32(unsafe.Offsetof(jitState{}.ctxSites))
	offCtxNeed  = offJIT + int32(unsafe.Offsetof(jitState{}.ctxNeed))
)

// siteWords is the words of the context image the sites access, as
// CtxDirtyWords counts them.
func siteWords(sites []ctxSite) uint64 {
	var w uint64
	for _, s := range sites {
		w |= CtxDirtyWords(int(s.off), int(s.n))
	}
	return w
}

// CtxSiteWords is the set of 4-byte words of the context (bit i for the
// word at 4*i, as CtxDirtyWords) that p's compiled code accesses at
// constant offsets on its short path, 0 when p is not compiled. A run
// finds those sites live when an owner's ContextImage vouches for these
// words, even if not for the whole image.
func (p *Program) CtxSiteWords() uint64 {
	if p == nil || p.native == nil {
		return 0
	}
	return p.native.siteWords
}

// ctxSite returns the index of the site (off, n, write), adding it, or
// false once maxCtxSites are taken.
func (c *jitc) ctxSite(off uint32, n int, write bool) (int, bool) {
	s := ctxSite{off: off, n: uint8(n), write: write}
	for i, t := range c.ctxSites {
		if t == s {
			return i, true
		}
	}
	if len(c.ctxSites) == maxCtxSites {
		return 0, false
	}
	c.ctxSites = append(c.ctxSites, s)
	return len(c.ctxSites) - 1, true
}

// ctxShort emits the short path of the context access at the constant
// offset off (n bytes, a store if write): with the image live and the
// site allowed, r11 becomes the image address (a store marks its words
// dirty) and the code falls through; otherwise it jumps to full. It
// reports false, emitting nothing, when the program has no site left.
func (c *jitc) ctxShort(off uint32, n int, write bool, full x.Label) bool {
	i, ok := c.ctxSite(off, n, write)
	if !ok {
		return false
	}
	a := &c.a
	a.Load(8, jT0, x.M(jState, offCtxLive))
	a.TestRR(true, jT0, jT0)
	a.Jcc(x.CondE, full)
	a.CmpM8(x.M(jState, offCtxSites+int32(i)), 0)
	a.Jcc(x.CondE, full)
	if write {
		c.ctxMarkConst(int32(off), n, jCX)
	}
	a.Lea(true, jT0, x.M(jT0, int32(off)))
	return true
}

// ctxLiveEntry sets jitState.ctxLive on entry from Go: the image's
// address while the words the program's sites access are fresh, else 0.
// Only Go changes freshness (a helper that changed the packet, the
// accessor laying the image out), and only while compiled code has left,
// so it holds until the next exit.
func (c *jitc) ctxLiveEntry() {
	a := &c.a
	stale, done := a.NewLabel(), a.NewLabel()
	a.Load(8, jT0, x.M(jState, offCtxFr))
	a.TestRR(true, jT0, jT0)
	a.Jcc(x.CondE, stale)
	a.Load(8, jT0, x.M(jT0, 0))
	a.ALURI(true, x.XOR, jT0, -1) // the stale words
	a.ALURM(true, x.AND, jT0, x.M(jState, offCtxNeed))
	a.Jcc(x.CondNE, stale)
	a.Load(8, jT0, x.M(jState, offCtxImg))
	a.Jmp(done)
	a.Bind(stale)
	a.ALURR(false, x.XOR, jT0, jT0)
	a.Bind(done)
	a.Store(8, x.M(jState, offCtxLive), jT0)
}

// jitCtxSites publishes which of p's context sites take the short path:
// those inside the published context window that the plain table and the
// program's policy allow as plain accesses (an aliased field keeps the
// full path, which masks it). The verdicts are a function of the
// program, its policy, the owner's tables and the window, which a tail
// call or a helper resizing the packet republishes without changing, so
// the program keeps the last ones it was given (native.verdicts) and a
// Machine copies them when they still apply.
func (m *Machine) jitCtxSites(p *Program) {
	j := &m.jit
	j.sitesProg = p
	if p == nil || p.native == nil || j.ctxFresh == 0 {
		j.ctxSites, j.ctxNeed = [maxCtxSites]uint8{}, CtxAllWords
		return
	}
	j.ctxNeed = p.native.siteWords
	r, ci := &m.regions[RegionCtx], &m.ctxImg
	v := p.native.verdicts.Load()
	if v == nil || v.plain != ci.plain || v.policy != r.policy || v.lo != r.lo || v.hi != r.hi || v.base != r.base {
		v = decideSites(p.native.ctxSites, r, ci.plain)
		p.native.verdicts.Store(v)
	}
	j.ctxSites = v.ok
}

// siteVerdicts are the verdicts of jitCtxSites and what they were
// decided from.
type siteVerdicts struct {
	plain, policy *CtxPolicy
	lo, hi, base  uint32
	ok            [maxCtxSites]uint8
}

func decideSites(sites []ctxSite, r *region, plain *CtxPolicy) *siteVerdicts {
	v := &siteVerdicts{plain: plain, policy: r.policy, lo: r.lo, hi: r.hi, base: r.base}
	for i, s := range sites {
		t, pol := plain.read, []uint8(nil)
		if r.policy != nil {
			pol = r.policy.read
		}
		if s.write {
			t = plain.write
			if r.policy != nil {
				pol = r.policy.write
			}
		}
		bit := sizeBit(int(s.n))
		end := uint64(s.off) + uint64(s.n)
		if r.base != 0 || s.off < r.lo || end > uint64(r.hi) || bit == 0 {
			continue
		}
		if t[s.off]&bit == 0 || (pol != nil && pol[s.off]&bit == 0) {
			continue
		}
		v.ok[i] = 1
	}
	return v
}

// ctxFull is constAccess's full path for a context access at the constant
// address k (in r11): the window, freshness, both tables and the policy
// checked at run time, an aliased field done out of line.
func (c *jitc) ctxFull(o *op, k uint64, need uint8, generic, after x.Label) {
	a := &c.a
	n := int(memSize(o.kind))
	off := int32(k & math.MaxUint32)
	write := need&permWrite != 0
	table := int32(0)
	if write {
		table = 8
	}
	bit := sizeBit(n)
	c.ctxWindowFresh(n, generic)
	a.Load(8, jT1, x.M(jState, offCtxPl+table))
	a.TestM8(x.M(jT1, off), bit)
	aliased := a.NewLabel()
	a.Jcc(x.CondE, aliased) // not plain: aliased, or the full path
	c.late = append(c.late, func() {
		a.Bind(aliased)
		a.MovRI64(jCX, uint64(off))
		c.ctxAlias(o, table, bit, generic, after, off)
	})
	noPolicy := a.NewLabel()
	a.Load(8, jT1, x.M(jState, offCtxPol+table))
	a.TestRR(true, jT1, jT1)
	a.Jcc(x.CondE, noPolicy)
	a.TestM8(x.M(jT1, off), bit)
	a.Jcc(x.CondE, generic)
	a.Bind(noPolicy)
	if write {
		c.ctxMarkConst(off, n, jT0)
	}
	a.Load(8, jT0, x.M(jState, offCtxImg))
	a.Lea(true, jT0, x.M(jT0, off))
}

// ctxWindowFresh jumps to miss unless the address in r11 starts an
// access of n bytes inside the published context window and the whole
// image is fresh: the first checks of both context image paths.
func (c *jitc) ctxWindowFresh(n int, miss x.Label) {
	a := &c.a
	a.ALURM(true, x.CMP, jT0, x.M(jState, offCtxLo))
	a.Jcc(x.CondB, miss)
	a.ALURM(true, x.CMP, jT0, x.M(jState, offCtxMax+8*int32(sizeLog(n))))
	a.Jcc(x.CondA, miss)
	a.Load(8, jT1, x.M(jState, offCtxFr))
	a.ALUMI(true, x.CMP, x.M(jT1, 0), -1) // CtxAllWords
	a.Jcc(x.CondNE, miss)
}

// ctxImage is the context image path of translate inline, for the load
// or store o at the address in r11: inside the published context window,
// with the image fresh and both tables allowing the access, r11 becomes
// the image address and the code goes on at done; an access the image
// table aliases (CtxPolicy.AllowAlias) is done here, masked, and goes on
// at after; anything else goes to miss, the full translation, which
// decides the same way.
func (c *jitc) ctxImage(o *op, done, after, miss x.Label) {
	a := &c.a
	n := int(memSize(o.kind))
	write := o.kind >= kStB
	table := int32(0)
	if write {
		table = 8
	}
	bit := sizeBit(n)
	c.ctxWindowFresh(n, miss)
	a.MovRR(false, jCX, jT0) // the offset (the context's base is 0)
	a.Load(8, jT1, x.M(jState, offCtxPl+table))
	alias := a.NewLabel()
	a.TestM8(x.MI(jT1, jCX, 0), bit)
	a.Jcc(x.CondE, alias)
	c.ctxPolicy(table, bit, n, write, miss, -1)
	a.MovRR(true, jT0, jCX)
	a.ALURM(true, x.ADD, jT0, x.M(jState, offCtxImg))
	a.Jmp(done)
	a.Bind(alias)
	c.ctxAlias(o, table, bit, miss, after, -1)
}

// ctxAlias does the context access o the image table aliases
// (CtxPolicy.AllowAlias, AllowStoreBelow) at the offset in rcx, with r10
// holding the plain table of o's direction (table), and goes on at after;
// an access the table does not alias or the policy refuses goes to miss.
// alias[dir][4*off+k] = src | shift<<24 | below<<32: the access is on
// image+src, its value kept to the low 64-shift bits, and a store of
// below or more (below != 0) is dropped. off >= 0 is rcx's offset as a
// constant, which marks the store's words with one OR (ctxMarkConst).
func (c *jitc) ctxAlias(o *op, table int32, bit uint8, miss, after x.Label, off int32) {
	a := &c.a
	n := int(memSize(o.kind))
	write := o.kind >= kStB
	a.TestM8(x.MI(jT1, jCX, 0), bit<<4)
	a.Jcc(x.CondE, miss)
	c.ctxPolicy(table, bit, n, write, miss, off)
	a.MovRR(true, jT1, jCX)
	a.ShiftRI(true, x.SHL, jT1, 5)
	a.ALURM(true, x.ADD, jT1, x.M(jState, offCtxAl+table))
	a.Load(8, jT1, x.M(jT1, int32(8*sizeLog(n))))
	if write {
		if o.kind >= kStxB {
			a.MovRR(true, jT0, jitReg[o.src])
		} else {
			a.MovRI64(jT0, o.imm)
		}
		unbounded := a.NewLabel()
		a.MovRR(true, jCX, jT1)
		a.ShiftRI(true, x.SHR, jCX, 32) // below; ZF if there is none
		a.Jcc(x.CondE, unbounded)
		a.ALURR(true, x.CMP, jT0, jCX)
		if o.kind >= kStxB {
			a.Jcc(x.CondAE, after) // dropped, as storeSlow drops it
		} else {
			a.Jcc(x.CondGE, after) // an immediate: compared signed
		}
		a.Bind(unbounded)
	}
	a.MovRR(false, jCX, jT1)
	a.ShiftRI(false, x.SHR, jCX, 24)
	a.ALURI(false, x.AND, jT1, 1<<24-1)
	a.ALURM(true, x.ADD, jT1, x.M(jState, offCtxImg))
	if write {
		a.ShiftRCL(true, x.SHL, jT0)
		a.ShiftRCL(true, x.SHR, jT0)
		a.Store(n, x.M(jT1, 0), jT0)
	} else {
		dst := jitReg[o.dst]
		a.Load(n, dst, x.M(jT1, 0))
		a.ShiftRCL(true, x.SHL, dst)
		a.ShiftRCL(true, x.SHR, dst)
		if o.kind >= kLdxSB && n < 8 {
			a.Movsx(true, n, dst, dst)
		}
	}
	a.Jmp(after)
}

// ctxPolicy checks the program's policy table for the access of bit at
// the context offset in rcx (jumping to miss if it refuses) and, for a
// store of n bytes, marks its words dirty (r11 is free here): at the
// constant offset off, or at rcx's if off < 0.
func (c *jitc) ctxPolicy(table int32, bit uint8, n int, write bool, miss x.Label, off int32) {
	a := &c.a
	noPolicy := a.NewLabel()
	a.Load(8, jT1, x.M(jState, offCtxPol+table))
	a.TestRR(true, jT1, jT1)
	a.Jcc(x.CondE, noPolicy)
	a.TestM8(x.MI(jT1, jCX, 0), bit)
	a.Jcc(x.CondE, miss)
	a.Bind(noPolicy)
	switch {
	case write && off >= 0:
		c.ctxMarkConst(off, n, jT0)
	case write:
		c.ctxMarkReg(jCX, n)
	}
}
