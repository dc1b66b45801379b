package maps

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

const (
	// kmallocMaxSize is KMALLOC_MAX_SIZE on x86-64 (4 KiB pages, order 10).
	kmallocMaxSize = 4 << 20
	// htabElemSize approximates sizeof(struct htab_elem).
	htabElemSize = 48
)

// Hash is BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH.
// Elements live in MaxEntries preallocated slots (the kernel preallocates
// too unless BPF_F_NO_PREALLOC, which is accepted and ignored). Lookups,
// updates and deletes are lock-free and allocation-free from any number of
// goroutines; see index for the design.
//
// Semantics that differ from the kernel, all invisible to single-threaded
// callers: an update of an existing key overwrites the value in place
// (word by word) instead of swapping in a fresh element, so a program that
// looked the key up earlier sees the new value; an LRU update of an existing
// key therefore never evicts another one.
type Hash struct {
	base
	ix     *index
	percpu bool
	lru    bool
	vsize  int
	stride int
	vals   []wordBuf // one per CPU for percpu maps, else one

	ref  []atomic.Uint32 // LRU: set by program lookups, cleared by the clock
	hand atomic.Uint64   // LRU: clock hand
}

var _ SlotMap = (*Hash)(nil)

func newHash(i Info, opts Options) (*Hash, error) {
	percpu := i.Type == ebpf.PerCPUHash || i.Type == ebpf.LRUCPUHash
	lru := i.Type == ebpf.LRUHash || i.Type == ebpf.LRUCPUHash
	const mask = FlagNoPrealloc | FlagNoCommonLRU | FlagNumaNode | flagAccessMask | FlagZeroSeed
	invalid := func(why string) error {
		return fmt.Errorf("create map %q: %s: %w", i.Name, why, syscall.EINVAL)
	}
	switch {
	case i.Flags&^mask != 0:
		return nil, invalid(fmt.Sprintf("flags %#x", i.Flags))
	case !lru && i.Flags&FlagNoCommonLRU != 0:
		return nil, invalid("BPF_F_NO_COMMON_LRU is for LRU maps only")
	case lru && i.Flags&FlagNoPrealloc != 0:
		return nil, fmt.Errorf("create map %q: LRU maps are always preallocated: %w", i.Name, ENOTSUPP)
	case i.Flags&FlagNumaNode != 0 && (percpu || i.Flags&FlagNoCommonLRU != 0):
		return nil, invalid("percpu maps have no NUMA node")
	case i.MaxEntries == 0:
		return nil, invalid("max_entries is 0")
	case i.KeySize == 0:
		return nil, invalid("key size is 0")
	case i.ValueSize == 0:
		return nil, invalid("value size is 0")
	}
	if uint64(i.KeySize)+uint64(i.ValueSize) >= kmallocMaxSize-htabElemSize {
		return nil, fmt.Errorf("create map %q: key and value size %d+%d: %w", i.Name, i.KeySize, i.ValueSize, syscall.E2BIG)
	}
	if percpu && roundUp8(int(i.ValueSize)) > pcpuMinUnitSize {
		return nil, fmt.Errorf("create map %q: percpu value size %d exceeds %d: %w", i.Name, i.ValueSize, pcpuMinUnitSize, syscall.E2BIG)
	}
	ncpu := opts.numCPU()
	if i.Flags&FlagNoCommonLRU != 0 {
		// Each CPU's LRU list gets the same number of elements.
		n := (uint64(i.MaxEntries) + uint64(ncpu) - 1) / uint64(ncpu) * uint64(ncpu)
		if n > 1<<32-1 {
			n = uint64(i.MaxEntries) / uint64(ncpu) * uint64(ncpu)
		}
		i.MaxEntries = uint32(n)
	}
	if i.MaxEntries > 1<<31 {
		return nil, fmt.Errorf("create map %q: max_entries %d: %w", i.Name, i.MaxEntries, syscall.E2BIG)
	}
	if !percpu {
		ncpu = 1
	}
	n := int(i.MaxEntries)
	h := &Hash{base: base{info: i}, percpu: percpu, lru: lru, vsize: int(i.ValueSize), stride: roundUp8(int(i.ValueSize))}
	bytes := indexBytes(n, int(i.KeySize), i.Flags&FlagZeroSeed != 0) + int64(n)*int64(h.stride)*int64(ncpu)
	if err := checkMemory(i, opts, bytes); err != nil {
		return nil, err
	}
	h.ix = newIndex(n, int(i.KeySize), lru, i.Flags&FlagZeroSeed != 0)
	h.vals = make([]wordBuf, ncpu)
	for c := range h.vals {
		h.vals[c] = newWordBuf(n * h.stride)
	}
	if lru {
		h.ref = make([]atomic.Uint32, n)
	}
	return h, nil
}

