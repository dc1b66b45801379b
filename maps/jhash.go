package maps

import (
	"encoding/binary"
	"math/bits"
)

// The kernel's jhash (include/linux/jhash.h), which htab_map_hash applies
// to a key: jhash2 over 32-bit words when the key size is a multiple of
// four, else jhash over its bytes. With BPF_F_ZERO_SEED the seed is 0 and
// the hash, hence a map's bucket order, is the same on every load.

const jhashInitval = 0xdeadbeef

func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func jhashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// htabHash is htab_map_hash(key, len(key), seed) on a little-endian CPU.
func htabHash(key []byte, seed uint32) uint32 {
	if len(key)%4 == 0 {
		return jhash2(key, seed)
	}
	return jhash(key, seed)
}

// jhash2 hashes key as an array of native-endian 32-bit words.
func jhash2(key []byte, seed uint32) uint32 {
	n := len(key) / 4
	a := jhashInitval + uint32(n<<2) + seed
	b, c := a, a
	w := func(i int) uint32 { return binary.LittleEndian.Uint32(key[4*i:]) }
	for ; n > 3; n, key = n-3, key[12:] {
		a += w(0)
		b += w(1)
		c += w(2)
		a, b, c = jhashMix(a, b, c)
	}
	switch n {
	case 3:
		c += w(2)
		fallthrough
	case 2:
		b += w(1)
		fallthrough
	case 1:
		a += w(0)
		c = jhashFinal(a, b, c)
	}
	return c
}

// jhash hashes key as bytes.
func jhash(key []byte, seed uint32) uint32 {
	a := jhashInitval + uint32(len(key)) + seed
	b, c := a, a
	for len(key) > 12 {
		a += binary.LittleEndian.Uint32(key)
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		a, b, c = jhashMix(a, b, c)
		key = key[12:]
	}
	if len(key) == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], key)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	return jhashFinal(a, b, c)
}
