//go:build linux && mips

package kernel

import "unsafe"

// pointer is a __aligned_u64 holding a user address: on 32-bit big-endian
// the address is the low (second) half.
type pointer struct {
	_ uint32
	p unsafe.Pointer
}
