//go:build !linux

package kerneldiff_test

import "testing"

// pinCPU0 is reached only after kerneltest.RequireKernel, which needs Linux.
func pinCPU0(t *testing.T) {
	t.Skip("pinning to CPU 0: sched_setaffinity is Linux-only")
}
