package dptraffic

import (
	"math/rand/v2"
	"net"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/port"
)

// Addresses of the demo network: a host inside (10.0.0.1) talking to a
// server (10.0.0.2).
var (
	InsideMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	ServerMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	InsideIP   = net.IPv4(10, 0, 0, 1).To4()
	ServerIP   = net.IPv4(10, 0, 0, 2).To4()
	OtherIP    = net.IPv4(10, 0, 0, 3).To4()
	Inside6    = net.ParseIP("fd00::1")
	Server6    = net.ParseIP("fd00::2")
	epoch      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	BlockedTCP = uint16(9090)
)

func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, l := range ls {
		if n, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, x := range ls {
				if nl, ok := x.(gopacket.NetworkLayer); ok {
					n.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		panic(err) // the layers below are well formed
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(src, dst net.HardwareAddr, t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: t}
}

func ip4(src, dst net.IP, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 1, Flags: layers.IPv4DontFragment, SrcIP: src, DstIP: dst, Protocol: proto}
}

// ARP is a who-has request from src for dst.
func ARP(srcMAC net.HardwareAddr, src, dst net.IP) []byte {
	return serialize(eth(srcMAC, layers.EthernetBroadcast, layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: srcMAC, SourceProtAddress: src,
		DstHwAddress: make([]byte, 6), DstProtAddress: dst,
	})
}

// TCP is a segment with the given flags (SYN when syn) and payload.
func TCP(src, dst net.IP, sport, dport uint16, syn bool, payload []byte) []byte {
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 64240, SYN: syn, ACK: !syn}
	if !syn {
		t.Ack = 1
		t.PSH = len(payload) > 0
	}
	return serialize(eth(InsideMAC, ServerMAC, layers.EthernetTypeIPv4), ip4(src, dst, layers.IPProtocolTCP), t, gopacket.Payload(payload))
}

// UDP is a datagram.
func UDP(src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	return serialize(eth(InsideMAC, ServerMAC, layers.EthernetTypeIPv4), ip4(src, dst, layers.IPProtocolUDP),
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, gopacket.Payload(payload))
}

// Ping is an ICMP echo request.
func Ping(src, dst net.IP, seq uint16) []byte {
	return serialize(eth(InsideMAC, ServerMAC, layers.EthernetTypeIPv4), ip4(src, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: seq}, gopacket.Payload("ping"))
}

// UDP6 is an IPv6 UDP datagram.
func UDP6(sport, dport uint16) []byte {
	return serialize(eth(InsideMAC, ServerMAC, layers.EthernetTypeIPv6),
		&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: Inside6, DstIP: Server6},
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, gopacket.Payload("v6"))
}

// Demo is the demo's capture: ARP, ping, TCP to an open and to the
// blocked port, UDP, IPv6, traffic from a host the NAT leaves alone, a
// runt and an oversized frame.
func Demo() []port.Frame {
	frames := [][]byte{
		ARP(InsideMAC, InsideIP, ServerIP),
		Ping(InsideIP, ServerIP, 1),
		TCP(InsideIP, ServerIP, 40000, 80, true, nil),
		TCP(InsideIP, ServerIP, 40000, 80, false, []byte("GET / HTTP/1.0\r\n\r\n")),
		TCP(InsideIP, ServerIP, 40001, BlockedTCP, true, nil),
		UDP(InsideIP, ServerIP, 40002, 53, []byte("query")),
		UDP6(40003, 53),
		TCP(OtherIP, ServerIP, 40004, 443, true, nil),
		{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1},            // a runt: 12 bytes
		UDP(InsideIP, ServerIP, 40005, 9, make([]byte, 1600)), // over the MTU
	}
	out := make([]port.Frame, len(frames))
	for i, f := range frames {
		out[i] = port.Frame{Data: f, Len: len(f), Time: epoch.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}

// Mixed returns n frames of IPv4 TCP/UDP/ICMP, ARP and IPv6 between a few
// hosts, some to the blocked port, deterministic for seed.
func Mixed(n int, seed uint64) []port.Frame {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hosts := []net.IP{InsideIP, OtherIP, net.IPv4(192, 168, 1, 9).To4()}
	out := make([]port.Frame, n)
	for i := range out {
		src := hosts[r.IntN(len(hosts))]
		sport := uint16(1024 + r.IntN(60000))
		var f []byte
		switch k := r.IntN(20); {
		case k < 8:
			dport := []uint16{22, 80, 443, BlockedTCP, 8080}[r.IntN(5)]
			f = TCP(src, ServerIP, sport, dport, r.IntN(2) == 0, make([]byte, r.IntN(600)))
		case k < 13:
			f = UDP(src, ServerIP, sport, uint16(r.IntN(2000)), make([]byte, r.IntN(1200)))
		case k < 16:
			f = Ping(src, ServerIP, uint16(i))
		case k < 18:
			f = ARP(InsideMAC, src, ServerIP)
		default:
			f = UDP6(sport, 53)
		}
		out[i] = port.Frame{Data: f, Len: len(f), Time: epoch.Add(time.Duration(i) * time.Microsecond)}
	}
	return out
}

// WritePcap writes frames to path.
func WritePcap(path string, frames []port.Frame) error {
	w, err := port.CreatePcap(path)
	if err != nil {
		return err
	}
	if err := w.Write(frames); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