func (h *Hash) ValueSize() int { return h.vsize }
func (h *Hash) Stride() int    { return h.stride }
func (h *Hash) NumCPU() int    { return len(h.vals) }

// Len is the number of elements.
// Len counts the elements (a walk over every bucket, not for the packet path).
func (h *Hash) Len() int { return h.ix.len() }

// Slots returns cpu's value memory (nil for a CPU the map does not have).
func (h *Hash) Slots(cpu int) []byte {
	if uint(cpu) >= uint(len(h.vals)) {
		if len(h.vals) == 1 {
			return h.vals[0].b
		}
		return nil
	}
	return h.vals[cpu].b
}

func (h *Hash) valueWords(cpu int, s int32) []uint64 {
	w := h.stride / 8
	return h.vals[cpu].w[int(s)*w : int(s+1)*w]
}

func (h *Hash) userValueSize() int {
	if h.percpu {
		return len(h.vals) * h.stride
	}
	return h.vsize
}

func (h *Hash) LookupSlot(key []byte, cpu int) (int, bool) {
	if len(key) < h.ix.keySize {
		return 0, false
	}
	key = key[:h.ix.keySize]
	s, _, ok := h.ix.lookup(h.ix.hashOf(key), key, false)
	if !ok {
		return 0, false
	}
	if h.lru && h.ref[s].Load() == 0 {
		h.ref[s].Store(1)
	}
	return int(s), true
}

func (h *Hash) UpdateElem(key, value []byte, flags uint64, cpu int) int64 {
	if h.info.Flags&FlagRdonlyProg != 0 {
		return -linuxerr.EACCES
	}
	if len(key) < h.ix.keySize || len(value) < h.vsize || (h.percpu && uint(cpu) >= uint(len(h.vals))) {
		return -linuxerr.EINVAL
	}
	if flags > UpdateExist {
		return -linuxerr.EINVAL
	}
	return h.update(key[:h.ix.keySize], value[:h.vsize], flags, cpu)
}

func (h *Hash) DeleteElem(key []byte, cpu int) int64 {
	if h.info.Flags&FlagRdonlyProg != 0 {
		return -linuxerr.EACCES
	}
	if len(key) < h.ix.keySize {
		return -linuxerr.EINVAL
	}
	key = key[:h.ix.keySize]
	if !h.ix.del(h.ix.hashOf(key), key, nil) {
		return -linuxerr.ENOENT
	}
	return 0
}

