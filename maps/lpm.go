package maps

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// LPMTrie is BPF_MAP_TYPE_LPM_TRIE: keys are struct bpf_lpm_trie_key_u8
// (a native-endian u32 prefix length, then KeySize-4 bytes of big-endian
// data) and lookups return the longest stored prefix matching the key.
//
// The trie is the kernel's (a binary trie with path compression and
// value-less intermediate nodes), made persistent: nodes never change once
// published, writers copy the path they modify and publish a new root with
// one atomic store. Lookups are therefore lock-free and allocation-free;
// updates and deletes, from userspace or programs, take a mutex and
// allocate the copied path. Values live in preallocated slots like every
// SlotMap; a freed slot is reused last (FIFO), which keeps a program that
// still holds a pointer from an old root away from another key's value
// unless the map is nearly full.
type LPMTrie struct {
	base
	dataSize  int
	maxPrefix uint32
	vsize     int
	stride    int
	vals      wordBuf
	root      atomic.Pointer[lpmNode]

	mu      sync.Mutex // serialises writers; guards everything below
	free    []int32    // FIFO ring of free slots
	freeOff int
	freeLen int
	entries int
}

var _ SlotMap = (*LPMTrie)(nil)

type lpmNode struct {
	child     [2]*lpmNode
	prefixlen uint32
	slot      int32 // -1: intermediate node without a value
	data      []byte
	head      uint64 // data's first 8 bytes, big-endian, zero-padded (lpmHead)
}

// lpmHead is the first 8 bytes of data as a big-endian number, zero-padded:
// a key of up to 8 bytes (IPv4, a MAC address) is matched against a node
// in one exclusive-or (longest).
func lpmHead(data []byte) uint64 {
	var b [8]byte
	copy(b[:], data)
	return binary.BigEndian.Uint64(b[:])
}

const (
	lpmDataSizeMax = 256
	lpmNodeSize    = 24
)

func newLPMTrie(i Info, opts Options) (*LPMTrie, error) {
	const mask = FlagNoPrealloc | FlagNumaNode | flagAccessMask
	switch {
	case i.MaxEntries == 0, i.Flags&FlagNoPrealloc == 0, i.Flags&^mask != 0,
		i.KeySize < 4+1, i.KeySize > 4+lpmDataSizeMax,
		i.ValueSize < 1, i.ValueSize > kmallocMaxSize-lpmDataSizeMax-lpmNodeSize:
		return nil, fmt.Errorf("create map %q: LPM trie needs max_entries > 0, BPF_F_NO_PREALLOC, key size 5..260 and value size > 0 (flags %#x, key %d, value %d): %w",
			i.Name, i.Flags, i.KeySize, i.ValueSize, syscall.EINVAL)
	}
	t := &LPMTrie{base: base{info: i}, dataSize: int(i.KeySize) - 4, vsize: int(i.ValueSize), stride: roundUp8(int(i.ValueSize))}
	t.maxPrefix = uint32(t.dataSize) * 8
	n := int(i.MaxEntries)
	if err := checkMemory(i, opts, int64(n)*int64(t.stride+4)); err != nil {
		return nil, err
	}
	t.vals = newWordBuf(n * t.stride)
	t.free = make([]int32, n)
	for s := range t.free {
		t.free[s] = int32(s)
	}
	t.freeLen = n
	return t, nil
}

func (t *LPMTrie) ValueSize() int { return t.vsize }
func (t *LPMTrie) Stride() int    { return t.stride }
func (t *LPMTrie) NumCPU() int    { return 1 }
func (t *LPMTrie) Slots(cpu int) []byte {
	return t.vals.b
}

func (t *LPMTrie) valueWords(s int32) []uint64 {
	w := t.stride / 8
	return t.vals.w[int(s)*w : int(s+1)*w]
}

// prefixMatch is __longest_prefix_match: the number of leading bits a and b
// share, at most limit.
func prefixMatch(a, b []byte, limit uint32) uint32 {
	var n uint32
	i := 0
	for ; i+8 <= len(a) && n < limit; i += 8 {
		if x := binary.BigEndian.Uint64(a[i:]) ^ binary.BigEndian.Uint64(b[i:]); x != 0 {
			return min(n+uint32(bits.LeadingZeros64(x)), limit)
		}
		n += 64
	}
	// An IPv4 address (or what is left of a longer key) in one step
	// rather than byte by byte.
	if i+4 <= len(a) && n < limit {
		if x := binary.BigEndian.Uint32(a[i:]) ^ binary.BigEndian.Uint32(b[i:]); x != 0 {
			return min(n+uint32(bits.LeadingZeros32(x)), limit)
		}
		n += 32
		i += 4
	}
	for ; i < len(a) && n < limit; i++ {
		if x := a[i] ^ b[i]; x != 0 {
			return min(n+uint32(bits.LeadingZeros8(x)), limit)
		}
		n += 8
	}
	return min(n, limit)
}

func extractBit(data []byte, i uint32) int {
	return int(data[i/8]>>(7-i%8)) & 1
}

