package vm

import (
	"math"
	"math/bits"
	"slices"
)

// CtxPolicy says which context accesses a program type allows: for every byte
// offset, which access sizes (1, 2, 4, 8) may start there, for loads and for
// stores. The field rules belong to the context's owner (the skb layer builds
// one for __sk_buff); the VM only enforces them, at run time, on every
// access through a context address. Atomics on the context always fault, as
// in the kernel.
type CtxPolicy struct {
	read  []uint8 // bit k set: a load of 1<<k bytes may start here
	write []uint8
	// A context image's table of plain accesses (ContextImage) may also
	// hold aliased ones (AllowAlias, AllowStoreBelow): bit k<<4 of read
	// or write at off, and alias[dir][4*off+log2(size)] = src |
	// (64-8*width)<<24 | below<<32, below 0 for an unconditional access.
	alias [2][]uint64
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

// AllowAlias permits a load (or store, if write) of size bytes at off
// that, in a context image (ContextImage), acts on the size bytes at src
// masked to their low width bytes: a load reads them and keeps the low
// width bytes, a store writes the value's low width bytes zero-extended
// to size. It describes the kernel's conversions of loads as wide as a
// narrower sk_buff field (they read the whole field wherever they start)
// and of stores that keep fewer bits than they write. Anything out of
// range (src+size past the end, width not 1, 2, 4, 8 or wider than size)
// is ignored.
func (p *CtxPolicy) AllowAlias(off, size int, write bool, src, width int) {
	p.allowAlias(off, size, write, src, width, 0)
}

// AllowStoreBelow permits a store of size bytes at off that, in a context
// image, does what AllowAlias(off, size, true, src, width) describes when
// the whole source value (register, or sign-extended immediate) is below
// below, and changes nothing otherwise: the kernel's queue_mapping store,
// dropped from NO_QUEUE_MAPPING up. below must be 1 to 1<<32-1; anything
// out of range is ignored as AllowAlias ignores it.
func (p *CtxPolicy) AllowStoreBelow(off, size, src, width int, below uint64) {
	if below == 0 || below > math.MaxUint32 {
		return
	}
	p.allowAlias(off, size, true, src, width, below)
}

func (p *CtxPolicy) allowAlias(off, size int, write bool, src, width int, below uint64) {
	k, wk := sizeBit(size), sizeBit(width)
	if k == 0 || wk == 0 || width > size || off < 0 || src < 0 || off+size > len(p.read) ||
		src+size > len(p.read) || src >= 1<<24 {
		return
	}
	if src == off && width == size && below == 0 {
		p.Allow(off, size, write)
		return
	}
	dir, t := 0, p.read
	if write {
		dir, t = 1, p.write
	}
	if p.alias[dir] == nil {
		p.alias[dir] = make([]uint64, 4*len(p.read))
	}
	p.alias[dir][4*off+bits.TrailingZeros8(k)] = uint64(src) | uint64(64-8*width)<<24 | below<<32
	t[off] |= k << 4
}

// image reports how a context image performs an access the table allows:
// on size bytes at src, keeping the bits of mask; a store of a value of
// below or more (below != 0) changes nothing.
func (p *CtxPolicy) image(off, size int, write bool) (src int, mask, below uint64, ok bool) {
	k := sizeBit(size)
	if k == 0 || off < 0 || off+size > len(p.read) {
		return 0, 0, 0, false
	}
	dir, t := 0, p.read
	if write {
		dir, t = 1, p.write
	}
	switch {
	case t[off]&k != 0:
		return off, math.MaxUint64, 0, true
	case t[off]&(k<<4) != 0:
		a := p.alias[dir][4*off+bits.TrailingZeros8(k)]
		return int(a & (1<<24 - 1)), math.MaxUint64 >> (a >> 24 & 0xff), a >> 32, true
	}
	return 0, 0, 0, false
}

// Allows reports whether the policy permits the access.
func (p *CtxPolicy) Allows(off, size int, write bool) bool {
	k := sizeBit(size)
	if k == 0 || off < 0 || off+size > len(p.read) {
		return false
	}
	if write {
		return p.write[off]&(k|k<<4) != 0
	}
	return p.read[off]&(k|k<<4) != 0
}

func (p *CtxPolicy) clone() *CtxPolicy {
	if p == nil {
		return nil
	}
	return &CtxPolicy{read: slices.Clone(p.read), write: slices.Clone(p.write),
		alias: [2][]uint64{slices.Clone(p.alias[0]), slices.Clone(p.alias[1])}}
}

// maxSharedPolicies bounds AddressSpace.policies: past it, a program
// gets its own copy, which costs only the republishing below.
const maxSharedPolicies = 32

// sharedPolicy returns a copy of p that programs of the space whose
// policies have the same content share. A tail call between two programs
// with the same policy pointer keeps the context window compiled code
// was given (Machine.setPolicyFor republishes it when the pointer
// changes). Programs never change their policy, so sharing is safe.
func (as *AddressSpace) sharedPolicy(p *CtxPolicy) *CtxPolicy {
	if p == nil {
		return nil
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	for _, q := range as.policies {
		if q.equal(p) {
			return q
		}
	}
	q := p.clone()
	if len(as.policies) < maxSharedPolicies {
		as.policies = append(as.policies, q)
	}
	return q
}

// equal reports whether p and q allow the same accesses the same way.
func (p *CtxPolicy) equal(q *CtxPolicy) bool {
	return slices.Equal(p.read, q.read) && slices.Equal(p.write, q.write) &&
		slices.Equal(p.alias[0], q.alias[0]) && slices.Equal(p.alias[1], q.alias[1])
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

// CtxImageFunc builds the table a ContextImage hands the VM: for every
// offset, size and direction, rule says whether the access is done on the
// image and how (see AllowAlias and, for a store with below != 0,
// AllowStoreBelow; src == off and width == size is a plain access).
func CtxImageFunc(size int, rule func(off, size int, write bool) (src, width int, below uint64, ok bool)) *CtxPolicy {
	p := NewCtxPolicy(size)
	for off := range size {
		for _, n := range []int{1, 2, 4, 8} {
			for _, write := range []bool{false, true} {
				if off+n > size {
					continue
				}
				switch src, width, below, ok := rule(off, n, write); {
				case !ok:
				case below != 0 && write:
					p.AllowStoreBelow(off, n, src, width, below)
				case below == 0:
					p.AllowAlias(off, n, write, src, width)
				}
			}
		}
	}
	return p
}
