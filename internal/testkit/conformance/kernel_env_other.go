//go:build !linux

package conformance

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// NewKernelEnv needs Linux: tcx is a Linux kernel feature.
func NewKernelEnv() (Env, error) {
	return nil, fmt.Errorf("kernel env: %w (tcx needs Linux)", unix.ENOTSUP)
}
