package amd64

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Supported reports whether machine code can be mapped and run here.
const Supported = true

// Code is machine code mapped read+execute. The memory is never writable
// and executable at once: it is filled while read+write, then sealed with
// mprotect before its address is handed out.
type Code struct {
	mem []byte
}

// Map copies code into fresh pages and seals them read+execute. The pages
// are unmapped when the returned Code becomes unreachable.
func Map(code []byte) (*Code, error) {
	if len(code) == 0 {
		return nil, fmt.Errorf("map code: empty: %w", unix.EINVAL)
	}
	page := unix.Getpagesize()
	size := (len(code) + page - 1) / page * page
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("map code: mmap: %w", err)
	}
	copy(mem, code)
	// The tail of the last page is int3, so a stray jump past the end traps.
	for i := len(code); i < len(mem); i++ {
		mem[i] = 0xcc
	}
	if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_EXEC); err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("map code: mprotect: %w", err)
	}
	c := &Code{mem: mem}
	runtime.AddCleanup(c, func(mem []byte) { _ = unix.Munmap(mem) }, mem)
	return c, nil
}

// Addr is the address of the first byte of the code.
func (c *Code) Addr() uintptr { return uintptr(unsafePointer(c.mem)) }

// Len is the size of the code in bytes (rounded up to pages).
func (c *Code) Len() int { return len(c.mem) }

// Enter calls the code at entry with r12 = state and returns when it
// executes RET. The code may clobber every general-purpose register except
// rsp; it must not touch the stack below the return address by more than
// 64 bytes, must not call into Go, and must not hold Go pointers beyond its
// return (the caller keeps state and everything it points to alive). It
// may call its own routines, using a few more bytes of the stack.
func (c *Code) Enter(entry uintptr, state uintptr) {
	enter(entry, state)
	runtime.KeepAlive(c)
}

//go:noescape
func enter(entry, state uintptr)