// splitKey returns the prefix length and data of a bpf_lpm_trie_key_u8.
func (t *LPMTrie) splitKey(key []byte) (uint32, []byte) {
	return binary.NativeEndian.Uint32(key), key[4 : 4+t.dataSize]
}

// longest is trie_lookup_elem: the node of the longest prefix matching key.
func (t *LPMTrie) longest(plen uint32, data []byte) *lpmNode {
	if plen > t.maxPrefix {
		return nil
	}
	var found *lpmNode
	if t.dataSize <= 8 {
		key := lpmHead(data)
		for n := t.root.Load(); n != nil; {
			ml := min(uint32(bits.LeadingZeros64(n.head^key)), n.prefixlen, plen)
			if ml == t.maxPrefix {
				return n
			}
			if ml < n.prefixlen {
				break
			}
			if n.slot >= 0 {
				found = n
			}
			n = n.child[key>>(63-n.prefixlen)&1] // n.prefixlen < maxPrefix <= 64
		}
		return found
	}
	for n := t.root.Load(); n != nil; {
		ml := prefixMatch(n.data, data, min(n.prefixlen, plen))
		if ml == t.maxPrefix {
			return n
		}
		if ml < n.prefixlen {
			break
		}
		if n.slot >= 0 {
			found = n
		}
		n = n.child[extractBit(data, n.prefixlen)]
	}
	return found
}

// exact returns the value node stored for exactly (plen, data).
func (t *LPMTrie) exact(root *lpmNode, plen uint32, data []byte) *lpmNode {
	for n := root; n != nil; {
		ml := prefixMatch(n.data, data, min(n.prefixlen, plen))
		if n.prefixlen != ml {
			return nil
		}
		if n.prefixlen == plen {
			if n.slot < 0 {
				return nil
			}
			return n
		}
		n = n.child[extractBit(data, n.prefixlen)]
	}
	return nil
}

func (t *LPMTrie) LookupSlot(key []byte, cpu int) (int, bool) {
	if len(key) < 4+t.dataSize {
		return 0, false
	}
	n := t.longest(t.splitKey(key))
	if n == nil {
		return 0, false
	}
	return int(n.slot), true
}

// UpdateElem is trie_update_elem; unlike the other maps it locks and
// allocates (see LPMTrie).
func (t *LPMTrie) UpdateElem(key, value []byte, flags uint64, cpu int) int64 {
	if t.info.Flags&FlagRdonlyProg != 0 {
		return -linuxerr.EACCES
	}
	if len(key) < 4+t.dataSize || len(value) < t.vsize {
		return -linuxerr.EINVAL
	}
	return t.update(key, value[:t.vsize], flags)
}

func (t *LPMTrie) DeleteElem(key []byte, cpu int) int64 {
	if t.info.Flags&FlagRdonlyProg != 0 {
		return -linuxerr.EACCES
	}
	if len(key) < 4+t.dataSize {
		return -linuxerr.EINVAL
	}
	return t.delete(key)
}

