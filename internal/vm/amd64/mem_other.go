//go:build !(linux && amd64)

package amd64

import (
	"fmt"
	"syscall"
)

// Supported reports whether machine code can be mapped and run here.
const Supported = false

// Code is machine code mapped read+execute; never on this platform.
type Code struct{}

// Map fails: compiled code runs only on linux/amd64.
func Map(code []byte) (*Code, error) {
	return nil, fmt.Errorf("map code: not supported on this platform: %w", syscall.ENOTSUP)
}

// Addr is 0.
func (c *Code) Addr() uintptr { return 0 }

// Len is 0.
func (c *Code) Len() int { return 0 }

// Enter panics: there is no code to enter.
func (c *Code) Enter(entry, state uintptr) { panic("amd64: no compiled code on this platform") }