// update is htab_map_update_elem and its percpu and LRU variants. cpu < 0
// means a userspace update carrying every CPU's value.
func (h *Hash) update(key, value []byte, flags uint64, cpu int) int64 {
	ix := h.ix
	hv := ix.hashOf(key)
	s, gen := int32(-1), uint64(0)
	for {
		p, found := ix.find(hv, key)
		if found {
			if flags == UpdateNoExist {
				h.drop(s)
				return -linuxerr.EEXIST
			}
			if !ix.pin(p.cur, p.gen) {
				continue
			}
			h.writeValue(p.cur, value, cpu, false)
			if ix.ordered && !h.percpu {
				// The kernel links a fresh element at the bucket's head
				// and unlinks the old one; percpu maps copy in place.
				ix.restamp(p.cur)
			}
			if h.lru && h.ref[p.cur].Load() == 0 {
				h.ref[p.cur].Store(1)
			}
			ix.unpin(p.cur)
			h.drop(s)
			return 0
		}
		if flags == UpdateExist {
			h.drop(s)
			return -linuxerr.ENOENT
		}
		if s < 0 {
			var ok bool
			if s, gen, ok = h.alloc(); !ok {
				if h.lru {
					return -linuxerr.ENOMEM
				}
				return -linuxerr.E2BIG
			}
			storeWords(ix.keyOf(s), key)
			atomic.StoreUint64(ix.hashW(s), hv)
			if ix.ordered {
				ix.restamp(s)
			}
			h.writeValue(s, value, cpu, true)
			if h.lru {
				// New elements start unreferenced, as in the kernel; the
				// clock hand just freed this slot, so it has a full turn
				// to be used before it is considered again.
				h.ref[s].Store(0)
			}
		}
		if ix.link(p, s, gen) {
			return 0
		}
	}
}

func (h *Hash) drop(s int32) {
	if s >= 0 {
		h.ix.release(s)
	}
}

// writeValue stores value into slot s: every CPU's part for userspace
// (cpu < 0), else cpu's copy; a new percpu element zeroes the other CPUs.
func (h *Hash) writeValue(s int32, value []byte, cpu int, fresh bool) {
	switch {
	case !h.percpu:
		storeWords(h.valueWords(0, s), value)
	case cpu < 0:
		for c := range h.vals {
			storeWords(h.valueWords(c, s), value[c*h.stride:(c+1)*h.stride])
		}
	default:
		for c := range h.vals {
			if c == cpu {
				storeWords(h.valueWords(c, s), value)
			} else if fresh {
				zeroWords(h.valueWords(c, s))
			}
		}
	}
}

func (h *Hash) readValue(s int32, out []byte) {
	if !h.percpu {
		loadWords(out, h.valueWords(0, s))
		return
	}
	for c := range h.vals {
		loadWords(out[c*h.stride:(c+1)*h.stride], h.valueWords(c, s))
	}
}

// alloc takes a free slot; an LRU map evicts to make one. Other
// goroutines may take the slot an eviction freed, or free slots while the
// clock finds nothing to evict, so both are retried a few times; then an
// LRU map gives up with ENOMEM like the kernel's.
func (h *Hash) alloc() (int32, uint64, bool) {
	for try := 0; ; try++ {
		if s, gen, ok := h.ix.pop(); ok {
			return s, gen, true
		}
		if !h.lru || try == 8 {
			return -1, 0, false
		}
		h.evict()
	}
}

// evict is a CLOCK approximation of the kernel's LRU lists: the hand skips
// (and clears) elements referenced since its last pass and deletes the
// first unreferenced one. Two full turns find a victim unless other
// goroutines keep deleting under it.
func (h *Hash) evict() bool {
	ix := h.ix
	n := uint64(ix.n)
	for step := uint64(0); step < 2*n+2; step++ {
		s := int32(h.hand.Add(1) % n)
		st := atomic.LoadUint64(ix.stateW(s))
		if st&stLive == 0 || st&stRetired != 0 {
			continue
		}
		if h.ref[s].Load() != 0 {
			h.ref[s].Store(0)
			continue
		}
		if !ix.pin(s, st>>32) {
			continue
		}
		// Live, pinned and not retired: the node is linked, so marking it
		// deletes it; unlinking frees it when the pin goes.
		cw := atomic.LoadUint64(ix.nextW(s))
		if linkMarked(cw) || !atomic.CompareAndSwapUint64(ix.nextW(s), cw, relink(cw, linkSlot(cw), true)) {
			ix.unpin(s)
			continue
		}
		ix.purge(atomic.LoadUint64(ix.hashW(s)) & ix.mask)
		ix.unpin(s)
		return true
	}
	return false
}

