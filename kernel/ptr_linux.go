//go:build linux && !mips

package kernel

import "unsafe"

// pointer is a __aligned_u64 holding a user address. It is an unsafe.Pointer
// (not a uintptr) so the garbage collector keeps the buffer alive and in place
// while the kernel writes to it.
type pointer struct {
	p unsafe.Pointer
	_ [8 - unsafe.Sizeof(unsafe.Pointer(nil))]byte
}
