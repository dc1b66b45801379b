//go:build linux && (386 || arm || mipsle)

package kernel

import "unsafe"

// pointer is a __aligned_u64 holding a user address: on 32-bit little-endian
// the address is the low (first) half.
type pointer struct {
	p unsafe.Pointer
	_ uint32
}