func (h *Hash) Lookup(key, valueOut []byte) error {
	if err := h.userLookup("lookup", key, valueOut, h.userValueSize()); err != nil {
		return err
	}
	hv := h.ix.hashOf(key)
	for {
		s, gen, ok := h.ix.lookup(hv, key, true)
		if !ok {
			return errnoErr("lookup", syscall.ENOENT)
		}
		if !h.ix.pin(s, gen) {
			continue // deleted meanwhile; look again
		}
		h.readValue(s, valueOut)
		h.ix.unpin(s)
		return nil
	}
}

func (h *Hash) Update(key, value []byte, flags uint64) error {
	if err := h.userUpdate(key, value, h.userValueSize(), flags); err != nil {
		return err
	}
	if flags > UpdateExist {
		return errnoErr("update", syscall.EINVAL)
	}
	return errnoOf("update", h.update(key, value, flags, -1))
}

func (h *Hash) Delete(key []byte) error {
	if err := h.userDelete(key); err != nil {
		return err
	}
	if !h.ix.del(h.ix.hashOf(key), key, nil) {
		return errnoErr("delete", syscall.ENOENT)
	}
	return nil
}

func (h *Hash) NextKey(key, nextOut []byte) error {
	if err := h.userNextKey(key, nextOut); err != nil {
		return err
	}
	if !h.ix.nextKey(key, nextOut) {
		return errnoErr("next key", syscall.ENOENT)
	}
	return nil
}

// NextSlot moves c to the next element in the kernel's bucket order (see
// Cursor), copies its key into out and returns the slot of its value
// (LookupSlot's); prev is the key c was last at. A program's
// bpf_for_each_map_elem walks this way: nothing is pinned, as the
// kernel's RCU walk pins nothing, and nothing allocates.
func (h *Hash) NextSlot(c *Cursor, prev, out []byte) (int, bool) {
	s, ok := h.ix.next(c, prev[:min(len(prev), h.ix.keySize)], out[:h.ix.keySize])
	return int(s), ok
}

func (h *Hash) LookupAndDelete(key, valueOut []byte) error {
	if err := h.canWrite("lookup and delete"); err != nil {
		return err
	}
	if err := h.userLookup("lookup and delete", key, valueOut, h.userValueSize()); err != nil {
		return err
	}
	if !h.ix.del(h.ix.hashOf(key), key, func(s int32) { h.readValue(s, valueOut) }) {
		return errnoErr("lookup and delete", syscall.ENOENT)
	}
	return nil
}

// HashLayout describes a hash map's index for code that looks keys up
// without calling into this package: the engine hands it to compiled
// programs (vm.HashLayout), which then walk it as LookupSlot does.
type HashLayout struct {
	Heads, Nodes []uint64 // bucket heads and nodes (link words, see index)
	NodeWords    int
	// Word offsets inside a node: link word, hash, key (zero-padded).
	NextWord, HashWord, KeyWord int
	KeySize                     int
	Seed                        [2]uint64 // keyHash's
	HashMask                    uint64    // the hash is keyHash(Seed, key) & HashMask
	// JHash: the hash is htabHash(key, 0) & HashMask instead (BPF_F_ZERO_SEED).
	JHash bool
	// Ref, for LRU maps, is the reference flag of each slot, which a
	// lookup finding the slot sets if clear.
	Ref []uint32
}

// Layout returns h's layout.
func (h *Hash) Layout() HashLayout {
	ix := h.ix
	l := HashLayout{
		Heads: ix.heads, Nodes: ix.nodes, NodeWords: ix.nw,
		NextWord: nodeNext, HashWord: nodeHash, KeyWord: nodeKey,
		KeySize: ix.keySize, Seed: ix.seed, HashMask: ix.hmask, JHash: ix.ordered,
	}
	if h.lru {
		// atomic.Uint32 is a uint32: the layout's readers use plain
		// 32-bit loads and stores, atomic on every CPU this runs on.
		l.Ref = unsafe.Slice((*uint32)(unsafe.Pointer(&h.ref[0])), len(h.ref))
	}
	return l
}
