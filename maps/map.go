package maps

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/sock"
)

// Update flags of bpf_map_update_elem (include/uapi/linux/bpf.h).
const (
	UpdateAny     uint64 = 0 // BPF_ANY: create or overwrite
	UpdateNoExist uint64 = 1 // BPF_NOEXIST: create only
	UpdateExist   uint64 = 2 // BPF_EXIST: overwrite only
	UpdateLock    uint64 = 4 // BPF_F_LOCK: needs a bpf_spin_lock in the value, which no map here has
)

// Map creation flags (BPF_F_*).
const (
	FlagNoPrealloc   uint32 = 1 << 0
	FlagNoCommonLRU  uint32 = 1 << 1
	FlagNumaNode     uint32 = 1 << 2
	FlagRdonly       uint32 = 1 << 3 // userspace may only read
	FlagWronly       uint32 = 1 << 4 // userspace may only write
	FlagZeroSeed     uint32 = 1 << 6
	FlagRdonlyProg   uint32 = 1 << 7 // programs may only read
	FlagWronlyProg   uint32 = 1 << 8 // programs may only write
	FlagMmapable     uint32 = 1 << 10
	FlagPreserveElem uint32 = 1 << 11
	FlagInnerMap     uint32 = 1 << 12

	flagAccessMask = FlagRdonly | FlagWronly | FlagRdonlyProg | FlagWronlyProg
)

// ENOTSUPP is the kernel-internal errno 524 that bpf(2) returns for
// operations a map type does not implement (lookup on a ring buffer ...).
const ENOTSUPP = syscall.Errno(linuxerr.ENOTSUPP)

// Map is a BPF map as userspace sees it through bpf(2): keys and values are
// raw bytes of the map's sizes and every error wraps the errno the kernel
// returns for the same request. Percpu maps read and write all CPUs at once:
// their value buffers hold NumCPU values of round_up(ValueSize, 8) bytes.
type Map interface {
	Info() Info
	// Lookup copies the value of key into valueOut (BPF_MAP_LOOKUP_ELEM).
	Lookup(key, valueOut []byte) error
	// Update stores value under key (BPF_MAP_UPDATE_ELEM) with UpdateAny,
	// UpdateNoExist or UpdateExist.
	Update(key, value []byte, flags uint64) error
	// Delete removes key (BPF_MAP_DELETE_ELEM).
	Delete(key []byte) error
	// NextKey writes the key after key into nextOut (BPF_MAP_GET_NEXT_KEY);
	// a nil key asks for the first key. ENOENT ends the iteration.
	NextKey(key, nextOut []byte) error
	// LookupAndDelete copies and removes key's value atomically
	// (BPF_MAP_LOOKUP_AND_DELETE_ELEM); only hash maps support it.
	LookupAndDelete(key, valueOut []byte) error
	// Freeze makes the map read-only for userspace (BPF_MAP_FREEZE);
	// programs keep their access.
	Freeze() error
}

// SlotMap is the packet-path view of the maps whose values live in fixed
// slots: Array, PerCPUArray, the hash maps and the LPM trie. Value memory is
// one stable, 8-byte aligned []byte per CPU (one for non-percpu maps); slot i
// occupies Slots(cpu)[i*Stride() : i*Stride()+ValueSize()], so a VM can hand
// programs the pointer region<<32 | slot*Stride() + off and bounds-check every
// access against the slot. Nothing here allocates or takes a lock, except
// LPM trie updates (see LPMTrie).
type SlotMap interface {
	Map
	// ValueSize is the number of bytes of a slot a program may touch.
	ValueSize() int
	// Stride is the distance between slots: ValueSize rounded up to 8.
	Stride() int
	// NumCPU is the number of per-CPU copies (1 for shared maps).
	NumCPU() int
	// Slots is the backing store of cpu's values; it never changes.
	Slots(cpu int) []byte
	// LookupSlot is bpf_map_lookup_elem: the slot holding key's value.
	// The slot is the same for every CPU of a percpu map.
	LookupSlot(key []byte, cpu int) (slot int, ok bool)
	// UpdateElem is bpf_map_update_elem run by a program on cpu: 0 or a
	// negative Linux errno (package linuxerr), whatever the host OS.
	UpdateElem(key, value []byte, flags uint64, cpu int) int64
	// DeleteElem is bpf_map_delete_elem: 0 or a negative Linux errno.
	DeleteElem(key []byte, cpu int) int64
}

// Info describes a map.
type Info struct {
	Name       string
	Type       ebpf.MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      uint32
	// Frozen reports whether Freeze was called (userspace writes fail).
	Frozen bool
}

