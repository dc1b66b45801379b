package thirdparty_test

import (
	"math/rand/v2"
	"net"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// flow is one transport flow a driver aims at a program's interesting path.
type flow struct {
	v6         bool
	src, dst   net.IP
	proto      layers.IPProtocol // TCP or UDP
	sport      uint16
	dport      uint16
	payload    int
	syn, frag  bool
	vlan       bool
	ttl        uint8
	extraBytes []byte // appended after the transport payload
}

// frame serialises f with gopacket, checksums and lengths fixed.
func (f flow) frame(rng *rand.Rand) []byte {
	eth := &layers.Ethernet{
		SrcMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(rng.IntN(256))},
		DstMAC: net.HardwareAddr{0x02, 0, 0, 0, 1, byte(rng.IntN(256))},
	}
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	if f.vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(1 + rng.IntN(4094))})
	}
	var nl gopacket.NetworkLayer
	ttl := f.ttl
	if ttl == 0 {
		ttl = 64
	}
	if f.v6 {
		ip := &layers.IPv6{Version: 6, SrcIP: f.src, DstIP: f.dst, NextHeader: f.proto, HopLimit: ttl}
		setType(f.vlan, eth, ls, layers.EthernetTypeIPv6)
		ls, nl = append(ls, ip), ip
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, SrcIP: f.src, DstIP: f.dst, Protocol: f.proto, TTL: ttl, Id: uint16(rng.IntN(65536))}
		if f.frag {
			ip.Flags = layers.IPv4MoreFragments
		}
		setType(f.vlan, eth, ls, layers.EthernetTypeIPv4)
		ls, nl = append(ls, ip), ip
	}
	switch f.proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(f.sport), DstPort: layers.TCPPort(f.dport), Seq: rng.Uint32(), Window: 65535, SYN: f.syn, ACK: !f.syn}
		if !f.syn {
			tcp.Ack = rng.Uint32()
		}
		tcp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
		udp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, udp)
	}
	payload := make([]byte, f.payload)
	for i := range payload {
		payload[i] = byte(rng.IntN(256))
	}
	ls = append(ls, gopacket.Payload(append(payload, f.extraBytes...)))
	return serialize(ls...)
}

// setType sets the ethertype of the header in front of the IP layer.
func setType(vlan bool, eth *layers.Ethernet, ls []gopacket.SerializableLayer, t layers.EthernetType) {
	if vlan {
		ls[len(ls)-1].(*layers.Dot1Q).Type = t
		return
	}
	eth.EthernetType = t
}

// ip4 and ip6 draw addresses from small pools, so flows repeat.
func ip4(rng *rand.Rand, pool ...string) net.IP {
	if len(pool) == 0 {
		return net.IPv4(10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(1+rng.IntN(200))).To4()
	}
	return net.ParseIP(pool[rng.IntN(len(pool))]).To4()
}

func ip6(rng *rand.Rand, pool ...string) net.IP {
	if len(pool) == 0 {
		ip := net.ParseIP("fd00::1")
		ip[14], ip[15] = byte(rng.IntN(4)), byte(1+rng.IntN(200))
		return ip
	}
	return net.ParseIP(pool[rng.IntN(len(pool))])
}
