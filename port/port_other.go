//go:build !linux

package port

import (
	"fmt"
	"syscall"
)

// OpenTAP needs Linux.
func OpenTAP(name string, opts Options) (Port, error) {
	return nil, fmt.Errorf("open tap:%s: %w", name, syscall.ENOTSUP)
}

// OpenAFPacket needs Linux.
func OpenAFPacket(iface string, opts Options) (Port, error) {
	return nil, fmt.Errorf("open afpacket:%s: %w", iface, syscall.ENOTSUP)
}
