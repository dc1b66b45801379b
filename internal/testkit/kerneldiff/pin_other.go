//go:build !linux

package kerneldiff

import (
	"testing"

	"github.com/tcxgo/tcx/kernel"
)

// PinCPU0 is reached only after kerneltest.RequireKernel, which needs Linux.
func PinCPU0(t testing.TB) {
	t.Skip("pinning to CPU 0: sched_setaffinity is Linux-only")
}

// PinNSCPU0 is reached only after kerneltest.RequireKernel, which needs Linux.
func PinNSCPU0(t testing.TB, ns *kernel.NetNS) {
	t.Skip("pinning to CPU 0: sched_setaffinity is Linux-only")
}
