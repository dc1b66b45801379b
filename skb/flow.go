package skb

import (
	"encoding/binary"
	"math/bits"
)

// flowHash is a deterministic stand-in for __skb_get_hash: dissect
// Ethernet, up to two in-packet VLAN tags, IPv4 or IPv6 and the ports of
// TCP, UDP, UDP-Lite, SCTP and DCCP (not for fragments; an IPv6 flow label
// replaces the ports, like FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL), order the
// endpoints so both directions hash alike, and jhash2 the words with
// HashSeed. It reports whether L4 information went in, as
// flow_keys_have_l4 does for skb->l4_hash.
func (p *Packet) flowHash() (uint32, bool) {
	var w [12]uint32 // src addr[4], dst addr[4], ports, proto, label, vlan
	d := p.Data()
	if len(d) < EthHLen {
		return finalHash(w[:], p.HashSeed), false
	}
	proto := binary.BigEndian.Uint16(d[12:])
	off := EthHLen
	for i := 0; i < 2 && ethTypeVLAN(proto) && len(d) >= off+VlanHLen; i++ {
		w[11] = uint32(binary.BigEndian.Uint16(d[off:]) & 0x0fff)
		proto = binary.BigEndian.Uint16(d[off+2:])
		off += VlanHLen
	}
	if p.VlanPresent {
		w[11] = uint32(p.VlanTCI & 0x0fff)
	}
	var ipProto byte
	var l4 int
	addrLen := 0
	switch {
	case proto == EthPIP && len(d) >= off+IPv4HLen && d[off]>>4 == 4:
		ihl := int(d[off]&0x0f) * 4
		if ihl < IPv4HLen {
			break
		}
		ipProto = d[off+9]
		addrLen = 4
		copy4(w[0:1], d[off+12:])
		copy4(w[4:5], d[off+16:])
		if binary.BigEndian.Uint16(d[off+6:])&0x3fff == 0 { // not a fragment
			l4 = off + ihl
		}
	case proto == EthPIPv6 && len(d) >= off+IPv6HLen && d[off]>>4 == 6:
		ipProto = d[off+6]
		addrLen = 16
		copy4(w[0:4], d[off+8:])
		copy4(w[4:8], d[off+24:])
		if label := binary.BigEndian.Uint32(d[off:]) & 0x000fffff; label != 0 {
			w[10] = label
		} else {
			l4 = off + IPv6HLen
		}
	}
	if addrLen == 0 {
		w[9] = uint32(proto)
		return finalHash(w[:], p.HashSeed), false
	}
	hasPorts := false
	switch ipProto {
	case 6, 17, 33, 132, 136:
		if l4 != 0 && len(d) >= l4+4 {
			w[8] = binary.BigEndian.Uint32(d[l4:])
			hasPorts = w[8] != 0
		}
	}
	w[9] = uint32(proto)<<8 | uint32(ipProto)
	// Symmetric: the smaller endpoint first.
	if cmpWords(w[4:8], w[0:4]) < 0 || (cmpWords(w[4:8], w[0:4]) == 0 && w[8]&0xffff < w[8]>>16) {
		for i := 0; i < 4; i++ {
			w[i], w[4+i] = w[4+i], w[i]
		}
		w[8] = bits.RotateLeft32(w[8], 16)
	}
	return finalHash(w[:], p.HashSeed), hasPorts || w[10] != 0
}

func copy4(w []uint32, b []byte) {
	for i := range w {
		w[i] = binary.BigEndian.Uint32(b[4*i:])
	}
}

func cmpWords(a, b []uint32) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func finalHash(w []uint32, seed uint32) uint32 {
	h := jhash2(w, seed)
	if h == 0 {
		h = 1 // __flow_hash_from_keys never returns 0
	}
	return h
}

// jhash2 is the kernel's jhash2 (include/linux/jhash.h).
func jhash2(k []uint32, initval uint32) uint32 {
	a := 0xdeadbeef + uint32(len(k))<<2 + initval
	b, c := a, a
	for len(k) > 3 {
		a += k[0]
		b += k[1]
		c += k[2]
		a, b, c = jhashMix(a, b, c)
		k = k[3:]
	}
	switch len(k) {
	case 3:
		c += k[2]
		fallthrough
	case 2:
		b += k[1]
		fallthrough
	case 1:
		a += k[0]
		c = jhashFinal(a, b, c)
	}
	return c
}

func rol(x uint32, n int) uint32 { return bits.RotateLeft32(x, n) }

func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= rol(c, 4)
	c += b
	b -= a
	b ^= rol(a, 6)
	a += c
	c -= b
	c ^= rol(b, 8)
	b += a
	a -= c
	a ^= rol(c, 16)
	c += b
	b -= a
	b ^= rol(a, 19)
	a += c
	c -= b
	c ^= rol(b, 4)
	b += a
	return a, b, c
}

func jhashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= rol(b, 14)
	a ^= c
	a -= rol(c, 11)
	b ^= a
	b -= rol(a, 25)
	c ^= b
	c -= rol(b, 16)
	a ^= c
	a -= rol(c, 4)
	b ^= a
	b -= rol(a, 14)
	c ^= b
	c -= rol(b, 24)
	return c
}
