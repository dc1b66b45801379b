//go:build linux && !(386 || arm || mips || mipsle)

package kernel

import "unsafe"

// pointer is a __aligned_u64 holding a user address. It is an unsafe.Pointer
// (not a uintptr) so the garbage collector keeps the buffer alive and in place
// while the kernel writes to it.
type pointer struct {
	p unsafe.Pointer
}
