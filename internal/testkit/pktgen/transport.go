package pktgen

import (
	"encoding/binary"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	servicePorts = []uint16{22, 53, 80, 123, 443, 8080, 8443, 3306, 25}
	mssValues    = []uint16{1460, 1440, 1400, 1380, 1360, 1220, 536, 8960}
	dnsNames     = []string{
		"example.com", "www.example.org", "mail.Example.NET", "a.b.c.d.e.f.g.h.i.j.example",
		"aGVsbG8gd29ybGQgdGhpcyBpcyBhIHR1bm5lbCBwYXlsb2Fk.t.example.com",
		"x", "cdn-42.edge.example", "ns1.tcx.test",
	}
)

// l4proto is the IP protocol number of the first layer of l4.
func l4proto(l4 []gopacket.SerializableLayer) layers.IPProtocol {
	switch l4[0].(type) {
	case *layers.TCP:
		return layers.IPProtocolTCP
	case *layers.UDP:
		return layers.IPProtocolUDP
	case *layers.ICMPv4:
		return layers.IPProtocolICMPv4
	case *layers.ICMPv6:
		return layers.IPProtocolICMPv6
	}
	return layers.IPProtocolNoNextHeader
}

func (g *Gen) port() layers.TCPPort {
	if g.pct(50) {
		return layers.TCPPort(servicePorts[g.rng.IntN(len(servicePorts))])
	}
	return layers.TCPPort(1024 + g.rng.IntN(64512))
}

// transport picks TCP, UDP or ICMP(v6) over nl.
func (g *Gen) transport(nl gopacket.NetworkLayer, v6 bool) []gopacket.SerializableLayer {
	switch p := g.rng.IntN(100); {
	case p < 55:
		return g.tcp(nl)
	case p < 88:
		return g.udp(nl)
	case p < 98:
		if v6 {
			return g.icmpv6(nl)
		}
		return g.icmpv4()
	}
	return []gopacket.SerializableLayer{gopacket.Payload(g.payload(g.rng.IntN(64)))}
}

func (g *Gen) tcp(nl gopacket.NetworkLayer) []gopacket.SerializableLayer {
	t := &layers.TCP{
		SrcPort: g.port(), DstPort: g.port(),
		Seq: g.rng.Uint32(), Ack: g.rng.Uint32(), Window: uint16(g.rng.Uint32()),
	}
	// Small sequence steps inside a few flows make per-flow state programs
	// see forward, repeated and backward deltas.
	if g.pct(40) {
		t.SrcPort, t.DstPort = 40000+layers.TCPPort(g.rng.IntN(4)), 443
		t.Seq = 1000 + uint32(g.rng.IntN(20000))
	}
	var n int
	switch p := g.rng.IntN(100); {
	case p < 25:
		t.SYN = true
		t.Options = g.synOptions()
	case p < 32:
		t.SYN, t.ACK = true, true
		t.Options = g.synOptions()
	case p < 75:
		t.ACK = true
		t.PSH = g.pct(50)
		n = g.payloadLen()
	case p < 88:
		t.ACK = true
	case p < 94:
		t.FIN, t.ACK = true, true
	default:
		t.RST = true
	}
	t.SetNetworkLayerForChecksum(nl)
	return []gopacket.SerializableLayer{t, gopacket.Payload(g.payload(n))}
}

func (g *Gen) synOptions() []layers.TCPOption {
	mss := make([]byte, 2)
	binary.BigEndian.PutUint16(mss, mssValues[g.rng.IntN(len(mssValues))])
	opts := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionData: mss}}
	if g.pct(15) { // MSS not first
		opts = []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}, opts[0]}
	}
	if g.pct(70) {
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionData: []byte{}})
	}
	if g.pct(70) {
		ts := make([]byte, 8)
		binary.BigEndian.PutUint32(ts, g.rng.Uint32())
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: ts})
	}
	if g.pct(70) {
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{byte(g.rng.IntN(15))}})
	}
	if g.pct(10) { // SYN without MSS
		opts = opts[len(opts)-1:]
	}
	return opts
}

func (g *Gen) udp(nl gopacket.NetworkLayer) []gopacket.SerializableLayer {
	u := &layers.UDP{SrcPort: layers.UDPPort(1024 + g.rng.IntN(64512)), DstPort: layers.UDPPort(g.port())}
	u.SetNetworkLayerForChecksum(nl)
	switch p := g.rng.IntN(100); {
	case p < 30:
		u.DstPort = 53
		return []gopacket.SerializableLayer{u, g.dnsQuery()}
	case p < 40:
		u.SrcPort, u.DstPort = 123, 123
		return []gopacket.SerializableLayer{u, gopacket.Payload(g.payload(48))}
	case p < 55: // bulk transfer between ephemeral ports
		u.SrcPort = layers.UDPPort(49152 + g.rng.IntN(16384))
		u.DstPort = layers.UDPPort(49152 + g.rng.IntN(16384))
	}
	return []gopacket.SerializableLayer{u, gopacket.Payload(g.payload(g.payloadLen()))}
}

func (g *Gen) dnsQuery() gopacket.SerializableLayer {
	name := dnsNames[g.rng.IntN(len(dnsNames))]
	if g.pct(30) { // a random subdomain, as tunnels and CDNs make
		label := make([]byte, 1+g.rng.IntN(60))
		for i := range label {
			label[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[g.rng.IntN(36)]
		}
		name = string(label) + "." + name
	}
	return &layers.DNS{
		ID: uint16(g.rng.Uint32()), RD: true, OpCode: layers.DNSOpCodeQuery,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}},
	}
}

func (g *Gen) icmpv4() []gopacket.SerializableLayer {
	ic := &layers.ICMPv4{Id: uint16(g.rng.Uint32()), Seq: uint16(g.rng.IntN(1000))}
	var body []byte
	switch p := g.rng.IntN(100); {
	case p < 60:
		ic.TypeCode = layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0)
		body = g.payload(56)
	case p < 80:
		ic.TypeCode = layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0)
		body = g.payload(56)
	case p < 92:
		ic.TypeCode = layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, 3)
		body = g.payload(28) // the quoted header + 8 bytes
	default:
		ic.TypeCode = layers.CreateICMPv4TypeCode(layers.ICMPv4TypeTimeExceeded, 0)
		body = g.payload(28)
	}
	return []gopacket.SerializableLayer{ic, gopacket.Payload(body)}
}

func (g *Gen) icmpv6(nl gopacket.NetworkLayer) []gopacket.SerializableLayer {
	ic := &layers.ICMPv6{}
	ic.SetNetworkLayerForChecksum(nl)
	switch p := g.rng.IntN(100); {
	case p < 55:
		ic.TypeCode = layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)
	case p < 80:
		ic.TypeCode = layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoReply, 0)
	default:
		ic.TypeCode = layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, 4)
		return []gopacket.SerializableLayer{ic, gopacket.Payload(g.payload(4 + 48))}
	}
	echo := &layers.ICMPv6Echo{Identifier: uint16(g.rng.Uint32()), SeqNumber: uint16(g.rng.IntN(1000))}
	return []gopacket.SerializableLayer{ic, echo, gopacket.Payload(g.payload(g.rng.IntN(100)))}
}
