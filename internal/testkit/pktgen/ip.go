package pktgen

import (
	"net"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Address pools: private and documentation ranges the corpus programs
// match on (NAT, ACL, tunnel prefixes), plus some public-looking ones.
var (
	v4Prefixes = [][]byte{
		{10, 0, 0, 0}, {10, 1, 0, 0}, {10, 1, 2, 0}, {172, 16, 0, 0}, {172, 31, 0, 0},
		{192, 168, 0, 0}, {192, 168, 1, 0}, {198, 51, 100, 0}, {203, 0, 113, 0},
		{192, 0, 2, 0}, {8, 8, 8, 0}, {100, 64, 0, 0},
	}
	v6Prefixes = [][]byte{
		{0xfd, 0x00}, {0xfd, 0x12, 0x34, 0x56}, {0x20, 0x01, 0x0d, 0xb8},
		{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01}, {0xfe, 0x80}, {0x2a, 0x00, 0x14, 0x50},
	}
	dscps = []uint8{0, 0, 0, 8, 10, 18, 26, 34, 46, 48}
)

// ipv4Addr draws from the pools; the exact host 10.1.2.3 is frequent
// enough to hit /32 rules.
func (g *Gen) ipv4Addr() net.IP {
	if g.pct(3) {
		return net.IP{10, 1, 2, 3}
	}
	p := v4Prefixes[g.rng.IntN(len(v4Prefixes))]
	a := make(net.IP, 4)
	copy(a, p)
	for i := range a {
		if p[i] == 0 || (i == 1 && p[0] == 172) {
			a[i] |= byte(g.rng.IntN(256))
		}
	}
	if a[0] == 172 {
		a[1] = 16 + a[1]%16
	}
	return a
}

func (g *Gen) ipv6Addr() net.IP {
	p := v6Prefixes[g.rng.IntN(len(v6Prefixes))]
	a := make(net.IP, 16)
	copy(a, p)
	for i := len(p); i < 16; i++ {
		a[i] = byte(g.rng.Uint32())
	}
	if g.pct(30) {
		copy(a[8:], []byte{0, 0, 0, 0, 0, 0, 0, byte(1 + g.rng.IntN(16))})
	}
	return a
}

func (g *Gen) ttl() uint8 {
	switch p := g.rng.IntN(100); {
	case p < 4:
		return uint8(g.rng.IntN(2)) // 0 or 1: expires at the next router
	case p < 50:
		return 64
	case p < 80:
		return 128
	case p < 90:
		return 255
	}
	return uint8(2 + g.rng.IntN(250))
}

func (g *Gen) tos() uint8 {
	return dscps[g.rng.IntN(len(dscps))]<<2 | uint8(g.rng.IntN(4))
}

// ipv4Packet is an IPv4 header (options and fragments sometimes) and its
// transport.
func (g *Gen) ipv4Packet() []gopacket.SerializableLayer {
	ip := &layers.IPv4{
		Version: 4, TOS: g.tos(), Id: uint16(g.rng.Uint32()), TTL: g.ttl(),
		SrcIP: g.ipv4Addr(), DstIP: g.ipv4Addr(),
	}
	if g.pct(60) {
		ip.Flags = layers.IPv4DontFragment
	}
	if g.pct(7) {
		ip.Options = g.ipv4Options()
	}
	l4 := g.transport(ip, false)
	ip.Protocol = l4proto(l4)
	if g.pct(6) {
		return g.fragment(ip, l4)
	}
	return append([]gopacket.SerializableLayer{ip}, l4...)
}

func (g *Gen) ipv4Options() []layers.IPv4Option {
	switch g.rng.IntN(3) {
	case 0: // Router Alert
		return []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	case 1: // NOPs and a timestamp option with room for two entries
		return []layers.IPv4Option{
			{OptionType: 1}, {OptionType: 1},
			{OptionType: 68, OptionLength: 10, OptionData: []byte{5, 0, 0, 0, 0, 0, 0, 0}},
		}
	}
	// Record Route with three empty slots.
	return []layers.IPv4Option{{OptionType: 7, OptionLength: 15, OptionData: append([]byte{4}, make([]byte, 12)...)}}
}

// fragment turns the packet into a first fragment (MF, transport header
// present) or a later one (offset > 0, the transport bytes are opaque).
func (g *Gen) fragment(ip *layers.IPv4, l4 []gopacket.SerializableLayer) []gopacket.SerializableLayer {
	ip.Flags = layers.IPv4MoreFragments
	if g.pct(50) {
		return append([]gopacket.SerializableLayer{ip}, l4...)
	}
	ip.FragOffset = uint16(1 + g.rng.IntN(400))
	if g.pct(50) {
		ip.Flags = 0 // last fragment
	}
	return []gopacket.SerializableLayer{ip, gopacket.Payload(g.payload(8 + g.rng.IntN(600)))}
}

// ipv6Packet is an IPv6 header, sometimes a chain of extension headers,
// and its transport.
func (g *Gen) ipv6Packet() []gopacket.SerializableLayer {
	ip6 := &layers.IPv6{
		Version: 6, TrafficClass: g.tos(), FlowLabel: g.rng.Uint32() & 0xfffff,
		HopLimit: g.ttl(), SrcIP: g.ipv6Addr(), DstIP: g.ipv6Addr(),
	}
	l4 := g.transport(ip6, true)
	proto := l4proto(l4)
	if !g.pct(15) {
		ip6.NextHeader = proto
		return append([]gopacket.SerializableLayer{ip6}, l4...)
	}
	ext, first := g.ipv6Extensions(proto)
	ip6.NextHeader = first
	out := append([]gopacket.SerializableLayer{ip6}, ext...)
	return append(out, l4...)
}

// ipv6Extensions builds one to three extension headers ending in proto and
// returns them with the protocol number of the first.
func (g *Gen) ipv6Extensions(proto layers.IPProtocol) ([]gopacket.SerializableLayer, layers.IPProtocol) {
	n := 1 + g.rng.IntN(3)
	kinds := make([]layers.IPProtocol, 0, n)
	for i := range n {
		choices := []layers.IPProtocol{layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Fragment}
		if i == 0 || g.pct(10) { // a misplaced hop-by-hop header now and then
			choices = append(choices, layers.IPProtocolIPv6HopByHop)
		}
		kinds = append(kinds, choices[g.rng.IntN(len(choices))])
	}
	var out []gopacket.SerializableLayer
	for i, k := range kinds {
		next := proto
		if i+1 < len(kinds) {
			next = kinds[i+1]
		}
		out = append(out, g.ipv6Extension(k, next))
	}
	return out, kinds[0]
}

func (g *Gen) ipv6Extension(kind, next layers.IPProtocol) gopacket.SerializableLayer {
	switch kind {
	case layers.IPProtocolIPv6Routing:
		r := &layers.IPv6Routing{RoutingType: []uint8{0, 2, 4}[g.rng.IntN(3)], SegmentsLeft: 1, Reserved: make([]byte, 4)}
		r.NextHeader = next
		r.Data = make([]byte, 16) // one address
		return r
	case layers.IPProtocolIPv6Fragment:
		f := &layers.IPv6Fragment{NextHeader: next, Identification: g.rng.Uint32(), MoreFragments: g.pct(70)}
		if g.pct(25) {
			f.FragmentOffset = uint16(1 + g.rng.IntN(300))
		}
		return f
	case layers.IPProtocolIPv6HopByHop:
		// Router Alert (4 bytes) + PadN (2 bytes): an 8-byte header.
		h := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{
			{OptionType: 5, OptionLength: 2, OptionData: []byte{0, 0}},
			{OptionType: 1, OptionLength: 0, OptionData: []byte{}},
		}}
		h.NextHeader = next
		return h
	}
	d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{
		{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)},
	}}
	d.NextHeader = next
	return d
}

// tunnelPacket is IPv4 carrying IPv4 (protocol 4) or IPv6 (protocol 41).
func (g *Gen) tunnelPacket() []gopacket.SerializableLayer {
	outer := &layers.IPv4{
		Version: 4, TOS: g.tos(), Id: uint16(g.rng.Uint32()), TTL: g.ttl(),
		Flags: layers.IPv4DontFragment, SrcIP: g.ipv4Addr(), DstIP: g.ipv4Addr(),
	}
	if g.pct(10) {
		outer.Options = g.ipv4Options()
	}
	var inner []gopacket.SerializableLayer
	if g.pct(60) {
		outer.Protocol = layers.IPProtocolIPv4
		inner = g.ipv4Packet()
	} else {
		outer.Protocol = layers.IPProtocolIPv6
		inner = g.ipv6Packet()
	}
	return append([]gopacket.SerializableLayer{outer}, inner...)
}
