//go:build !linux

package kerneldiff

import (
	"errors"
	"fmt"
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

// PinCPU needs sched_setaffinity, which is Linux-only.
func PinCPU(cpu int) (unpin func(), err error) {
	return nil, fmt.Errorf("pin to CPU %d: sched_setaffinity is Linux-only: %w", cpu, errors.ErrUnsupported)
}

// AllowedCPUs needs sched_getaffinity, which is Linux-only.
func AllowedCPUs() ([]int, error) {
	return nil, fmt.Errorf("sched_getaffinity is Linux-only: %w", errors.ErrUnsupported)
}