// Options configure New.
type Options struct {
	// NumCPU is the number of CPUs percpu maps keep values for, and the
	// default size of a perf event array. 0 means runtime.NumCPU().
	NumCPU int
	// MemoryLimit caps the bytes one map may preallocate; larger maps fail
	// with ENOMEM as the kernel would under memcg limits. 0 means 1 GiB.
	MemoryLimit int64
	// ResolveProgram turns the 4-byte value of a userspace Update on a
	// program array (a program fd in the kernel) into the program. nil
	// makes such updates fail with EBADF; Set works regardless.
	ResolveProgram func(handle uint32) (any, error)
	// ResolveSocket turns the value of a userspace Update on a sockmap or
	// sockhash (a socket fd in the kernel) into the socket. nil makes such
	// updates fail with EBADF; SetSocket works regardless.
	ResolveSocket func(handle uint64) (*sock.Socket, error)
}

const defaultMemoryLimit = 1 << 30

func (o Options) numCPU() int {
	if o.NumCPU > 0 {
		return o.NumCPU
	}
	return runtime.NumCPU()
}

func (o Options) memoryLimit() int64 {
	if o.MemoryLimit > 0 {
		return o.MemoryLimit
	}
	return defaultMemoryLimit
}

// New creates a map from spec (BPF_MAP_CREATE), validating it as the kernel
// does, then stores spec.Contents and freezes .rodata and .kconfig maps the
// way cilium/ebpf's loader does. Program array contents are program names
// that only the loader can resolve, so they are left to it (Set).
func New(spec *ebpf.MapSpec, opts Options) (Map, error) {
	m, err := create(spec, opts)
	if err != nil {
		return nil, err
	}
	// Prog arrays and maps of maps name programs and maps in their
	// contents: the collection that holds those fills them in.
	if spec.Type != ebpf.ProgramArray && spec.Type != ebpf.ArrayOfMaps && spec.Type != ebpf.HashOfMaps {
		for _, kv := range spec.Contents {
			if err := putContents(m, kv); err != nil {
				return nil, fmt.Errorf("create map %q: contents: %w", spec.Name, err)
			}
		}
	}
	if strings.HasPrefix(spec.Name, ".rodata") || spec.Name == ".kconfig" {
		if err := m.Freeze(); err != nil {
			return nil, fmt.Errorf("create map %q: %w", spec.Name, err)
		}
	}
	return m, nil
}

func create(spec *ebpf.MapSpec, opts Options) (Map, error) {
	if spec == nil {
		return nil, fmt.Errorf("create map: nil spec: %w", syscall.EINVAL)
	}
	if opts.NumCPU < 0 {
		return nil, fmt.Errorf("create map %q: NumCPU %d: %w", spec.Name, opts.NumCPU, syscall.EINVAL)
	}
	invalid := func(why string) error {
		return fmt.Errorf("create map %q: %s: %w", spec.Name, why, syscall.EINVAL)
	}
	if spec.Extra != nil && spec.Extra.Len() > 0 {
		return nil, invalid("trailing bytes in the map definition")
	}
	if spec.MapExtra != 0 {
		return nil, invalid("map_extra must be 0")
	}
	if spec.Flags&(FlagRdonly|FlagWronly) == FlagRdonly|FlagWronly {
		return nil, invalid("BPF_F_RDONLY and BPF_F_WRONLY together")
	}
	if spec.Flags&(FlagRdonlyProg|FlagWronlyProg) == FlagRdonlyProg|FlagWronlyProg {
		return nil, invalid("BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together")
	}
	if spec.Flags&FlagNumaNode != 0 && spec.NumaNode != 0 {
		return nil, invalid("only NUMA node 0 exists")
	}
	b := Info{
		Name: spec.Name, Type: spec.Type, KeySize: spec.KeySize,
		ValueSize: spec.ValueSize, MaxEntries: spec.MaxEntries, Flags: spec.Flags,
	}
	switch spec.Type {
	case ebpf.Array, ebpf.PerCPUArray:
		return newArray(b, opts)
	case ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash:
		return newHash(b, opts)
	case ebpf.LPMTrie:
		return newLPMTrie(b, opts)
	case ebpf.ProgramArray:
		return newProgramArray(b, opts)
	case ebpf.RingBuf:
		return newRingBuf(b, opts)
	case ebpf.PerfEventArray:
		return newPerfEventArray(b, opts)
	case ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		return newMapOfMaps(spec, b, opts)
	case ebpf.SockMap, ebpf.SockHash:
		return newSockMap(b, opts)
	}
	return nil, fmt.Errorf("create map %q: map type %s not supported: %w", spec.Name, spec.Type, syscall.EOPNOTSUPP)
}

// base holds what every map type shares: its description and the
// userspace access rules (BPF_F_RDONLY/WRONLY, freezing).
type base struct {
	info   Info
	frozen atomic.Bool
}

func (b *base) Info() Info {
	i := b.info
	i.Frozen = b.frozen.Load()
	return i
}

