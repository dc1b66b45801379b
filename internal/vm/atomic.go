package vm

import "unsafe"

// The only unsafe code of the package: atomics on program memory need the
// words behind byte slices that access has already bounds-checked.

// aligned reports whether b starts at a host address aligned to n.
func aligned(b []byte, n uint32) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))&uintptr(n-1) == 0
}

func word32(b []byte) *uint32 { return (*uint32)(unsafe.Pointer(unsafe.SliceData(b[:4]))) }
func word64(b []byte) *uint64 { return (*uint64)(unsafe.Pointer(unsafe.SliceData(b[:8]))) }
