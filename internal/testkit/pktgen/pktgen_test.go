package pktgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestGen_Next_Deterministic(t *testing.T) {
	a, b, c := New(42), New(42), New(43)
	differs := 0
	for i := range 3000 {
		fa, fb, fc := a.Next(), b.Next(), c.Next()
		if !bytes.Equal(fa, fb) {
			t.Fatalf("frame %d differs between two generators with seed 42", i)
		}
		if !bytes.Equal(fa, fc) {
			differs++
		}
	}
	if differs < 2900 {
		t.Errorf("seeds 42 and 43 share %d of 3000 frames", 3000-differs)
	}
}

func TestGen_Next_FitsTestRunLimits(t *testing.T) {
	g := New(1)
	for i := range 20000 {
		f := g.Next()
		if len(f) > MaxLen || len(f) < MinLenFor(f) {
			t.Fatalf("frame %d: %d bytes, want %d..%d", i, len(f), MinLenFor(f), MaxLen)
		}
	}
}

// features classifies a frame by what it exercises.
func features(f Frame) []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
	add(f.Malformed, "malformed")
	add(len(f.Data) < 64, "small")
	add(len(f.Data) > 1600, "jumbo")
	add(len(f.Data) == 60 && f.Data[len(f.Data)-1] == 0, "padded")
	dots := 0
	for _, l := range p.Layers() {
		if l.LayerType() == layers.LayerTypeDot1Q {
			dots++
		}
	}
	add(dots == 1, "vlan")
	add(dots == 2, "qinq")
	add(f.Data[0] == 0xff, "broadcast")
	if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		add(len(ip.Options) > 0, "ipv4-options")
		add(ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0, "ipv4-fragment")
		add(ip.Protocol == layers.IPProtocolIPv4, "ipip")
		add(ip.Protocol == layers.IPProtocolIPv6, "6in4")
		add(ip.TTL <= 1, "ttl-expiring")
		add(bytes.Equal(ip.SrcIP.To4(), []byte{10, 1, 2, 3}), "host-10.1.2.3")
	}
	add(p.Layer(layers.LayerTypeIPv6HopByHop) != nil, "ipv6-hopbyhop")
	add(p.Layer(layers.LayerTypeIPv6Routing) != nil, "ipv6-routing")
	add(p.Layer(layers.LayerTypeIPv6Fragment) != nil, "ipv6-fragment")
	add(p.Layer(layers.LayerTypeIPv6Destination) != nil, "ipv6-dstopts")
	if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		for _, o := range tcp.Options {
			add(tcp.SYN && o.OptionType == layers.TCPOptionKindMSS, "tcp-syn-mss")
		}
		add(tcp.FIN, "tcp-fin")
		add(tcp.RST, "tcp-rst")
	}
	add(p.Layer(layers.LayerTypeDNS) != nil, "dns")
	if ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		add(ic.TypeCode.Type() == layers.ICMPv4TypeEchoRequest, "icmp-echo")
	}
	add(p.Layer(layers.LayerTypeICMPv6Echo) != nil, "icmpv6-echo")
	add(p.Layer(layers.LayerTypeARP) != nil, "arp")
	_, et := l3Offset(f.Data)
	add(et != layers.EthernetTypeIPv4 && et != layers.EthernetTypeIPv6 && et != layers.EthernetTypeARP, "other-ethertype")
	add(bytes.Contains(f.Data, []byte("tcx!")), "signature")
	return out
}

func TestGen_NextFrame_Coverage(t *testing.T) {
	want := []string{
		"malformed", "small", "jumbo", "padded", "vlan", "qinq", "broadcast", "ipv4-options",
		"ipv4-fragment", "ipip", "6in4", "ttl-expiring", "host-10.1.2.3", "ipv6-hopbyhop",
		"ipv6-routing", "ipv6-fragment", "ipv6-dstopts", "tcp-syn-mss", "tcp-fin", "tcp-rst",
		"dns", "icmp-echo", "icmpv6-echo", "arp", "other-ethertype", "signature",
	}
	seen := map[string]int{}
	g := New(7)
	for range 5000 {
		for _, f := range features(g.NextFrame()) {
			seen[f]++
		}
	}
	for _, w := range want {
		if seen[w] < 5 {
			t.Errorf("feature %q in %d of 5000 frames, want at least 5", w, seen[w])
		}
	}
	if m := seen["malformed"]; m > 500 {
		t.Errorf("%d of 5000 frames malformed, want a few percent", m)
	}
}

func TestCheckChecksums_WellFormedFrames(t *testing.T) {
	g := New(3)
	checked := 0
	for i := range 5000 {
		f := g.NextFrame()
		err := CheckChecksums(f.Data)
		if errors.Is(err, ErrNoChecksum) {
			continue
		}
		if err != nil && !f.Malformed {
			t.Fatalf("frame %d (% x): %v", i, f.Data, err)
		}
		checked++
	}
	if checked < 3000 {
		t.Errorf("only %d of 5000 frames had checkable checksums", checked)
	}
}

func TestCheckChecksums_DetectsCorruption(t *testing.T) {
	g := New(5)
	for n := 0; n < 200; {
		f := g.NextFrame()
		if f.Malformed || CheckChecksums(f.Data) != nil {
			continue
		}
		l3, et := l3Offset(f.Data)
		// Flip a bit in the source address: covered by the IPv4 header
		// checksum and by every pseudo header.
		at := l3 + 12
		if et == layers.EthernetTypeIPv6 {
			at = l3 + 8
		}
		f.Data[at] ^= 0x01
		if err := CheckChecksums(f.Data); err == nil || errors.Is(err, ErrNoChecksum) {
			t.Fatalf("corrupted frame passed: %v", err)
		}
		n++
	}
}

func TestMinLenFor_Ethertypes(t *testing.T) {
	frame := make([]byte, 14)
	for et, want := range map[uint16]int{0x0800: MinLenIPv4, 0x86dd: MinLenIPv6, 0x8100: MinLen, 0x0806: MinLen} {
		binary.BigEndian.PutUint16(frame[12:], et)
		if got := MinLenFor(frame); got != want {
			t.Errorf("MinLenFor(ethertype %#04x) = %d, want %d", et, got, want)
		}
	}
}
