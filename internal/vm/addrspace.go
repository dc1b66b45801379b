package vm

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Virtual addresses are 64 bits: the high 32 bits name a region, the low 32
// bits are an offset inside it.
//
//	63                32 31                 0
//	+-------------------+--------------------+
//	|     region id     |       offset       |
//	+-------------------+--------------------+
//
// Region 0 holds the packet at PacketBase, so packet addresses fit the u32
// data/data_end/data_meta fields of __sk_buff. Addresses below PacketBase
// (NULL and small offsets) are never mapped.
const (
	RegionPacket uint32 = 0 // the packet, [data_meta, data_end) accessible
	RegionStack  uint32 = 1 // the Machine's stack: MaxFrames frames of StackSize bytes
	RegionCtx    uint32 = 2 // the context (e.g. __sk_buff): CtxPolicy-checked bytes or a ContextAccessor
	RegionCode   uint32 = 3 // subprogram addresses (ld_imm64 src 4); never accessible

	// MaxDynamicRegions is how many per-run regions (ring buffer records,
	// helper results) a Machine maps at once, ids firstDynamic and up.
	MaxDynamicRegions = 16

	firstDynamic = 4
	firstShared  = firstDynamic + MaxDynamicRegions

	// PacketBase is the address of byte 0 of the packet buffer.
	PacketBase uint64 = 1 << 16

	// CtxAddr is the address of the context, the value r1 starts with.
	CtxAddr uint64 = uint64(RegionCtx) << 32

	// StackSize is the stack of one frame; MaxFrames is the deepest call chain.
	StackSize = 512
	MaxFrames = 8

	// MaxTailCalls is the kernel's MAX_TAIL_CALL_CNT.
	MaxTailCalls = 33
)

// PacketAddr is the address of byte off of the packet buffer given to
// SetPacket. The skb layer stores its low 32 bits in __sk_buff.data and friends.
func PacketAddr(off int) uint64 { return PacketBase + uint64(off) }

// StackAddr is the address of byte off of the Machine's stack region; frame f
// (0 = the program's entry frame) starts r10 at StackAddr((f+1)*StackSize).
func StackAddr(off int) uint64 { return uint64(RegionStack)<<32 | uint64(off) }

// FuncAddr is the value ld_imm64 src 4 loads for the subprogram starting at raw
// instruction insn; Machine.Call accepts it.
func FuncAddr(insn int) uint64 { return uint64(RegionCode)<<32 | uint64(uint32(insn)) }

// Region describes memory mapped into an AddressSpace.
type Region struct {
	// Data is the memory itself. The VM reads and writes it in place;
	// atomics need it 8-byte aligned (allocate it as []uint64), else they
	// fault as misaligned.
	Data []byte
	// Stride, if not 0, divides Data into slots (map values): every access
	// must stay inside the first SlotSize bytes of one slot.
	Stride int
	// SlotSize is the accessible prefix of each slot (0 means Stride), so a
	// map can pad values to 8 bytes and still confine accesses to value_size.
	SlotSize int
	// ReadOnly rejects writes and atomics (frozen maps, .rodata).
	ReadOnly bool
	// Constant promises that Data never changes while the region is
	// mapped, and that it stays mapped while a program loaded into the
	// address space may run (a frozen map programs cannot write:
	// .rodata). Compiled code then reads what a load at a proven
	// constant address finds there when it is compiled, as the kernel's
	// verifier does for frozen read-only maps. It requires ReadOnly.
	Constant bool
}

// perm bits of a region.
const (
	permRead   uint8 = 1 << iota
	permWrite        // plain stores
	permAtomic       // atomic read-modify-write
	permSlow         // slot or context-policy check needed
	permHook         // context accesses go to the Machine's ContextAccessor
)

// region is the VM's view of one region. An access of n bytes at offset o is
// allowed iff lo <= o, o+n <= hi, and the perm and slot rules hold; the byte
// at offset o is buf[o-base].
type region struct {
	buf    []byte
	base   uint32
	lo, hi uint32
	perm   uint8
	stride uint32     // 0: no slots
	slot   uint32     // accessible bytes per slot
	magic  uint64     // ceil(2^64/stride), for a division-free remainder
	policy *CtxPolicy // context region: per-access rules
	obj    any        // handle regions: the object the handle stands for
	// constant: Region.Constant.
	constant bool
	// Handles of NewArrayHandle: arrBase[cpu] + i*arrStride for i < arrN.
	arrBase   []uint64
	arrN      uint32
	arrStride uint32
	// Handles of NewHashHandle: the hash map compiled lookups walk.
	hash *hashDesc
}

