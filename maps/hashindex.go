package maps

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// index is the lock-free core of the hash maps: a fixed array of buckets,
// each a sorted singly linked list (Michael's lock-free list, SPAA 2002)
// whose nodes are preallocated slots linked by index, plus a lock-free free
// list of unused slots. See RATIONALE.md, "Why are hash maps lock-free
// sorted lists over preallocated slots?".
//
// Link words (bucket heads and next[]) pack three fields:
//
//	63            33 32 31             0
//	+---------------+--+----------------+
//	|      tag      |M |    slot + 1    |   slot+1 == 0: end of list
//	+---------------+--+----------------+
//
// M marks the node owning the word as logically deleted, and every write
// bumps tag, so a CAS against a stale view fails even when a slot has been
// freed and reused in between (no ABA).
//
// State words (state[]) say who may use a slot:
//
//	63            32 31 30 29          0
//	+---------------+--+--+-------------+
//	|      gen      |R |L |    pins     |
//	+---------------+--+--+-------------+
//
// gen grows each time the slot leaves the free list, L (live) is set once
// the node is linked, R (retired) once it is unlinked. A retired slot goes
// back to the free list when its last pin is dropped; pins are held by
// userspace copies and in-place updates, so those never touch a reused slot.
type index struct {
	keySize  int
	keyWords int
	n        int
	nw       int       // words per node
	mask     uint64    // buckets - 1
	seed     [2]uint64 // keyHash's: the start and the multiplier
	hmask    uint64    // all ones; tests narrow it to force hash collisions
	live     bool      // maintain the L bit (only LRU eviction reads it)
	// ordered: the map keeps the kernel's order (BPF_F_ZERO_SEED): the
	// kernel's hash with seed 0 picks the bucket, and a stamp word after
	// the key, taken from clock when an element is linked or replaced,
	// orders a bucket newest first, as the kernel's list heads do.
	ordered bool
	clock   atomic.Uint64

	heads []uint64 // bucket heads (link words)
	// nodes holds every slot's node in one cache-friendly run of words:
	// link word, hash, state word, free-list link, then the key.
	nodes []uint64

	freeHead atomic.Uint64 // tag<<32 | slot+1
}

const (
	nodeNext  = 0
	nodeHash  = 1
	nodeState = 2
	nodeFree  = 3
	nodeKey   = 4
)

const (
	linkMark   = 1 << 32
	linkTagOne = 1 << 33

	stPins    = 1<<30 - 1
	stLive    = 1 << 30
	stRetired = 1 << 31
	stGenOne  = 1 << 32
)

func linkSlot(w uint64) int32  { return int32(uint32(w)) - 1 }
func linkMarked(w uint64) bool { return w&linkMark != 0 }

// relink returns the next version of link word old pointing at slot.
func relink(old uint64, slot int32, mark bool) uint64 {
	w := (old&^(linkTagOne-1) + linkTagOne) | uint64(uint32(slot+1))
	if mark {
		w |= linkMark
	}
	return w
}

// nodeWords is the size of a node in words (with a stamp after the key if
// ordered), rounded up to whole 64-byte cache lines.
func nodeWords(keySize int, ordered bool) int {
	n := nodeKey + roundUp8(keySize)/8
	if ordered {
		n++
	}
	return (n + 7) &^ 7
}

