//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package vm

import (
	"math/bits"
	"sync/atomic"
)

// On a big-endian host program memory still holds little-endian values, so
// every atomic is a compare-and-swap loop on byte-swapped words.

func rmw32(p *uint32, a uint64, v uint32) uint32 {
	for {
		raw := atomic.LoadUint32(p)
		old := bits.ReverseBytes32(raw)
		if atomic.CompareAndSwapUint32(p, raw, bits.ReverseBytes32(uint32(aluRMW64(a, uint64(old), uint64(v))))) {
			return old
		}
	}
}

func rmw64(p *uint64, a uint64, v uint64) uint64 {
	for {
		raw := atomic.LoadUint64(p)
		old := bits.ReverseBytes64(raw)
		if atomic.CompareAndSwapUint64(p, raw, bits.ReverseBytes64(aluRMW64(a, old, v))) {
			return old
		}
	}
}

func cas32(p *uint32, expected, v uint32) uint32 {
	for {
		raw := atomic.LoadUint32(p)
		old := bits.ReverseBytes32(raw)
		if old != expected || atomic.CompareAndSwapUint32(p, raw, bits.ReverseBytes32(v)) {
			return old
		}
	}
}

func cas64(p *uint64, expected, v uint64) uint64 {
	for {
		raw := atomic.LoadUint64(p)
		old := bits.ReverseBytes64(raw)
		if old != expected || atomic.CompareAndSwapUint64(p, raw, bits.ReverseBytes64(v)) {
			return old
		}
	}
}

// aluRMW64 is the new value of the atomic op a (the atomic immediate
// without BPF_FETCH; 0xe0 is xchg).
func aluRMW64(a uint64, x, v uint64) uint64 {
	switch a {
	case 0x00:
		return x + v
	case 0x40:
		return x | v
	case 0x50:
		return x & v
	case 0xa0:
		return x ^ v
	default:
		return v
	}
}