// AddressSpace is the set of shared regions (map values, globals) and
// handles that programs and Machines agree on. Programs loaded into the same
// AddressSpace can tail-call each other. It is safe for concurrent use;
// Machines see a consistent snapshot of it per run.
type AddressSpace struct {
	mu   sync.Mutex
	free []uint32 // unmapped ids, reused LIFO
	snap atomic.Pointer[[]region]
	gen  atomic.Uint64
	// policies are the context policies of the programs loaded into the
	// space, one copy per content (ctxpolicy.go, sharedPolicy).
	policies []*CtxPolicy
}

// NewAddressSpace returns an empty address space.
func NewAddressSpace() *AddressSpace {
	as := &AddressSpace{}
	empty := []region{}
	as.snap.Store(&empty)
	return as
}

// Map makes r accessible to programs and returns the address of r.Data[0].
func (as *AddressSpace) Map(r Region) (uint64, error) {
	reg, err := newRegion(r)
	if err != nil {
		return 0, err
	}
	return as.add(reg), nil
}

// NewHandle returns an opaque, never accessible address standing for obj
// (typically a map, for ld_imm64 src 1/5). Object maps it back.
func (as *AddressSpace) NewHandle(obj any) uint64 {
	return as.add(region{obj: obj})
}

// NewArrayHandle is NewHandle for an array (bpf_map_lookup_elem of index
// i < n on it returns bases[cpu] + i*stride for a Machine running as cpu,
// see SetCPU; NULL for i >= n), which lets compiled code answer the
// Options.ArrayLookup helper itself. The caller's helper must give the
// same answers: the interpreter and every other case still call it.
func (as *AddressSpace) NewArrayHandle(obj any, n, stride uint32, bases []uint64) uint64 {
	return as.add(region{obj: obj, arrBase: slices.Clone(bases), arrN: n, arrStride: stride})
}

// Hash map nodes, as HashLayout.Nodes holds them: words of a slot's node.
const (
	HashNodeNext = 0 // link word: bits 0-31 the next slot + 1 (0: end), bit 32 deleted
	HashNodeHash = 1 // the key's hash; a bucket's list is sorted by (hash, key words)
	HashNodeKey  = 4 // the key, zero-padded to whole words
)

// HashLayout describes a hash map's index to compiled code, which looks
// keys up in it as the map's own lookup does: the bucket's sorted list
// from Heads[hash & (len(Heads)-1)], nodes of NodeWords words (HashNode*)
// in Nodes, the value of slot s at Bases[cpu] + s*Stride.
type HashLayout struct {
	Heads     []uint64 // link words; a power of two of them
	Nodes     []uint64
	NodeWords int
	KeySize   int
	// The hash: over the key's words w (the last zero-padded), h =
	// mum(h ^ w, Seed[1]) from Seed[0], mum(a, b) the high and low halves
	// of the 128-bit product a*b xored; then h & HashMask.
	Seed     [2]uint64
	HashMask uint64
	// JHash: the hash is instead the kernel's htab_map_hash with seed 0
	// (jhash over the key's bytes, which for whole 32-bit words is
	// jhash2's value), & HashMask: BPF_F_ZERO_SEED maps.
	JHash bool
	// Ref, if not nil, holds a flag per slot that a lookup finding the
	// slot sets if it is clear (LRU maps' reference bits).
	Ref    []uint32
	Bases  []uint64 // per CPU
	Stride uint32
}

// hashDesc is a HashLayout as compiled code reads it (jit_hash).
type hashDesc struct {
	heads     unsafe.Pointer
	mask      uint64 // buckets - 1
	nodes     unsafe.Pointer
	nodeBytes uint64
	n         uint64 // slots
	keySize   uint64
	full      uint64 // keySize &^ 7: bytes compared as whole words
	tail      uint64 // keySize & 7
	seed      [2]uint64
	hmask     uint64
	ref       unsafe.Pointer // nil: no reference bits
	bases     unsafe.Pointer
	ncpu      uint64
	stride    uint64
	jhash     uint64 // HashLayout.JHash
}

