package pktgen

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// l3Offset walks the Ethernet header and VLAN tags of b and returns the
// offset of the network header and its ethertype (0, 0 if b is too short).
func l3Offset(b []byte) (int, layers.EthernetType) {
	off := 12
	for off+2 <= len(b) {
		et := layers.EthernetType(binary.BigEndian.Uint16(b[off:]))
		if et != layers.EthernetTypeDot1Q && et != layers.EthernetTypeQinQ {
			return off + 2, et
		}
		off += 4
	}
	return 0, 0
}

// malform breaks b in one of the ways real traffic is broken: cut short,
// one corrupted header byte (a bad checksum at least), an impossible IPv4
// header length, a total/payload length that disagrees with the frame, or
// a TCP data offset below five words.
func (g *Gen) malform(b []byte) []byte {
	l3, et := l3Offset(b)
	switch g.rng.IntN(5) {
	case 0:
		if min := MinLenFor(b); len(b) > min {
			return b[:min+g.rng.IntN(len(b)-min)]
		}
	case 1:
		if l3 > 0 && l3 < len(b) {
			span := min(60, len(b)-l3)
			b[l3+g.rng.IntN(span)] ^= byte(1 + g.rng.IntN(255))
			return b
		}
	case 2:
		if et == layers.EthernetTypeIPv4 && l3+20 <= len(b) {
			ihl := []byte{0, 1, 4, 6, 15}[g.rng.IntN(5)]
			b[l3] = 0x40 | ihl
			return b
		}
	case 3:
		if et == layers.EthernetTypeIPv4 && l3+20 <= len(b) {
			binary.BigEndian.PutUint16(b[l3+2:], uint16(g.rng.IntN(2*len(b))))
			return b
		}
		if et == layers.EthernetTypeIPv6 && l3+40 <= len(b) {
			binary.BigEndian.PutUint16(b[l3+4:], uint16(g.rng.IntN(2*len(b))))
			return b
		}
	case 4:
		if et == layers.EthernetTypeIPv4 && l3+20 <= len(b) && b[l3+9] == byte(layers.IPProtocolTCP) {
			l4 := l3 + int(b[l3]&0xf)*4
			if l4+13 <= len(b) {
				b[l4+12] = byte(g.rng.IntN(5)) << 4
				return b
			}
		}
	}
	// Nothing applicable: flip a byte of the Ethernet header's source MAC,
	// which keeps the frame valid but still counts as tampered.
	b[6+g.rng.IntN(6)] ^= 0x10
	return b
}
