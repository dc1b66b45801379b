//go:build !linux

package kerneldiff

import "testing"

// PinCPU0 is reached only after kerneltest.RequireKernel, which needs Linux.
func PinCPU0(t testing.TB) {
	t.Skip("pinning to CPU 0: sched_setaffinity is Linux-only")
}
