//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package vm

import (
	"sync/atomic"
)

// Atomics on program memory. The emulated machine is little-endian, like
// the host here, so Go's atomics apply to the bytes directly.

// rmw32 applies the atomic ALU op a (BPF_ADD, OR, AND, XOR; 0xe0 = xchg)
// and returns the old value.
func rmw32(p *uint32, a uint64, v uint32) uint32 {
	switch a {
	case 0x00:
		return atomic.AddUint32(p, v) - v
	case 0x40:
		return atomic.OrUint32(p, v)
	case 0x50:
		return atomic.AndUint32(p, v)
	case 0xa0:
		for {
			old := atomic.LoadUint32(p)
			if atomic.CompareAndSwapUint32(p, old, old^v) {
				return old
			}
		}
	default: // xchg
		return atomic.SwapUint32(p, v)
	}
}

func rmw64(p *uint64, a uint64, v uint64) uint64 {
	switch a {
	case 0x00:
		return atomic.AddUint64(p, v) - v
	case 0x40:
		return atomic.OrUint64(p, v)
	case 0x50:
		return atomic.AndUint64(p, v)
	case 0xa0:
		for {
			old := atomic.LoadUint64(p)
			if atomic.CompareAndSwapUint64(p, old, old^v) {
				return old
			}
		}
	default:
		return atomic.SwapUint64(p, v)
	}
}

// cas32 stores v if *p == expected and returns the old value either way.
func cas32(p *uint32, expected, v uint32) uint32 {
	for {
		old := atomic.LoadUint32(p)
		if old != expected || atomic.CompareAndSwapUint32(p, old, v) {
			return old
		}
	}
}

func cas64(p *uint64, expected, v uint64) uint64 {
	for {
		old := atomic.LoadUint64(p)
		if old != expected || atomic.CompareAndSwapUint64(p, old, v) {
			return old
		}
	}
}
