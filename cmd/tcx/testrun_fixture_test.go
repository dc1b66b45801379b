package main

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The test-run fixtures: frames built with gopacket, committed as a pcap
// and a hex file so that the golden tests (and README readers) have inputs
// that need no generator. TestTestRunFixtures_UpToDate keeps them equal to
// what the builders below produce; -update rewrites them.
const (
	fixtureDir  = "testdata/testrun"
	fixturePcap = fixtureDir + "/mixed.pcap"
	fixtureHex  = fixtureDir + "/frames.hex"
	progsDir    = "../../testdata/progs"
)

type namedFrame struct {
	name string
	data []byte
}

// fixtureFrames are the frames of both fixtures, in order.
func fixtureFrames(t testing.TB) []namedFrame {
	t.Helper()
	macHost := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macRouter := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	v4 := func(src, dst string, ttl uint8, proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: ttl, Protocol: proto, Id: 0x1234,
			Flags: layers.IPv4DontFragment, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	}
	v6 := func(src, dst string, next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
			SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: macHost, DstMAC: macRouter, EthernetType: et}
	}
	udp := func(ip gopacket.NetworkLayer, sport, dport uint16) *layers.UDP {
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		return u
	}
	ip1 := v4("10.0.0.1", "8.8.8.8", 64, layers.IPProtocolUDP)
	ip2 := v4("192.168.1.10", "198.51.100.7", 64, layers.IPProtocolTCP)
	syn := &layers.TCP{SrcPort: 40001, DstPort: 443, Seq: 1000, SYN: true, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}
	if err := syn.SetNetworkLayerForChecksum(ip2); err != nil {
		t.Fatal(err)
	}
	ip3 := v4("10.0.0.2", "10.0.0.1", 64, layers.IPProtocolICMPv4)
	echo := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}
	ip4 := v6("fd00::1", "2001:db8::1", layers.IPProtocolUDP)
	ip5 := v4("10.0.0.1", "8.8.8.8", 1, layers.IPProtocolUDP)
	ip6 := v4("10.0.0.3", "10.0.0.4", 64, layers.IPProtocolUDP)
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: macHost, SourceProtAddress: []byte{10, 0, 0, 2},
		DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 1}}
	bcast := eth(layers.EthernetTypeARP)
	bcast.DstMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

	return []namedFrame{
		{"udp 10.0.0.1:40000 -> 8.8.8.8:53", serialize(t, eth(layers.EthernetTypeIPv4), ip1, udp(ip1, 40000, 53), gopacket.Payload("hello"))},
		{"tcp syn 192.168.1.10:40001 -> 198.51.100.7:443, mss 1460", serialize(t, eth(layers.EthernetTypeIPv4), ip2, syn)},
		{"icmp echo request 10.0.0.2 -> 10.0.0.1", serialize(t, eth(layers.EthernetTypeIPv4), ip3, echo, gopacket.Payload("ping"))},
		{"udp6 [fd00::1]:5353 -> [2001:db8::1]:5353", serialize(t, eth(layers.EthernetTypeIPv6), ip4, udp(ip4, 5353, 5353), gopacket.Payload("six"))},
		{"udp 10.0.0.1:40000 -> 8.8.8.8:53, ttl 1", serialize(t, eth(layers.EthernetTypeIPv4), ip5, udp(ip5, 40000, 53), gopacket.Payload("hello"))},
		{"udp 10.0.0.3:50000 -> 10.0.0.4:50001 (qos range)", serialize(t, eth(layers.EthernetTypeIPv4), ip6, udp(ip6, 50000, 50001), gopacket.Payload("rtp"))},
		{"arp who-has 10.0.0.1 tell 10.0.0.2", serialize(t, bcast, arp)},
	}
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// pcapBytes writes frames as a classic pcap with pcapgo, one second apart
// from a fixed epoch so the file never changes.
func pcapBytes(t testing.TB, frames []namedFrame) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: epoch.Add(time.Duration(i) * time.Second), CaptureLength: len(f.data), Length: len(f.data)}
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// hexFileBytes writes frames one per line, each after a comment naming it,
// bytes colon-separated for the first 14 (the Ethernet header) to show
// the separators the reader accepts.
func hexFileBytes(frames []namedFrame) []byte {
	var buf bytes.Buffer
	buf.WriteString("# test-run fixture: one frame per line (see testrun_fixture_test.go)\n")
	for _, f := range frames {
		fmt.Fprintf(&buf, "# %s\n", f.name)
		for i, c := range f.data[:14] {
			if i > 0 {
				buf.WriteByte(':')
			}
			fmt.Fprintf(&buf, "%02x", c)
		}
		fmt.Fprintf(&buf, " %x\n", f.data[14:])
	}
	return buf.Bytes()
}

func TestTestRunFixtures_UpToDate(t *testing.T) {
	frames := fixtureFrames(t)
	for path, want := range map[string][]byte{
		fixturePcap: pcapBytes(t, frames),
		fixtureHex:  hexFileBytes(frames),
	} {
		compareFile(t, path, want)
	}
}