// NewHashHandle is NewHandle for a hash map that l describes, which lets
// compiled code answer the Options.ArrayLookup helper (bpf_map_lookup_elem)
// on it itself: l.Bases[cpu] + slot*l.Stride for the slot holding the key,
// NULL if none. The caller's helper must give the same answers, reading
// the same memory; the interpreter and every case compiled code declines
// still call it. It fails (EINVAL) for a layout it cannot describe.
func (as *AddressSpace) NewHashHandle(obj any, l HashLayout) (uint64, error) {
	n := len(l.Nodes) / max(l.NodeWords, 1)
	switch {
	case len(l.Heads) == 0 || len(l.Heads)&(len(l.Heads)-1) != 0, l.KeySize <= 0,
		l.NodeWords < HashNodeKey+(l.KeySize+7)/8, n == 0, len(l.Nodes) != n*l.NodeWords,
		l.Ref != nil && len(l.Ref) < n, len(l.Bases) == 0, uint64(n) > math.MaxInt32:
		return 0, fmt.Errorf("hash handle: layout of %d heads, %d node words, key size %d: %w", len(l.Heads), l.NodeWords, l.KeySize, syscall.EINVAL)
	}
	bases := slices.Clone(l.Bases)
	d := &hashDesc{
		heads: unsafe.Pointer(&l.Heads[0]), mask: uint64(len(l.Heads) - 1),
		nodes: unsafe.Pointer(&l.Nodes[0]), nodeBytes: uint64(l.NodeWords) * 8, n: uint64(n),
		keySize: uint64(l.KeySize), full: uint64(l.KeySize) &^ 7, tail: uint64(l.KeySize) & 7,
		seed: l.Seed, hmask: l.HashMask, bases: unsafe.Pointer(&bases[0]), ncpu: uint64(len(bases)),
		stride: uint64(l.Stride),
	}
	if l.JHash {
		d.jhash = 1
	}
	if l.Ref != nil {
		d.ref = unsafe.Pointer(&l.Ref[0])
	}
	return as.add(region{obj: obj, hash: d}), nil
}

// Object returns the object a handle from NewHandle stands for.
func (as *AddressSpace) Object(handle uint64) (any, bool) {
	if uint32(handle) != 0 {
		return nil, false
	}
	regs := *as.snap.Load()
	id := handle >> 32
	if id < firstShared || id-firstShared >= uint64(len(regs)) {
		return nil, false
	}
	obj := regs[id-firstShared].obj
	return obj, obj != nil
}

// Unmap removes the region or handle at addr (as returned by Map or
// NewHandle). Runs already in progress may still use it until they end;
// afterwards every access through its addresses faults.
func (as *AddressSpace) Unmap(addr uint64) error {
	as.mu.Lock()
	defer as.mu.Unlock()
	regs := *as.snap.Load()
	id := addr >> 32
	if uint32(addr) != 0 || id < firstShared || id-firstShared >= uint64(len(regs)) {
		return fmt.Errorf("unmap %#x: %w", addr, syscall.EINVAL)
	}
	i := id - firstShared
	if regs[i].perm == 0 && regs[i].obj == nil {
		return fmt.Errorf("unmap %#x: %w", addr, syscall.ENOENT)
	}
	next := append([]region(nil), regs...)
	next[i] = region{}
	as.free = append(as.free, uint32(i))
	as.publish(next)
	return nil
}

func (as *AddressSpace) add(reg region) uint64 {
	as.mu.Lock()
	defer as.mu.Unlock()
	regs := *as.snap.Load()
	next := append([]region(nil), regs...)
	var i uint32
	if n := len(as.free); n > 0 {
		i = as.free[n-1]
		as.free = as.free[:n-1]
		next[i] = reg
	} else {
		i = uint32(len(next))
		next = append(next, reg)
	}
	as.publish(next)
	return uint64(i+firstShared) << 32
}

func (as *AddressSpace) publish(regs []region) {
	as.snap.Store(&regs)
	as.gen.Add(1)
}

// lookup returns the shared region holding addr, for load-time checks.
func (as *AddressSpace) lookup(addr uint64) (region, bool) {
	regs := *as.snap.Load()
	id := addr >> 32
	if id < firstShared || id-firstShared >= uint64(len(regs)) {
		return region{}, false
	}
	r := regs[id-firstShared]
	return r, r.perm != 0
}

func newRegion(r Region) (region, error) {
	if uint64(len(r.Data)) > math.MaxUint32 {
		return region{}, fmt.Errorf("map region: %d bytes: %w", len(r.Data), syscall.E2BIG)
	}
	reg := region{buf: r.Data, hi: uint32(len(r.Data)), perm: permRead | permWrite | permAtomic}
	if r.ReadOnly {
		reg.perm = permRead
	}
	if r.Constant && !r.ReadOnly {
		return region{}, fmt.Errorf("map region: constant but writable: %w", syscall.EINVAL)
	}
	reg.constant = r.Constant
	if r.Stride < 0 || r.SlotSize < 0 || r.SlotSize > r.Stride || (r.Stride == 0 && r.SlotSize != 0) {
		return region{}, fmt.Errorf("map region: stride %d slot %d: %w", r.Stride, r.SlotSize, syscall.EINVAL)
	}
	if r.Stride > 0 {
		if len(r.Data)%r.Stride != 0 {
			return region{}, fmt.Errorf("map region: %d bytes is not a multiple of stride %d: %w", len(r.Data), r.Stride, syscall.EINVAL)
		}
		reg.stride = uint32(r.Stride)
		reg.slot = uint32(r.SlotSize)
		if reg.slot == 0 {
			reg.slot = reg.stride
		}
		reg.perm |= permSlow
		reg.magic = math.MaxUint64/uint64(reg.stride) + 1 // 0 for stride 1, see slotRem
	}
	return reg, nil
}
