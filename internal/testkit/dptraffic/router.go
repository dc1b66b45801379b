package dptraffic

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/port"
)

// The router of testdata/datapath/fib_router.yaml: a host behind r0
// (HostMAC, 10.0.0.2 and 2001:db8::2) sends through the router's r0
// (RouterMAC) to destinations the router's routes send out of r1 and r2,
// drop, or leave to the stack.
var (
	HostMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xaa}
	RouterMAC = net.HardwareAddr{0x02, 0, 0, 0, 0x01, 0x00}
	Host4     = netip.MustParseAddr("10.0.0.2")
	Host6     = netip.MustParseAddr("2001:db8::2")
)

// RouterDests are destinations of every kind of lookup answer in
// fib_router.yaml: through a gateway on r1 and on r2, on link with and
// without a neighbour, blackhole, unreachable, prohibit, no route, the
// router's own address, a directed broadcast, the IPv6 subnet-router
// anycast address and one a rule prohibits.
var RouterDests = []netip.Addr{
	netip.MustParseAddr("192.168.5.5"), netip.MustParseAddr("192.168.77.7"), netip.MustParseAddr("172.16.5.5"),
	netip.MustParseAddr("172.16.9.9"), netip.MustParseAddr("10.1.0.7"), netip.MustParseAddr("10.1.0.8"),
	netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("100.64.1.1"),
	netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.255"),
	netip.MustParseAddr("2001:db8:100::5"), netip.MustParseAddr("2001:db8:200::7"), netip.MustParseAddr("2001:db8:1::7"),
	netip.MustParseAddr("2001:db8:1::8"), netip.MustParseAddr("2001:db8:dead::1"), netip.MustParseAddr("2001:db8:beef::1"),
	netip.MustParseAddr("2001:db8:abcd::1"), netip.MustParseAddr("2001:db9::1"), netip.MustParseAddr("2001:db8:1::1"),
	netip.MustParseAddr("2001:db8:1::"), netip.MustParseAddr("192.168.99.1"),
}

// RouterMagic starts the UDP payload of Routed frames, followed by the
// frame's sequence number (big endian), so a capture can tell them from
// the traffic of a kernel's own stack.
const RouterMagic = "TCXFIB"

// RoutedFrame is a UDP datagram from the host to dst with hop limit
// ttl, seq after RouterMagic and pad more payload bytes; IPv4 ones have
// DF set, so that no stack fragments them.
func RoutedFrame(dst netip.Addr, ttl uint8, seq uint32, pad int) []byte {
	payload := make([]byte, len(RouterMagic)+4+pad)
	copy(payload, RouterMagic)
	binary.BigEndian.PutUint32(payload[len(RouterMagic):], seq)
	udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(5000 + seq%100)}
	if dst.Is4() {
		ip := ip4(Host4.AsSlice(), dst.AsSlice(), layers.IPProtocolUDP)
		ip.TTL = ttl
		return serialize(eth(HostMAC, RouterMAC, layers.EthernetTypeIPv4), ip, udp, gopacket.Payload(payload))
	}
	return serialize(eth(HostMAC, RouterMAC, layers.EthernetTypeIPv6),
		&layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: layers.IPProtocolUDP, SrcIP: Host6.AsSlice(), DstIP: dst.AsSlice()},
		udp, gopacket.Payload(payload))
}

// RoutedSeq is the sequence number of a RoutedFrame, -1 for other frames.
func RoutedSeq(frame []byte) int64 {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
	u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok || len(u.Payload) < len(RouterMagic)+4 || string(u.Payload[:len(RouterMagic)]) != RouterMagic {
		return -1
	}
	return int64(binary.BigEndian.Uint32(u.Payload[len(RouterMagic):]))
}

// Routed returns n RoutedFrames to RouterDests, deterministic for seed:
// hop limits 64, 2 or 1 (expiring), payloads of up to 1450 bytes (some
// over r2's MTU of 1400).
func Routed(n int, seed uint64) []port.Frame {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]port.Frame, n)
	for i := range out {
		ttl := []uint8{64, 64, 64, 2, 1}[r.IntN(5)]
		pad := r.IntN(200)
		if r.IntN(4) == 0 {
			pad = 1300 + r.IntN(140) // at most 1514-byte frames
		}
		f := RoutedFrame(RouterDests[r.IntN(len(RouterDests))], ttl, uint32(i), pad)
		out[i] = port.Frame{Data: f, Len: len(f), Time: epoch.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}

// RouterDemo is fib_router.pcap: one frame to each of RouterDests, then
// one whose TTL expires and one too big for r2.
func RouterDemo() []port.Frame {
	var frames [][]byte
	for i, d := range RouterDests {
		frames = append(frames, RoutedFrame(d, 64, uint32(i), 8))
	}
	frames = append(frames, RoutedFrame(RouterDests[0], 1, uint32(len(frames)), 8),
		RoutedFrame(RouterDests[1], 64, uint32(len(frames)+1), 1400))
	out := make([]port.Frame, len(frames))
	for i, f := range frames {
		out[i] = port.Frame{Data: f, Len: len(f), Time: epoch.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}
