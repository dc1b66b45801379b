package pktgen

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gopacket/gopacket/layers"
)

// ErrNoChecksum means CheckChecksums found nothing it can check: no IP
// packet, a truncated header or a non-first fragment.
var ErrNoChecksum = errors.New("no checksummed header")

// CheckChecksums verifies the outermost IP packet of frame: the IPv4 header
// checksum and, unless the packet is a fragment, the TCP, UDP, ICMP or
// ICMPv6 checksum over the packet's stated length (pseudo header included;
// a zero UDP checksum over IPv4 means "none" and passes). It is how tests
// check that a program rewrote headers without breaking them.
func CheckChecksums(frame []byte) error {
	l3, et := l3Offset(frame)
	switch et {
	case layers.EthernetTypeIPv4:
		return checkIPv4(frame[l3:])
	case layers.EthernetTypeIPv6:
		return checkIPv6(frame[l3:])
	}
	return ErrNoChecksum
}

func checkIPv4(b []byte) error {
	if len(b) < 20 || b[0]>>4 != 4 {
		return ErrNoChecksum
	}
	hlen := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if hlen < 20 || hlen > len(b) || total < hlen || total > len(b) {
		return ErrNoChecksum
	}
	if s := fold(sum(0, b[:hlen])); s != 0xffff {
		return fmt.Errorf("ipv4 header checksum: sum %#04x", s)
	}
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
		return ErrNoChecksum
	}
	proto := b[9]
	pseudo := sum(0, b[12:20]) + uint32(proto) + uint32(total-hlen)
	if proto == byte(layers.IPProtocolICMPv4) {
		pseudo = 0
	}
	return checkL4(proto, b[hlen:total], pseudo, false)
}

func checkIPv6(b []byte) error {
	if len(b) < 40 || b[0]>>4 != 6 {
		return ErrNoChecksum
	}
	end := 40 + int(binary.BigEndian.Uint16(b[4:]))
	if end > len(b) {
		return ErrNoChecksum
	}
	next, off := b[6], 40
walk:
	for range 8 {
		switch layers.IPProtocol(next) {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing:
			if off+8 > end {
				return ErrNoChecksum
			}
			next, off = b[off], off+(int(b[off+1])+1)*8
			continue
		case layers.IPProtocolIPv6Fragment:
			return ErrNoChecksum
		}
		break walk
	}
	if off > end {
		return ErrNoChecksum
	}
	l4 := b[off:end]
	pseudo := sum(0, b[8:40]) + uint32(next) + uint32(len(l4))
	return checkL4(next, l4, pseudo, true)
}

func checkL4(proto byte, l4 []byte, pseudo uint32, v6 bool) error {
	var field int
	switch layers.IPProtocol(proto) {
	case layers.IPProtocolTCP:
		field = 16
	case layers.IPProtocolUDP:
		field = 6
	case layers.IPProtocolICMPv4, layers.IPProtocolICMPv6:
		field = 2
	default:
		return ErrNoChecksum
	}
	if len(l4) < field+2 {
		return ErrNoChecksum
	}
	if proto == byte(layers.IPProtocolUDP) && !v6 && binary.BigEndian.Uint16(l4[6:]) == 0 {
		return nil
	}
	if s := fold(sum(pseudo, l4)); s != 0xffff {
		return fmt.Errorf("%v checksum: sum %#04x", layers.IPProtocol(proto), s)
	}
	return nil
}

// sum adds b as big-endian 16-bit words (odd tail padded with zero).
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
