package maps

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// pcpuMinUnitSize is PCPU_MIN_UNIT_SIZE, the largest percpu value.
const pcpuMinUnitSize = 32 << 10

// Array is BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY. Global data
// sections (.data, .rodata, .bss, .kconfig) are arrays with one entry; a VM
// resolves BPF_PSEUDO_MAP_VALUE to slot 0 of Slots(0). Every element exists
// from creation on, zeroed; elements can be overwritten but never deleted.
type Array struct {
	base
	n      uint32
	vsize  int
	stride int
	mem    []wordBuf // one per CPU for percpu arrays, else one
	// kptrs are the value offsets of __kptr fields (kptr.go).
	kptrs   []uint32
	release func(ptr uint64)
}

var _ SlotMap = (*Array)(nil)

// checkArrayAttrs is array_map_alloc_check, shared by every array-shaped map.
func checkArrayAttrs(i Info, percpu bool) error {
	const mask = FlagNumaNode | FlagMmapable | flagAccessMask | FlagPreserveElem | FlagInnerMap
	invalid := func(why string) error {
		return fmt.Errorf("create map %q: %s: %w", i.Name, why, syscall.EINVAL)
	}
	switch {
	case i.MaxEntries == 0:
		return invalid("max_entries is 0")
	case i.KeySize != 4:
		return invalid(fmt.Sprintf("key size %d, arrays need 4", i.KeySize))
	case i.ValueSize == 0:
		return invalid("value size is 0")
	case i.Flags&^mask != 0:
		return invalid(fmt.Sprintf("flags %#x", i.Flags))
	case percpu && i.Flags&FlagNumaNode != 0:
		return invalid("percpu maps have no NUMA node")
	case i.Type != ebpf.Array && i.Flags&(FlagMmapable|FlagInnerMap) != 0:
		return invalid("BPF_F_MMAPABLE and BPF_F_INNER_MAP are for arrays only")
	case i.Type != ebpf.PerfEventArray && i.Flags&FlagPreserveElem != 0:
		return invalid("BPF_F_PRESERVE_ELEMS is for perf event arrays only")
	}
	if i.ValueSize > 1<<31-1 {
		return fmt.Errorf("create map %q: value size %d: %w", i.Name, i.ValueSize, syscall.E2BIG)
	}
	if percpu && roundUp8(int(i.ValueSize)) > pcpuMinUnitSize {
		return fmt.Errorf("create map %q: percpu value size %d exceeds %d: %w", i.Name, i.ValueSize, pcpuMinUnitSize, syscall.E2BIG)
	}
	return nil
}

// checkMemory refuses a preallocation above the configured limit.
func checkMemory(i Info, opts Options, bytes int64) error {
	if bytes < 0 || bytes > opts.memoryLimit() {
		return fmt.Errorf("create map %q: %d bytes exceed the memory limit %d: %w", i.Name, bytes, opts.memoryLimit(), syscall.ENOMEM)
	}
	return nil
}

func newArray(i Info, opts Options) (*Array, error) {
	percpu := i.Type == ebpf.PerCPUArray
	if err := checkArrayAttrs(i, percpu); err != nil {
		return nil, err
	}
	ncpu := 1
	if percpu {
		ncpu = opts.numCPU()
	}
	a := &Array{base: base{info: i}, n: i.MaxEntries, vsize: int(i.ValueSize), stride: roundUp8(int(i.ValueSize))}
	if err := checkMemory(i, opts, int64(a.n)*int64(a.stride)*int64(ncpu)); err != nil {
		return nil, err
	}
	a.mem = make([]wordBuf, ncpu)
	for c := range a.mem {
		a.mem[c] = newWordBuf(int(a.n) * a.stride)
	}
	return a, nil
}

func (a *Array) ValueSize() int { return a.vsize }
func (a *Array) Stride() int    { return a.stride }
func (a *Array) NumCPU() int    { return len(a.mem) }

// Slots returns cpu's value memory (nil for a CPU the map does not have).
func (a *Array) Slots(cpu int) []byte {
	if uint(cpu) >= uint(len(a.mem)) {
		if len(a.mem) == 1 {
			return a.mem[0].b
		}
		return nil
	}
	return a.mem[cpu].b
}

func (a *Array) slotWords(cpu int, idx uint32) []uint64 {
	w := a.stride / 8
	return a.mem[cpu].w[int(idx)*w : int(idx+1)*w]
}

