package engine_test

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// etherFrame is an n-byte frame of the given ethertype with a unicast
// destination.
func etherFrame(ethertype uint16, n int) []byte {
	f := make([]byte, max(n, 14))
	f[0] = 0x02
	binary.BigEndian.PutUint16(f[12:], ethertype)
	return f[:n]
}

// udp4 serializes an untagged IPv4/UDP frame from src to dst with ttl.
func udp4(t testing.TB, src, dst string, ttl uint8, payload int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 9000}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(make([]byte, payload))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ipv4Frame is an IPv4/UDP frame with the given TTL.
func ipv4Frame(t testing.TB, ttl uint8) []byte { return udp4(t, "10.1.2.3", "198.51.100.7", ttl, 32) }
