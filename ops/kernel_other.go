//go:build !linux

package ops

import (
	"fmt"
	"syscall"
)

// Config says where a kernel Host works (see the Linux build).
type Config struct {
	NetNS, BPFFS, MapPinDir, StateDir string
	SetVariables                      SetVariables
}

// OpenKernel fails off Linux: tcx is a Linux kernel facility.
func OpenKernel(cfg Config) (Host, error) {
	return nil, fmt.Errorf("open kernel host: %w (tcx needs Linux)", syscall.ENOTSUP)
}