func (t *LPMTrie) update(key, value []byte, flags uint64) int64 {
	if flags > UpdateExist {
		return -linuxerr.EINVAL
	}
	plen, data := t.splitKey(key)
	if plen > t.maxPrefix {
		return -linuxerr.EINVAL
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	root := t.root.Load()
	if n := t.exact(root, plen, data); n != nil {
		if flags == UpdateNoExist {
			return -linuxerr.EEXIST
		}
		storeWords(t.valueWords(n.slot), value)
		if !bytes.Equal(n.data, data) {
			// The kernel's new node carries the new key's bits beyond the
			// prefix, which NextKey reports.
			t.root.Store(t.insert(root, &lpmNode{prefixlen: plen, slot: n.slot, data: append([]byte(nil), data...), head: lpmHead(data)}))
		}
		return 0
	}
	if flags == UpdateExist {
		return -linuxerr.ENOENT
	}
	if t.entries == int(t.info.MaxEntries) || t.freeLen == 0 {
		return -linuxerr.ENOSPC
	}
	s := t.free[t.freeOff]
	t.freeOff = (t.freeOff + 1) % len(t.free)
	t.freeLen--
	t.entries++
	storeWords(t.valueWords(s), value)
	nn := &lpmNode{prefixlen: plen, slot: s, data: append([]byte(nil), data...), head: lpmHead(data)}
	t.root.Store(t.insert(root, nn))
	return 0
}

// insert returns a copy of the subtree n with nn added, sharing every node
// off the modified path.
func (t *LPMTrie) insert(n, nn *lpmNode) *lpmNode {
	if n == nil {
		return nn
	}
	ml := prefixMatch(n.data, nn.data, min(n.prefixlen, nn.prefixlen))
	switch {
	case n.prefixlen == ml && n.prefixlen != nn.prefixlen:
		c := *n
		bit := extractBit(nn.data, n.prefixlen)
		c.child[bit] = t.insert(n.child[bit], nn)
		return &c
	case n.prefixlen == ml:
		// Same prefix: nn replaces the intermediate node n.
		nn.child = n.child
		return nn
	case ml == nn.prefixlen:
		nn.child[extractBit(n.data, ml)] = n
		return nn
	}
	im := &lpmNode{prefixlen: ml, slot: -1, data: n.data, head: n.head}
	if extractBit(nn.data, ml) == 1 {
		im.child = [2]*lpmNode{n, nn}
	} else {
		im.child = [2]*lpmNode{nn, n}
	}
	return im
}

func (t *LPMTrie) delete(key []byte) int64 {
	plen, data := t.splitKey(key)
	if plen > t.maxPrefix {
		return -linuxerr.EINVAL
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	root, slot := t.remove(t.root.Load(), plen, data)
	if slot < 0 {
		return -linuxerr.ENOENT
	}
	t.root.Store(root)
	t.entries--
	t.free[(t.freeOff+t.freeLen)%len(t.free)] = slot
	t.freeLen++
	return 0
}

// remove returns a copy of the subtree n without (plen, data) and the slot
// of the removed value (-1: not found), keeping the kernel's invariant that
// intermediate nodes have exactly two children.
func (t *LPMTrie) remove(n *lpmNode, plen uint32, data []byte) (*lpmNode, int32) {
	if n == nil {
		return nil, -1
	}
	if ml := prefixMatch(n.data, data, min(n.prefixlen, plen)); n.prefixlen != ml {
		return n, -1
	}
	if n.prefixlen == plen {
		switch {
		case n.slot < 0:
			return n, -1
		case n.child[0] != nil && n.child[1] != nil:
			im := *n
			im.slot = -1
			return &im, n.slot
		case n.child[0] != nil:
			return n.child[0], n.slot
		}
		return n.child[1], n.slot
	}
	bit := extractBit(data, n.prefixlen)
	nc, slot := t.remove(n.child[bit], plen, data)
	if slot < 0 {
		return n, -1
	}
	if nc == nil && n.slot < 0 {
		return n.child[1-bit], slot
	}
	c := *n
	c.child[bit] = nc
	return &c, slot
}

func (t *LPMTrie) Lookup(key, valueOut []byte) error {
	if err := t.userLookup("lookup", key, valueOut, t.vsize); err != nil {
		return err
	}
	// Under the writers' lock the slot cannot be freed while it is copied.
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.longest(t.splitKey(key))
	if n == nil {
		return errnoErr("lookup", syscall.ENOENT)
	}
	loadWords(valueOut, t.valueWords(n.slot))
	return nil
}

func (t *LPMTrie) Update(key, value []byte, flags uint64) error {
	if err := t.userUpdate(key, value, t.vsize, flags); err != nil {
		return err
	}
	return errnoOf("update", t.update(key, value, flags))
}

func (t *LPMTrie) Delete(key []byte) error {
	if err := t.userDelete(key); err != nil {
		return err
	}
	return errnoOf("delete", t.delete(key))
}

// NextKey is trie_get_next_key: keys in postorder (more specific prefixes
// before the ones containing them), the leftmost one for a nil or missing
// key.
func (t *LPMTrie) NextKey(key, nextOut []byte) error {
	if err := t.userNextKey(key, nextOut); err != nil {
		return err
	}
	root := t.root.Load()
	if root == nil {
		return errnoErr("next key", syscall.ENOENT)
	}
	next := t.leftmost(root)
	if key != nil {
		if plen, data := t.splitKey(key); plen <= t.maxPrefix {
			var ok bool
			if next, ok = t.after(root, plen, data); !ok {
				next = t.leftmost(root)
			} else if next == nil {
				return errnoErr("next key", syscall.ENOENT)
			}
		}
	}
	binary.NativeEndian.PutUint32(nextOut, next.prefixlen)
	copy(nextOut[4:], next.data)
	return nil
}

// after finds the value node (plen, data) and returns its postorder
// successor (nil after the last); ok is false when the key is not stored.
func (t *LPMTrie) after(root *lpmNode, plen uint32, data []byte) (next *lpmNode, ok bool) {
	var stack []*lpmNode
	var ml uint32
	n := root
	for n != nil {
		stack = append(stack, n)
		ml = prefixMatch(n.data, data, min(n.prefixlen, plen))
		if n.prefixlen != ml || n.prefixlen == plen {
			break
		}
		n = n.child[extractBit(data, n.prefixlen)]
	}
	if n == nil || n.prefixlen != ml || n.slot < 0 {
		return nil, false
	}
	for i := len(stack) - 1; i > 0; i-- {
		parent := stack[i-1]
		if parent.child[0] == stack[i] && parent.child[1] != nil {
			return t.leftmost(parent.child[1]), true
		}
		if parent.slot >= 0 {
			return parent, true
		}
	}
	return nil, true
}

// leftmost is the first value node of n's subtree in postorder.
func (t *LPMTrie) leftmost(n *lpmNode) *lpmNode {
	var found *lpmNode
	for n != nil {
		if n.slot >= 0 {
			found = n
		}
		// Intermediate nodes always have a left child.
		if n.child[0] != nil {
			n = n.child[0]
		} else {
			n = n.child[1]
		}
	}
	return found
}

func (t *LPMTrie) LookupAndDelete(key, valueOut []byte) error {
	return (&unsupported{&t.base}).LookupAndDelete(key, valueOut)
}
