package maps

import (
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
)

// Referenced kernel pointers (__kptr fields) in array values. A program
// stores an object it holds a reference to with bpf_kptr_xchg; the map
// then owns that reference. As in the kernel (bpf_obj_memcpy and
// bpf_obj_free_fields), userspace reads the field as zero, an update
// (from userspace or a program) leaves it zero and drops the reference it
// held, and destroying the map drops every reference left.

// SetKptrs declares the value offsets of the array's kptr fields (8-byte
// aligned, within the value) and how to drop the reference one holds.
// Call it once, before the map is used.
func (a *Array) SetKptrs(offs []uint32, release func(ptr uint64)) error {
	for _, off := range offs {
		if off%8 != 0 || int(off)+8 > a.vsize {
			return fmt.Errorf("map %q: kptr at offset %d of a %d-byte value: %w", a.info.Name, off, a.vsize, syscall.EINVAL)
		}
	}
	if release == nil && len(offs) > 0 {
		return fmt.Errorf("map %q: kptrs without a release function: %w", a.info.Name, syscall.EINVAL)
	}
	a.kptrs, a.release = slices.Clone(offs), release
	slices.Sort(a.kptrs)
	for i := 1; i < len(a.kptrs); i++ {
		if a.kptrs[i]-a.kptrs[i-1] < 8 {
			return fmt.Errorf("map %q: kptrs at offsets %d and %d overlap: %w", a.info.Name, a.kptrs[i-1], a.kptrs[i], syscall.EINVAL)
		}
	}
	return nil
}

// storeValue is copy_map_value followed by bpf_obj_free_fields: v's bytes
// but the kptr fields, then each kptr cleared and its reference dropped.
func (a *Array) storeValue(w []uint64, v []byte) {
	lo := 0
	for _, off := range a.kptrs {
		storeWords(w[lo/8:], v[lo:off])
		lo = int(off) + 8
	}
	storeWords(w[lo/8:], v[lo:])
	a.freeKptrs(w)
}

// freeKptrs is bpf_obj_free_fields for the kptrs of one value: each is
// cleared and the reference it held dropped.
func (a *Array) freeKptrs(w []uint64) {
	for _, off := range a.kptrs {
		if old := atomic.SwapUint64(&w[off/8], 0); old != 0 {
			a.release(old)
		}
	}
}

// hideKptrs zeroes the kptr fields of a value copied out to userspace.
func (a *Array) hideKptrs(v []byte) {
	for _, off := range a.kptrs {
		clear(v[off : off+8])
	}
}

// FreeKptrs drops every reference the array's values hold, as the kernel
// does when the map is destroyed.
func (a *Array) FreeKptrs() {
	if len(a.kptrs) == 0 {
		return
	}
	for c := range a.mem {
		for i := range a.n {
			a.freeKptrs(a.slotWords(c, i))
		}
	}
}