// indexBytes is the memory an index of n slots and keySize keys takes.
func indexBytes(n, keySize int, ordered bool) int64 {
	return int64(n)*int64(nodeWords(keySize, ordered))*8 + int64(nextPow2(n))*8
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

func newIndex(n, keySize int, live, ordered bool) *index {
	nb := nextPow2(n)
	ix := &index{
		keySize: keySize, keyWords: roundUp8(keySize) / 8, n: n, nw: nodeWords(keySize, ordered),
		mask: uint64(nb - 1), seed: [2]uint64{rand.Uint64(), rand.Uint64() | 1}, hmask: ^uint64(0), live: live,
		heads: make([]uint64, nb), ordered: ordered,
	}
	ix.nodes = make([]uint64, n*ix.nw)
	for s := n - 1; s >= 0; s-- {
		atomic.StoreUint64(ix.stateW(int32(s)), stRetired)
		ix.push(int32(s))
	}
	return ix
}

func (ix *index) nextW(s int32) *uint64  { return &ix.nodes[int(s)*ix.nw+nodeNext] }
func (ix *index) hashW(s int32) *uint64  { return &ix.nodes[int(s)*ix.nw+nodeHash] }
func (ix *index) stateW(s int32) *uint64 { return &ix.nodes[int(s)*ix.nw+nodeState] }
func (ix *index) freeW(s int32) *uint64  { return &ix.nodes[int(s)*ix.nw+nodeFree] }

func (ix *index) hashOf(key []byte) uint64 {
	if ix.ordered {
		return uint64(htabHash(key, 0)) & ix.hmask
	}
	return keyHash(ix.seed, key) & ix.hmask
}

// keyHash is the hash of maps without BPF_F_ZERO_SEED: over the key's
// 8-byte words (the last zero-padded, as nodes store keys), h = mum(h ^
// w, seed[1]) from h = seed[0], where mum folds the 128-bit product's
// halves together (wyhash's mix). It replaced hash/maphash so that
// compiled programs can compute it themselves (vm.HashLayout, whose
// emitter is this function in machine code); a product with a secret
// factor leaves no seed-independent collisions for keys an attacker
// chooses, the reason for a random seed at all.
func keyHash(seed [2]uint64, key []byte) uint64 {
	h := seed[0]
	for len(key) >= 8 {
		h = mum(h^binary.NativeEndian.Uint64(key), seed[1])
		key = key[8:]
	}
	if len(key) > 0 {
		var tmp [8]byte
		copy(tmp[:], key)
		h = mum(h^binary.NativeEndian.Uint64(tmp[:]), seed[1])
	}
	return h
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// stampW is an ordered node's stamp word.
func (ix *index) stampW(s int32) *uint64 { return &ix.nodes[int(s)*ix.nw+nodeKey+ix.keyWords] }

// restamp makes slot s the newest of its bucket.
func (ix *index) restamp(s int32) { atomic.StoreUint64(ix.stampW(s), ix.clock.Add(1)) }

func (ix *index) keyOf(s int32) []uint64 {
	o := int(s)*ix.nw + nodeKey
	return ix.nodes[o : o+ix.keyWords]
}

// node returns slot s's words.
func (ix *index) node(s int32) []uint64 {
	o := int(s) * ix.nw
	return ix.nodes[o : o+ix.nw : o+ix.nw]
}

// cmp orders slot s against (h, key): by hash, then by key words.
func (ix *index) cmp(s int32, h uint64, key []byte) int { return cmpNode(ix.node(s), h, key) }

// keyEqual is the common case of cmpNode: equal hashes, equal keys.
func keyEqual(kw []uint64, key []byte) bool {
	for len(key) >= 8 {
		if atomic.LoadUint64(&kw[0]) != binary.NativeEndian.Uint64(key) {
			return false
		}
		kw, key = kw[1:], key[8:]
	}
	if len(key) == 0 {
		return true
	}
	var tmp [8]byte
	copy(tmp[:], key)
	return atomic.LoadUint64(&kw[0]) == binary.NativeEndian.Uint64(tmp[:])
}

func cmpNode(nd []uint64, h uint64, key []byte) int {
	if nh := atomic.LoadUint64(&nd[nodeHash]); nh != h {
		if nh < h {
			return -1
		}
		return 1
	}
	kw := nd[nodeKey:]
	n := len(key) / 8
	for i := 0; i < n; i++ {
		a, b := atomic.LoadUint64(&kw[i]), binary.NativeEndian.Uint64(key[i*8:])
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	if n*8 < len(key) {
		var tmp [8]byte
		copy(tmp[:], key[n*8:])
		a, b := atomic.LoadUint64(&kw[n]), binary.NativeEndian.Uint64(tmp[:])
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	return 0
}

// pos is where find stopped: prev (a bucket head or a next word) held pw,
// which pointed at cur (-1: end of list); cw and gen are cur's next word and
// generation as seen while prev still pointed at it.
type pos struct {
	prev *uint64
	pw   uint64
	cur  int32
	cw   uint64
	gen  uint64
}

// find returns the position of the first unmarked node >= (h, key) and
// whether it holds key, unlinking the marked nodes it passes (Michael's Find).
func (ix *index) find(h uint64, key []byte) (p pos, found bool) {
retry:
	p.prev = &ix.heads[h&ix.mask]
	p.pw = atomic.LoadUint64(p.prev)
	for {
		c := linkSlot(p.pw)
		if c < 0 {
			p.cur = -1
			return p, false
		}
		cw := atomic.LoadUint64(ix.nextW(c))
		st := atomic.LoadUint64(ix.stateW(c))
		d := ix.cmp(c, h, key)
		if atomic.LoadUint64(p.prev) != p.pw {
			goto retry
		}
		if !linkMarked(cw) {
			if d >= 0 {
				p.cur, p.cw, p.gen = c, cw, st>>32
				return p, d == 0
			}
			p.prev, p.pw = ix.nextW(c), cw
			continue
		}
		nw := relink(p.pw, linkSlot(cw), false)
		if !atomic.CompareAndSwapUint64(p.prev, p.pw, nw) {
			goto retry
		}
		ix.retire(c)
		p.pw = nw
	}
}

// lookup is find without writes, for the packet path: the slot holding key
// and, if wantGen, its generation.
func (ix *index) lookup(h uint64, key []byte, wantGen bool) (int32, uint64, bool) {
retry:
	prev := &ix.heads[h&ix.mask]
	pw := atomic.LoadUint64(prev)
	for {
		c := linkSlot(pw)
		if c < 0 {
			return -1, 0, false
		}
		nd := ix.node(c)
		cw := atomic.LoadUint64(&nd[nodeNext])
		// Hashes decide almost every comparison; keys only on a match.
		d := -1
		if nh := atomic.LoadUint64(&nd[nodeHash]); nh > h {
			d = 1
		} else if nh == h && !keyEqual(nd[nodeKey:], key) {
			d = cmpNode(nd, h, key)
		} else if nh == h {
			d = 0
		}
		var st uint64
		if d == 0 && wantGen {
			st = atomic.LoadUint64(&nd[nodeState])
		}
		if atomic.LoadUint64(prev) != pw {
			goto retry
		}
		switch {
		case d > 0:
			return -1, 0, false
		case d == 0:
			// A marked node is deleted, and no live copy of the key can
			// follow it: inserts unlink it first.
			if linkMarked(cw) {
				return -1, 0, false
			}
			return c, st >> 32, true
		}
		prev, pw = &nd[nodeNext], cw
	}
}

// link inserts slot s (key, hash and value already written) at p, which
// find returned for its key. It fails if the list changed around p.
func (ix *index) link(p pos, s int32, gen uint64) bool {
	nw := ix.nextW(s)
	atomic.StoreUint64(nw, relink(atomic.LoadUint64(nw), p.cur, false))
	if !atomic.CompareAndSwapUint64(p.prev, p.pw, relink(p.pw, s, false)) {
		return false
	}
	for ix.live {
		sw := ix.stateW(s)
		st := atomic.LoadUint64(sw)
		if st>>32 != gen || st&stRetired != 0 || atomic.CompareAndSwapUint64(sw, st, st|stLive) {
			break
		}
	}
	return true
}

// mark logically deletes the node found at p; it fails if the node changed.
func (ix *index) mark(p pos) bool {
	return atomic.CompareAndSwapUint64(ix.nextW(p.cur), p.cw, relink(p.cw, linkSlot(p.cw), true))
}

// unlink removes the node marked at p from its list, or lets a find do it
// when the list changed meanwhile.
func (ix *index) unlink(p pos, h uint64, key []byte) {
	if atomic.CompareAndSwapUint64(p.prev, p.pw, relink(p.pw, linkSlot(p.cw), false)) {
		ix.retire(p.cur)
		return
	}
	ix.find(h, key)
}

// del deletes key. copyOut, if not nil, sees the node's slot after it is
// marked and before it can be reused (lookup-and-delete).
func (ix *index) del(h uint64, key []byte, copyOut func(s int32)) bool {
	for {
		p, found := ix.find(h, key)
		if !found {
			return false
		}
		if copyOut != nil && !ix.pin(p.cur, p.gen) {
			continue
		}
		if !ix.mark(p) {
			if copyOut != nil {
				ix.unpin(p.cur)
			}
			continue
		}
		if copyOut != nil {
			copyOut(p.cur)
		}
		ix.unlink(p, h, key)
		if copyOut != nil {
			ix.unpin(p.cur)
		}
		return true
	}
}

// purge unlinks every marked node of bucket b.
func (ix *index) purge(b uint64) {
retry:
	prev := &ix.heads[b]
	pw := atomic.LoadUint64(prev)
	for {
		c := linkSlot(pw)
		if c < 0 {
			return
		}
		cw := atomic.LoadUint64(ix.nextW(c))
		if atomic.LoadUint64(prev) != pw {
			goto retry
		}
		if !linkMarked(cw) {
			prev, pw = ix.nextW(c), cw
			continue
		}
		nw := relink(pw, linkSlot(cw), false)
		if !atomic.CompareAndSwapUint64(prev, pw, nw) {
			goto retry
		}
		ix.retire(c)
		pw = nw
	}
}

// firstAfter copies into out the key of the first live node of bucket b
// ordered after (h, key), or the first live node when key is nil, and
// returns its slot.
func (ix *index) firstAfter(b, h uint64, key, out []byte) (int32, bool) {
retry:
	prev := &ix.heads[b]
	pw := atomic.LoadUint64(prev)
	for {
		c := linkSlot(pw)
		if c < 0 {
			return -1, false
		}
		cw := atomic.LoadUint64(ix.nextW(c))
		st := atomic.LoadUint64(ix.stateW(c))
		d := 1
		if key != nil {
			d = ix.cmp(c, h, key)
		}
		if atomic.LoadUint64(prev) != pw {
			goto retry
		}
		if d > 0 && !linkMarked(cw) {
			loadWords(out, ix.keyOf(c))
			if atomic.LoadUint64(ix.stateW(c))>>32 != st>>32 {
				goto retry // reused while copying: the key may be torn
			}
			return c, true
		}
		prev, pw = ix.nextW(c), cw
	}
}

// newestBelow copies into out the key of the newest live node of bucket b
// stamped before below, and returns its slot and stamp: the kernel's next
// element of a bucket list after the one stamped below.
func (ix *index) newestBelow(b, below uint64, out []byte) (int32, uint64, bool) {
retry:
	prev := &ix.heads[b]
	pw := atomic.LoadUint64(prev)
	best, bestStamp, bestGen := int32(-1), uint64(0), uint64(0)
	for {
		c := linkSlot(pw)
		if c < 0 {
			break
		}
		cw := atomic.LoadUint64(ix.nextW(c))
		st := atomic.LoadUint64(ix.stateW(c))
		stamp := atomic.LoadUint64(ix.stampW(c))
		if atomic.LoadUint64(prev) != pw {
			goto retry
		}
		if !linkMarked(cw) && stamp < below && (best < 0 || stamp > bestStamp) {
			best, bestStamp, bestGen = c, stamp, st>>32
		}
		prev, pw = ix.nextW(c), cw
	}
	if best < 0 {
		return -1, 0, false
	}
	loadWords(out, ix.keyOf(best))
	if atomic.LoadUint64(ix.stateW(best))>>32 != bestGen || atomic.LoadUint64(ix.stampW(best)) != bestStamp {
		goto retry // reused or replaced while copying
	}
	return best, bestStamp, true
}

// Cursor is a position in a walk over a hash map's elements in the
// kernel's order (Hash.NextSlot). The zero Cursor is before the first.
type Cursor struct {
	bucket  uint64
	stamp   uint64 // ordered maps: the stamp of the element last visited
	started bool
}

// next moves c to the element after it, copying its key into out; prev
// holds the key c was last at (unordered maps order a bucket by hash and
// key, so the walk goes on from it even once it is deleted). An element
// present for the whole walk is visited exactly once; one added or
// replaced meanwhile may be visited or not, as in the kernel's RCU walk.
func (ix *index) next(c *Cursor, prev, out []byte) (int32, bool) {
	for c.bucket <= ix.mask {
		var s int32
		var ok bool
		switch {
		case ix.ordered:
			below := uint64(1<<64 - 1)
			if c.started {
				below = c.stamp
			}
			s, c.stamp, ok = ix.newestBelow(c.bucket, below, out)
		case c.started:
			s, ok = ix.firstAfter(c.bucket, ix.hashOf(prev), prev, out)
		default:
			s, ok = ix.firstAfter(c.bucket, 0, nil, out)
		}
		if ok {
			c.started = true
			return s, true
		}
		c.bucket++
		c.started = false
	}
	return -1, false
}

// nextKey is htab_map_get_next_key: the key after key in bucket order, the
// first key when key is nil or missing.
func (ix *index) nextKey(key, out []byte) bool {
	var c Cursor
	if key != nil {
		h := ix.hashOf(key)
		if s, gen, ok := ix.lookup(h, key, true); ok {
			c = Cursor{bucket: h & ix.mask, started: true}
			if ix.ordered {
				c.stamp = atomic.LoadUint64(ix.stampW(s))
				if atomic.LoadUint64(ix.stateW(s))>>32 != gen {
					c = Cursor{} // gone meanwhile: from the start, as if missing
				}
			}
		}
	}
	_, ok := ix.next(&c, key, out)
	return ok
}

// len counts the live elements by walking every bucket.
func (ix *index) len() int {
	n := 0
	for b := range ix.heads {
		for w := atomic.LoadUint64(&ix.heads[b]); linkSlot(w) >= 0; {
			c := linkSlot(w)
			w = atomic.LoadUint64(ix.nextW(c))
			if !linkMarked(w) {
				n++
			}
		}
	}
	return n
}

// pin keeps slot s in its generation gen from being reused; it fails once
// the node is retired.
func (ix *index) pin(s int32, gen uint64) bool {
	sw := ix.stateW(s)
	for {
		st := atomic.LoadUint64(sw)
		if st>>32 != gen || st&stRetired != 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(sw, st, st+1) {
			return true
		}
	}
}

func (ix *index) unpin(s int32) {
	if st := atomic.AddUint64(ix.stateW(s), ^uint64(0)); st&stRetired != 0 && st&stPins == 0 {
		ix.push(s)
	}
}

// retire is called by whoever unlinked s; the last of it and the pins frees s.
func (ix *index) retire(s int32) {
	sw := ix.stateW(s)
	for {
		st := atomic.LoadUint64(sw)
		if atomic.CompareAndSwapUint64(sw, st, st|stRetired) {
			if st&stPins == 0 {
				ix.push(s)
			}
			return
		}
	}
}

// release returns a slot that pop handed out but that was never linked.
func (ix *index) release(s int32) {
	sw := ix.stateW(s)
	atomic.StoreUint64(sw, atomic.LoadUint64(sw)|stRetired)
	ix.push(s)
}

func (ix *index) push(s int32) {
	for {
		old := ix.freeHead.Load()
		atomic.StoreUint64(ix.freeW(s), uint64(uint32(old)))
		if ix.freeHead.CompareAndSwap(old, (old>>32+1)<<32|uint64(uint32(s+1))) {
			return
		}
	}
}

// pop takes a free slot and starts its next generation.
func (ix *index) pop() (int32, uint64, bool) {
	for {
		old := ix.freeHead.Load()
		s1 := uint32(old)
		if s1 == 0 {
			return -1, 0, false
		}
		nxt := atomic.LoadUint64(ix.freeW(int32(s1 - 1)))
		if ix.freeHead.CompareAndSwap(old, (old>>32+1)<<32|nxt) {
			s := int32(s1 - 1)
			sw := ix.stateW(s)
			gen := atomic.LoadUint64(sw)>>32 + 1
			atomic.StoreUint64(sw, gen<<32)
			return s, gen, true
		}
	}
}
