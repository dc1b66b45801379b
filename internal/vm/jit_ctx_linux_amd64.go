package vm

import (
	"unsafe"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// This file holds compiled code's short path for context accesses at
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
