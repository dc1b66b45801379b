package skb

import (
	"encoding/binary"
	"math/bits"
)

// Checksum arithmetic as include/net/checksum.h and arch/x86 do it. A __wsum is
// the 32-bit ones' complement sum of memory read as little-endian words, which
// is what the kernel computes on x86-64; a __sum16/__be16/__be32 argument is
// the value a program loaded natively (little-endian) from packet memory.

// csumAdd is csum_add: 32-bit addition with end-around carry.
func csumAdd(a, b uint32) uint32 {
	r := a + b
	if r < b {
		r++
	}
	return r
}

// csumSub is csum_sub.
func csumSub(a, b uint32) uint32 { return csumAdd(a, ^b) }

// csumFold is csum_fold: fold to 16 bits and complement.
func csumFold(sum uint32) uint16 {
	return ^from32to16(sum)
}

// from32to16 folds a 32-bit sum to 16 bits without complementing.
func from32to16(x uint32) uint16 {
	x = x&0xffff + x>>16
	x = x&0xffff + x>>16
	return uint16(x)
}

// csum16Add is csum16_add: 16-bit addition with end-around carry.
func csum16Add(csum, addend uint16) uint16 {
	r := csum + addend
	if r < addend {
		r++
	}
	return r
}

// csum16Sub is csum16_sub.
func csum16Sub(csum, addend uint16) uint16 { return csum16Add(csum, ^addend) }

// csumPartial is csum_partial for a buffer whose first byte sits at an even
// address: the ones' complement sum of b as little-endian words added to sum.
func csumPartial(b []byte, sum uint32) uint32 {
	acc := uint64(sum)
	var c uint64
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), 0)
		acc += c
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b)), 0)
		acc += c
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b)), 0)
		acc += c
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0]), 0)
		acc += c
	}
	return csumAdd(uint32(acc>>32), uint32(acc))
}

// csumBlockAdd is csum_block_add: a partial sum taken at an odd offset is
// byte-rotated before it is added.
func csumBlockAdd(csum, csum2 uint32, offset int) uint32 {
	if offset&1 != 0 {
		csum2 = bits.RotateLeft32(csum2, -8)
	}
	return csumAdd(csum, csum2)
}

// csumBlockSub is csum_block_sub.
func csumBlockSub(csum, csum2 uint32, offset int) uint32 {
	return csumBlockAdd(csum, ^csum2, offset)
}

// csumReplaceByDiff is csum_replace_by_diff.
func csumReplaceByDiff(sum uint16, diff uint32) uint16 {
	return csumFold(csumAdd(diff, ^uint32(sum)))
}

// csumReplace2 is csum_replace2, done in 16-bit arithmetic.
func csumReplace2(sum, old, new uint16) uint16 {
	return ^csum16Add(csum16Sub(^sum, old), new)
}

// csumReplace4 is csum_replace4.
func csumReplace4(sum uint16, from, to uint32) uint16 {
	tmp := csumSub(^uint32(sum), from)
	return csumFold(csumAdd(tmp, to))
}

// CsumDiff mirrors bpf_csum_diff (net/core/filter.c, Linux 6.13 and later):
// the checksum difference of replacing from with to, seeded with seed and
// folded to 16 bits (not complemented). Since 6.13 the kernel no longer
// rejects sizes that are not multiples of four, so neither does CsumDiff; the
// verifier bounds the sizes. It never fails.
func CsumDiff(from, to []byte, seed uint32) int64 {
	ret := seed
	switch {
	case len(from) > 0 && len(to) > 0:
		ret = csumSub(csumPartial(to, ret), csumPartial(from, 0))
	case len(to) > 0:
		ret = csumPartial(to, ret)
	case len(from) > 0:
		ret = ^csumPartial(from, ^ret)
	}
	return int64(from32to16(ret))
}

// Checksum returns the Internet checksum (RFC 1071) of b: the complemented
// ones' complement sum, as the 16-bit value to store big-endian in a header.
func Checksum(b []byte) uint16 {
	s := csumFold(csumPartial(b, 0))
	return s<<8 | s>>8
}