func (a *Array) percpu() bool { return a.info.Type == ebpf.PerCPUArray }

// userValueSize is bpf_map_value_size: what one syscall value buffer holds.
func (a *Array) userValueSize() int {
	if a.percpu() {
		return len(a.mem) * a.stride
	}
	return a.vsize
}

func (a *Array) LookupSlot(key []byte, cpu int) (int, bool) {
	if len(key) < 4 {
		return 0, false
	}
	idx := binary.NativeEndian.Uint32(key)
	if idx >= a.n {
		return 0, false
	}
	return int(idx), true
}

func (a *Array) UpdateElem(key, value []byte, flags uint64, cpu int) int64 {
	if a.info.Flags&FlagRdonlyProg != 0 {
		return -linuxerr.EACCES
	}
	if len(key) < 4 || len(value) < a.vsize {
		return -linuxerr.EINVAL
	}
	if a.percpu() && uint(cpu) >= uint(len(a.mem)) {
		return -linuxerr.EINVAL
	}
	if ret := a.checkUpdate(key, flags); ret != 0 {
		return ret
	}
	c := 0
	if a.percpu() {
		c = cpu
	}
	w := a.slotWords(c, binary.NativeEndian.Uint32(key))
	a.storeValue(w, value[:a.vsize])
	return 0
}

// checkUpdate is array_map_update_elem's checks, in the kernel's order.
func (a *Array) checkUpdate(key []byte, flags uint64) int64 {
	if flags > UpdateExist {
		return -linuxerr.EINVAL
	}
	if binary.NativeEndian.Uint32(key) >= a.n {
		return -linuxerr.E2BIG
	}
	if flags == UpdateNoExist {
		return -linuxerr.EEXIST
	}
	return 0
}

func (a *Array) DeleteElem(key []byte, cpu int) int64 { return -linuxerr.EINVAL }

func (a *Array) Lookup(key, valueOut []byte) error {
	if err := a.userLookup("lookup", key, valueOut, a.userValueSize()); err != nil {
		return err
	}
	idx := binary.NativeEndian.Uint32(key)
	if idx >= a.n {
		return errnoErr("lookup", syscall.ENOENT)
	}
	if !a.percpu() {
		loadWords(valueOut, a.slotWords(0, idx))
		a.hideKptrs(valueOut)
		return nil
	}
	for c := range a.mem {
		loadWords(valueOut[c*a.stride:(c+1)*a.stride], a.slotWords(c, idx))
		a.hideKptrs(valueOut[c*a.stride:])
	}
	return nil
}

func (a *Array) Update(key, value []byte, flags uint64) error {
	if err := a.userUpdate(key, value, a.userValueSize(), flags); err != nil {
		return err
	}
	if err := errnoOf("update", a.checkUpdate(key, flags)); err != nil {
		return err
	}
	idx := binary.NativeEndian.Uint32(key)
	if !a.percpu() {
		a.storeValue(a.slotWords(0, idx), value)
		return nil
	}
	for c := range a.mem {
		a.storeValue(a.slotWords(c, idx), value[c*a.stride:(c+1)*a.stride])
	}
	return nil
}

func (a *Array) Delete(key []byte) error {
	if err := a.userDelete(key); err != nil {
		return err
	}
	return fmt.Errorf("map delete: array elements cannot be deleted: %w", syscall.EINVAL)
}

func (a *Array) NextKey(key, nextOut []byte) error {
	return arrayNextKey(&a.base, a.n, key, nextOut)
}

// arrayNextKey is bpf_array_get_next_key: index+1, 0 for nil or out of range
// keys, ENOENT after the last index.
func arrayNextKey(b *base, n uint32, key, nextOut []byte) error {
	if err := b.userNextKey(key, nextOut); err != nil {
		return err
	}
	idx := uint32(1<<32 - 1)
	if key != nil {
		idx = binary.NativeEndian.Uint32(key)
	}
	switch {
	case idx >= n:
		binary.NativeEndian.PutUint32(nextOut, 0)
	case idx == n-1:
		return errnoErr("next key", syscall.ENOENT)
	default:
		binary.NativeEndian.PutUint32(nextOut, idx+1)
	}
	return nil
}

func (a *Array) LookupAndDelete(key, valueOut []byte) error {
	return (&unsupported{&a.base}).LookupAndDelete(key, valueOut)
}
