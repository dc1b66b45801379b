package vm

import "math/bits"

// CtxPolicy says which context accesses a program type allows: for every byte
// offset, which access sizes (1, 2, 4, 8) may start there, for loads and for
// stores. The field rules belong to the context's owner (the skb layer builds
// one for __sk_buff); the VM only enforces them, at run time, on every
// access through a context address. Atomics on the context always fault, as
// in the kernel.
type CtxPolicy struct {
	read  []uint8 // bit k set: a load of 1<<k bytes may start here
	write []uint8
}

// NewCtxPolicy returns a policy for a context of size bytes that allows nothing.
func NewCtxPolicy(size int) *CtxPolicy {
	return &CtxPolicy{read: make([]uint8, size), write: make([]uint8, size)}
}

// Size is the context size the policy covers.
func (p *CtxPolicy) Size() int { return len(p.read) }

// Allow permits a load (or store, if write) of size bytes at off. Out of range
// offsets and sizes other than 1, 2, 4 and 8 are ignored.
func (p *CtxPolicy) Allow(off, size int, write bool) {
	k := sizeBit(size)
	if k == 0 || off < 0 || off+size > len(p.read) {
		return
	}
	if write {
		p.write[off] |= k
	} else {
		p.read[off] |= k
	}
}

// AllowField permits full-width access to the field of fieldSize bytes at off
// and, if narrow, every naturally aligned smaller access inside it (the
// kernel's bpf_ctx_narrow_access_ok).
func (p *CtxPolicy) AllowField(off, fieldSize int, write, narrow bool) {
	p.Allow(off, fieldSize, write)
	if !narrow {
		return
	}
	for size := 1; size < fieldSize; size <<= 1 {
		for o := off; o+size <= off+fieldSize; o += size {
			p.Allow(o, size, write)
		}
	}
}

// Allows reports whether the policy permits the access.
func (p *CtxPolicy) Allows(off, size int, write bool) bool {
	k := sizeBit(size)
	if k == 0 || off < 0 || off+size > len(p.read) {
		return false
	}
	if write {
		return p.write[off]&k != 0
	}
	return p.read[off]&k != 0
}

func (p *CtxPolicy) clone() *CtxPolicy {
	if p == nil {
		return nil
	}
	return &CtxPolicy{read: append([]uint8(nil), p.read...), write: append([]uint8(nil), p.write...)}
}

// sizeBit maps 1, 2, 4, 8 to the bits 1, 2, 4, 8 and anything else to 0.
func sizeBit(size int) uint8 {
	if size <= 0 || size > 8 || size&(size-1) != 0 {
		return 0
	}
	return uint8(1) << bits.TrailingZeros(uint(size))
}

// CtxPolicyFunc builds the policy of a context of size bytes from a rule
// such as skb.CtxAccess, evaluated once per offset, size and direction.
func CtxPolicyFunc(size int, allow func(off, size int, write bool) bool) *CtxPolicy {
	p := NewCtxPolicy(size)
	for off := range size {
		for _, n := range []int{1, 2, 4, 8} {
			for _, write := range []bool{false, true} {
				if off+n <= size && allow(off, n, write) {
					p.Allow(off, n, write)
				}
			}
		}
	}
	return p
}
