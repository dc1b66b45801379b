package pktgen

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Frame size limits of BPF_PROG_TEST_RUN for tc programs on the project's
// kernel (6.18, 4 KiB pages): the kernel rejects shorter or longer input
// with EINVAL. The L3 minimums apply to untagged frames whose ethertype is
// IPv4 or IPv6; every other frame only needs MinLen.
const (
	MinLen     = 14
	MinLenIPv4 = 34
	MinLenIPv6 = 54
	MaxLen     = 3712
)

// MinLenFor is the shortest frame the kernel test run accepts with the
// ethertype in frame's bytes 12..13.
func MinLenFor(frame []byte) int {
	if len(frame) < 14 {
		return MinLen
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case uint16(layers.EthernetTypeIPv4):
		return MinLenIPv4
	case uint16(layers.EthernetTypeIPv6):
		return MinLenIPv6
	}
	return MinLen
}

// Frame is one generated frame.
type Frame struct {
	Data []byte
	// Malformed says a header, length or checksum was broken on purpose
	// (see Gen's doc); a well-formed frame has valid lengths and checksums.
	Malformed bool
}

// Gen is a deterministic frame generator. It is not safe for concurrent use;
// give each goroutine its own.
type Gen struct {
	rng  *rand.Rand
	opts gopacket.SerializeOptions
}

// New returns a generator whose output depends only on seed.
func New(seed int64) *Gen {
	return &Gen{
		rng:  rand.New(rand.NewPCG(uint64(seed), 0x7463782d70677e6e)),
		opts: gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
	}
}

// Next returns the next frame's bytes (a new slice each call).
func (g *Gen) Next() []byte { return g.NextFrame().Data }

// NextFrame returns the next frame with its description.
func (g *Gen) NextFrame() Frame {
	for {
		f, ok := g.build()
		if ok {
			return f
		}
	}
}

// Malformation probability in percent, and the share of frames with
// Ethernet padding behind a short IP packet.
const (
	malformedPct = 5
	paddingPct   = 30
)

func (g *Gen) pct(p int) bool { return g.rng.IntN(100) < p }

func (g *Gen) build() (Frame, bool) {
	eth := &layers.Ethernet{SrcMAC: g.unicastMAC(), DstMAC: g.dstMAC()}
	var l2 []gopacket.SerializableLayer
	l2 = append(l2, eth)

	kind := g.rng.IntN(100)
	var upper []gopacket.SerializableLayer
	var ethType layers.EthernetType
	switch {
	case kind < 48:
		ethType, upper = layers.EthernetTypeIPv4, g.ipv4Packet()
	case kind < 80:
		ethType, upper = layers.EthernetTypeIPv6, g.ipv6Packet()
	case kind < 86:
		ethType, upper = layers.EthernetTypeIPv4, g.tunnelPacket()
	case kind < 93:
		ethType, upper = layers.EthernetTypeARP, g.arpPacket(eth)
	default:
		ethType = []layers.EthernetType{layers.EthernetTypeLinkLayerDiscovery, 0x88b5, 0x9000, 0x0000}[g.rng.IntN(4)]
		upper = []gopacket.SerializableLayer{gopacket.Payload(g.payload(g.rng.IntN(200)))}
	}

	// VLAN tags: 14% one 802.1Q tag, 4% QinQ.
	switch v := g.rng.IntN(100); {
	case v < 14:
		eth.EthernetType = layers.EthernetTypeDot1Q
		l2 = append(l2, g.dot1q(ethType))
	case v < 18:
		eth.EthernetType = layers.EthernetTypeQinQ
		l2 = append(l2, g.dot1q(layers.EthernetTypeDot1Q), g.dot1q(ethType))
	default:
		eth.EthernetType = ethType
	}

	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, g.opts, append(l2, upper...)...); err != nil {
		return Frame{}, false
	}
	data := append([]byte(nil), buf.Bytes()...)
	if len(data) > MaxLen {
		return Frame{}, false
	}
	f := Frame{Data: data}
	if len(data) < 60 && g.pct(paddingPct) {
		f.Data = append(f.Data, make([]byte, 60-len(data))...)
	}
	if g.pct(malformedPct) {
		f.Data = g.malform(f.Data)
		f.Malformed = true
	}
	if len(f.Data) < MinLenFor(f.Data) {
		return Frame{}, false
	}
	return f, true
}

func (g *Gen) dot1q(next layers.EthernetType) *layers.Dot1Q {
	return &layers.Dot1Q{
		Priority:       uint8(g.rng.IntN(8)),
		VLANIdentifier: uint16([]int{1, 10, 100, 200, 3000, 4094}[g.rng.IntN(6)]),
		Type:           next,
	}
}

// payloadLen draws a payload size: mostly small, sometimes MTU-sized,
// occasionally jumbo (bounded so that the frame stays under MaxLen).
func (g *Gen) payloadLen() int {
	switch p := g.rng.IntN(100); {
	case p < 45:
		return g.rng.IntN(64)
	case p < 75:
		return 64 + g.rng.IntN(448)
	case p < 92:
		return 512 + g.rng.IntN(1000)
	default:
		return 1460 + g.rng.IntN(MaxLen-1460-160)
	}
}

// payload returns n random bytes; sometimes it carries the "tcx!" signature
// or starts with "DROP", which some corpus programs look for.
func (g *Gen) payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	if n >= 8 && g.pct(6) {
		at := g.rng.IntN(n - 3)
		copy(b[at:], "tcx!")
	}
	if n >= 4 && g.pct(3) {
		copy(b, "DROP")
	}
	return b
}

func (g *Gen) unicastMAC() []byte {
	m := make([]byte, 6)
	for i := range m {
		m[i] = byte(g.rng.Uint32())
	}
	m[0] = m[0]&^1 | 2 // unicast, locally administered
	return m
}

// dstMAC is mostly unicast, sometimes broadcast, multicast or all-zero (the
// address of the loopback device, so the kernel classifies it as "host").
func (g *Gen) dstMAC() []byte {
	switch p := g.rng.IntN(100); {
	case p < 5:
		return []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	case p < 9:
		return []byte{0x01, 0x00, 0x5e, 0x00, 0x00, byte(g.rng.IntN(256))}
	case p < 12:
		return []byte{0x33, 0x33, 0x00, 0x00, 0x00, byte(g.rng.IntN(256))}
	case p < 20:
		return make([]byte, 6)
	}
	return g.unicastMAC()
}

func (g *Gen) arpPacket(eth *layers.Ethernet) []gopacket.SerializableLayer {
	op := uint16(layers.ARPRequest)
	if g.pct(40) {
		op = layers.ARPReply
	}
	return []gopacket.SerializableLayer{&layers.ARP{
		AddrType:          layers.LinkTypeEthernet,
		Protocol:          layers.EthernetTypeIPv4,
		HwAddressSize:     6,
		ProtAddressSize:   4,
		Operation:         op,
		SourceHwAddress:   eth.SrcMAC,
		SourceProtAddress: g.ipv4Addr(),
		DstHwAddress:      make([]byte, 6),
		DstProtAddress:    g.ipv4Addr(),
	}}
}