// Freeze is map_freeze: a frozen or read-only map lacks the write
// permission freezing needs, so a second Freeze fails with EPERM.
func (b *base) Freeze() error {
	if err := b.canWrite("freeze"); err != nil {
		return err
	}
	if !b.frozen.CompareAndSwap(false, true) {
		return fmt.Errorf("map freeze: map is read-only for userspace: %w", syscall.EPERM)
	}
	return nil
}

// canWrite and canRead are map_get_sys_perms: BPF_F_RDONLY or a frozen map
// refuse writes, BPF_F_WRONLY refuses reads, all with EPERM.
func (b *base) canWrite(op string) error {
	if b.info.Flags&FlagRdonly != 0 || b.frozen.Load() {
		return fmt.Errorf("map %s: map is read-only for userspace: %w", op, syscall.EPERM)
	}
	return nil
}

func (b *base) canRead(op string) error {
	if b.info.Flags&FlagWronly != 0 {
		return fmt.Errorf("map %s: map is write-only for userspace: %w", op, syscall.EPERM)
	}
	return nil
}

// checkKey validates the key buffer length (the syscall copies exactly
// key_size bytes; a Go slice of another length is a caller bug).
func (b *base) checkKey(op string, key []byte) error {
	if len(key) != int(b.info.KeySize) {
		return fmt.Errorf("map %s: key is %d bytes, map has %d: %w", op, len(key), b.info.KeySize, syscall.EINVAL)
	}
	return nil
}

func checkBuf(op, what string, buf []byte, want int) error {
	if len(buf) != want {
		return fmt.Errorf("map %s: %s buffer is %d bytes, want %d: %w", op, what, len(buf), want, syscall.EINVAL)
	}
	return nil
}

// userLookup, userUpdate, userDelete and userNextKey are the checks bpf(2)
// makes before it hands a request to the map type, in the kernel's order.
func (b *base) userLookup(op string, key, valueOut []byte, valueSize int) error {
	if err := b.canRead(op); err != nil {
		return err
	}
	if err := b.checkKey(op, key); err != nil {
		return err
	}
	return checkBuf(op, "value", valueOut, valueSize)
}

func (b *base) userUpdate(key, value []byte, valueSize int, flags uint64) error {
	if err := b.canWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return fmt.Errorf("map update: BPF_F_LOCK needs a bpf_spin_lock in the value: %w", syscall.EINVAL)
	}
	if err := b.checkKey("update", key); err != nil {
		return err
	}
	return checkBuf("update", "value", value, valueSize)
}

func (b *base) userDelete(key []byte) error {
	if err := b.canWrite("delete"); err != nil {
		return err
	}
	return b.checkKey("delete", key)
}

func (b *base) userNextKey(key, nextOut []byte) error {
	if err := b.canRead("next key"); err != nil {
		return err
	}
	if key != nil {
		if err := b.checkKey("next key", key); err != nil {
			return err
		}
	}
	return checkBuf("next key", "next key", nextOut, int(b.info.KeySize))
}

func errnoErr(op string, errno syscall.Errno) error {
	return fmt.Errorf("map %s: %w", op, errno)
}

// errnoOf turns a helper's negative Linux errno back into an error for the
// userspace API, which wraps the host's errno of that name.
func errnoOf(op string, ret int64) error {
	if ret == 0 {
		return nil
	}
	return errnoErr(op, linuxerr.Host(int(-ret)))
}

// unsupported implements the bpf(2) commands a map type rejects with
// ENOTSUPP, after the same permission checks the syscall makes first.
type unsupported struct{ *base }

func (u *unsupported) Lookup(key, valueOut []byte) error {
	if err := u.canRead("lookup"); err != nil {
		return err
	}
	return fmt.Errorf("map lookup: not supported by %s maps: %w", u.info.Type, ENOTSUPP)
}

func (u *unsupported) Update(key, value []byte, flags uint64) error {
	if err := u.canWrite("update"); err != nil {
		return err
	}
	return fmt.Errorf("map update: not supported by %s maps: %w", u.info.Type, ENOTSUPP)
}

func (u *unsupported) Delete(key []byte) error {
	if err := u.canWrite("delete"); err != nil {
		return err
	}
	return fmt.Errorf("map delete: not supported by %s maps: %w", u.info.Type, ENOTSUPP)
}

func (u *unsupported) NextKey(key, nextOut []byte) error {
	if err := u.canRead("next key"); err != nil {
		return err
	}
	return fmt.Errorf("map next key: not supported by %s maps: %w", u.info.Type, ENOTSUPP)
}

func (u *unsupported) LookupAndDelete(key, valueOut []byte) error {
	if err := u.canRead("lookup and delete"); err != nil {
		return err
	}
	if err := u.canWrite("lookup and delete"); err != nil {
		return err
	}
	return fmt.Errorf("map lookup and delete: not supported by %s maps: %w", u.info.Type, ENOTSUPP)
}
