package maps

import (
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
)

// MapOfMaps is BPF_MAP_TYPE_ARRAY_OF_MAPS or BPF_MAP_TYPE_HASH_OF_MAPS: its
// values are maps, which programs look up and then use as maps. Userspace
// puts maps in with Set (the kernel takes map fds, which a map here does
// not have); Lookup reports the inner map's number (its ID, for the
// kernel), Update with raw bytes is refused. The keys live in an index map
// (an Array or a Hash of 4-byte values), so lookups from programs, deletes
// and key iteration follow that map type exactly.
type MapOfMaps struct {
	base
	index SlotMap
	inner *ebpf.MapSpec // the template every inner map must match

	mu   sync.RWMutex
	maps []Map // by number - 1; the index holds numbers
}

func newMapOfMaps(spec *ebpf.MapSpec, i Info, opts Options) (*MapOfMaps, error) {
	if spec.InnerMap == nil {
		return nil, fmt.Errorf("create map %q: map of maps without an inner map: %w", i.Name, syscall.EINVAL)
	}
	if i.ValueSize != 4 {
		return nil, fmt.Errorf("create map %q: value size %d, a map of maps holds 4-byte map ids: %w", i.Name, i.ValueSize, syscall.EINVAL)
	}
	ii := i
	ii.Type = ebpf.Array
	if i.Type == ebpf.HashOfMaps {
		ii.Type = ebpf.Hash
	}
	var index Map
	var err error
	if ii.Type == ebpf.Array {
		index, err = newArray(ii, opts)
	} else {
		index, err = newHash(ii, opts)
	}
	if err != nil {
		return nil, err
	}
	return &MapOfMaps{base: base{info: i}, index: index.(SlotMap), inner: spec.InnerMap}, nil
}

// Set puts m under key (BPF_MAP_UPDATE_ELEM with m's fd). m must match the
// inner map template's type, key size, value size and flags (else
// EINVAL), as the kernel requires.
func (o *MapOfMaps) Set(key []byte, m Map, flags uint64) error {
	if err := o.canWrite("update"); err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("map update: nil inner map: %w", syscall.EINVAL)
	}
	mi := m.Info()
	if mi.Type != o.inner.Type || mi.KeySize != o.inner.KeySize || mi.ValueSize != o.inner.ValueSize || mi.Flags != o.inner.Flags {
		return fmt.Errorf("map update: inner map %s key %d value %d flags %#x does not match the template %s key %d value %d flags %#x: %w",
			mi.Type, mi.KeySize, mi.ValueSize, mi.Flags, o.inner.Type, o.inner.KeySize, o.inner.ValueSize, o.inner.Flags, syscall.EINVAL)
	}
	o.mu.Lock()
	n := 0
	for i, have := range o.maps {
		if have == m {
			n = i + 1
		}
	}
	if n == 0 {
		o.maps = append(o.maps, m)
		n = len(o.maps)
	}
	o.mu.Unlock()
	return o.index.Update(key, binary.LittleEndian.AppendUint32(nil, uint32(n)), flags)
}

// Get returns the map under key, as a program's lookup does.
func (o *MapOfMaps) Get(key []byte) (Map, bool) {
	slot, ok := o.index.LookupSlot(key, 0)
	if !ok {
		return nil, false
	}
	return o.MapAt(slot), true
}

// LookupSlot is a program's bpf_map_lookup_elem: the slot whose inner map
// MapAt returns.
func (o *MapOfMaps) LookupSlot(key []byte) (int, bool) { return o.index.LookupSlot(key, 0) }

// MapAt is the inner map in slot (from LookupSlot), nil for an empty one.
func (o *MapOfMaps) MapAt(slot int) Map {
	b := o.index.Slots(0)[slot*o.index.Stride():]
	n := binary.LittleEndian.Uint32(b)
	o.mu.RLock()
	defer o.mu.RUnlock()
	if n == 0 || int(n) > len(o.maps) {
		return nil
	}
	return o.maps[n-1]
}

// Lookup reports the inner map's number, 0 for an empty array slot.
func (o *MapOfMaps) Lookup(key, valueOut []byte) error { return o.index.Lookup(key, valueOut) }

// Update with raw bytes is refused: a map fd means nothing here; use Set.
func (o *MapOfMaps) Update(key, value []byte, flags uint64) error {
	return fmt.Errorf("map update: a map of maps takes maps (MapOfMaps.Set), not fds: %w", syscall.EINVAL)
}

func (o *MapOfMaps) Delete(key []byte) error               { return o.index.Delete(key) }
func (o *MapOfMaps) NextKey(key, nextOut []byte) error     { return o.index.NextKey(key, nextOut) }
func (o *MapOfMaps) LookupAndDelete(key, out []byte) error { return o.index.LookupAndDelete(key, out) }
