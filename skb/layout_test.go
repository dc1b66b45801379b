package skb_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tcxgo/tcx/skb"
)

func TestPacket_ChangeProto(t *testing.T) {
	v4 := ipv4L4(t, true, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1, 2)
	p, _ := skb.New(v4, skb.Loopback())
	p.SetHash(9)
	if got := p.ChangeProto(0xdd86, 0); got != 0 { // bpf_htons(ETH_P_IPV6)
		t.Fatal(got)
	}
	// 20 zero bytes open right after the MAC header; the ethertype in the
	// packet is the program's to rewrite.
	want := append(append(append([]byte{}, v4[:14]...), make([]byte, 20)...), v4[14:]...)
	if !bytes.Equal(p.Data(), want) || p.Protocol != skb.EthPIPv6 || p.Hash != 0 || p.NetworkOffset() != 14 {
		t.Fatalf("4to6: protocol %#04x hash %d netoff %d\n%x", p.Protocol, p.Hash, p.NetworkOffset(), p.Data())
	}
	if got := p.ChangeProto(0x0008, 0); got != 0 || !bytes.Equal(p.Data(), v4) || p.Protocol != skb.EthPIP {
		t.Fatalf("6to4: %d %x", got, p.Data())
	}
	for _, c := range []struct {
		name  string
		proto uint16
		flags uint64
		want  int64
	}{
		{"flags", 0xdd86, 1, -22},
		{"same protocol", 0x0008, 0, -skb.ENOTSUPP},
		{"not IP", 0x0608, 0, -skb.ENOTSUPP},
	} {
		if got := p.ChangeProto(c.proto, c.flags); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	short, _ := skb.New(testFrame(skb.EthPIPv6, 30), skb.Loopback())
	if got := short.ChangeProto(0x0008, 0); got != -12 {
		t.Errorf("6to4 on 30 bytes: %d, want -ENOMEM", got)
	}
}

func TestPacket_ChangeHead(t *testing.T) {
	frame := testFrame(skb.EthPIP, 60)
	p, _ := skb.New(frame, skb.Loopback())
	if got := p.ChangeHead(4, 0); got != 0 {
		t.Fatal(got)
	}
	if !bytes.Equal(p.Data(), append(make([]byte, 4), frame...)) || p.MACOffset() != 0 || p.NetworkOffset() != 18 || p.MACLen() != 18 || p.Protocol != skb.EthPIP {
		t.Fatalf("macoff %d netoff %d maclen %d", p.MACOffset(), p.NetworkOffset(), p.MACLen())
	}
	for _, c := range []struct {
		n     uint32
		flags uint64
		want  int64
	}{
		{1, 1, -22},
		{skb.MaxLen - 64, 0, 0},
		{1, 0, -22},          // MaxLen reached
		{0xffffffff, 0, -22}, // wraps
	} {
		if got := p.ChangeHead(c.n, c.flags); got != c.want {
			t.Errorf("ChangeHead(%d, %d) = %d, want %d", c.n, c.flags, got, c.want)
		}
	}
	if p.Len() != skb.MaxLen {
		t.Errorf("len %d, want %d", p.Len(), skb.MaxLen)
	}
}

func TestPacket_ChangeTail(t *testing.T) {
	frame := testFrame(skb.EthPIP, 60)
	p, _ := skb.New(frame, skb.Loopback())
	p.IPSummed = skb.ChecksumComplete
	p.GSOSize, p.GSOSegs = 100, 3
	if got := p.ChangeTail(100, 0); got != 0 {
		t.Fatal(got)
	}
	if !bytes.Equal(p.Data(), append(append([]byte{}, frame...), make([]byte, 40)...)) {
		t.Fatal("growth is not zero-filled")
	}
	if p.IPSummed != skb.ChecksumNone || p.GSOSize != 0 || p.GSOSegs != 0 {
		t.Error("growth kept CHECKSUM_COMPLETE or GSO state")
	}
	for _, c := range []struct {
		n     uint32
		flags uint64
		want  int64
		len   int
	}{
		{30, 0, 0, 30},
		{14, 0, 0, 14}, // down to the network header
		{13, 0, -22, 14},
		{40, 1, -22, 14},
		{skb.MaxLen, 0, 0, skb.MaxLen},
		{skb.MaxLen + 1, 0, -22, skb.MaxLen},
	} {
		if got := p.ChangeTail(c.n, c.flags); got != c.want || p.Len() != c.len {
			t.Errorf("ChangeTail(%d, %d) = %d len %d, want %d len %d", c.n, c.flags, got, p.Len(), c.want, c.len)
		}
	}
	q, _ := skb.New(frame, skb.Loopback())
	q.SetChecksumPartial(34, 16)
	if got := q.ChangeTail(51, 0); got != -22 {
		t.Errorf("trimming into a CHECKSUM_PARTIAL field: %d", got)
	}
	if got := q.ChangeTail(52, 0); got != 0 {
		t.Errorf("trimming to the end of a CHECKSUM_PARTIAL field: %d", got)
	}
}

// decode parses a frame with gopacket.
func decode(b []byte) gopacket.Packet {
	return gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
}

func TestPacket_AdjustRoom_IPIPEncapDecap(t *testing.T) {
	inner := ipv4L4(t, true, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1000, 53)
	p, _ := skb.New(inner, skb.Loopback())
	p.CsumLevel(skb.CsumLevelInc)
	if got := p.AdjustRoom(20, skb.AdjRoomMAC, skb.FAdjRoomEncapL3IPv4); got != 0 {
		t.Fatal(got)
	}
	if !p.Encapsulation || p.IPSummed != skb.ChecksumNone || p.NetworkOffset() != 14 {
		t.Errorf("encap state: %v %d %d", p.Encapsulation, p.IPSummed, p.NetworkOffset())
	}
	// The program writes the outer header into the room.
	outer := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolIPv4,
		SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}, Length: uint16(p.Len() - 14)}
	buf := gopacket.NewSerializeBuffer()
	if err := outer.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatal(err)
	}
	if p.StoreBytes(14, buf.Bytes(), 0) != 0 {
		t.Fatal("store outer header")
	}
	pkt := decode(p.Data())
	ips := []*layers.IPv4{}
	for _, l := range pkt.Layers() {
		if ip, ok := l.(*layers.IPv4); ok {
			ips = append(ips, ip)
		}
	}
	if len(ips) != 2 || !ips[1].SrcIP.Equal(net.IP{10, 0, 0, 1}) || pkt.Layer(layers.LayerTypeUDP) == nil {
		t.Fatalf("gopacket does not see IPv4-in-IPv4/UDP: %v", pkt)
	}
	if got := p.AdjustRoom(-20, skb.AdjRoomMAC, skb.FAdjRoomDecapL3IPv4); got != 0 {
		t.Fatal(got)
	}
	if !bytes.Equal(p.Data(), inner) {
		t.Fatalf("decap did not restore the packet\n%x\n%x", p.Data(), inner)
	}
	if got := p.AdjustRoom(20, skb.AdjRoomMAC, skb.FAdjRoomEncapL3IPv4); got != -114 {
		t.Errorf("second encapsulation: %d, want -EALREADY", got)
	}
}

func TestPacket_AdjustRoom_NetModeAndTransport(t *testing.T) {
	frame := ipv4L4(t, true, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1, 2)
	p, _ := skb.New(frame, skb.Loopback())
	// Room after the IP header for a UDP tunnel header (IPv4 over UDP).
	if got := p.AdjustRoom(8, skb.AdjRoomNet, skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL4UDP); got != 0 {
		t.Fatal(got)
	}
	want := append(append(append([]byte{}, frame[:34]...), make([]byte, 8)...), frame[34:]...)
	if !bytes.Equal(p.Data(), want) || p.TransportOffset() != 34 || p.NetworkOffset() != 14 {
		t.Fatalf("transport %d network %d\n%x", p.TransportOffset(), p.NetworkOffset(), p.Data())
	}
	// The transport header now bounds change_tail, and an encapsulated
	// packet cannot change its tail at all.
	if got := p.ChangeTail(33, 0); got != -22 {
		t.Errorf("trim below the transport header: %d", got)
	}
	if got := p.ChangeTail(60, 0); got != -skb.ENOTSUPP {
		t.Errorf("trim an encapsulated packet: %d", got)
	}
}

func TestPacket_AdjustRoom_Errors(t *testing.T) {
	v4 := testFrame(skb.EthPIP, 60)
	const encap4 = skb.FAdjRoomEncapL3IPv4
	for _, c := range []struct {
		name  string
		frame []byte
		diff  int32
		mode  uint32
		flags uint64
		want  int64
	}{
		{"unknown flag", v4, 4, skb.AdjRoomMAC, 1 << 9, -22},
		{"too large", v4, 0x1000, skb.AdjRoomMAC, 0, -14},
		{"INT_MIN", v4, -1 << 31, skb.AdjRoomMAC, 0, -14},
		{"not IP", testFrame(0x0806, 60), 4, skb.AdjRoomMAC, 0, -skb.ENOTSUPP},
		{"unknown mode", v4, 4, 2, 0, -skb.ENOTSUPP},
		{"unknown mode beats decap flags", v4, 4, 2, skb.FAdjRoomDecapL3IPv4, -skb.ENOTSUPP},
		{"decap flag on grow", v4, 4, skb.AdjRoomMAC, skb.FAdjRoomDecapL3IPv4, -22},
		{"both decap flags", v4, -4, skb.AdjRoomMAC, skb.FAdjRoomDecapL3IPv4 | skb.FAdjRoomDecapL3IPv6, -22},
		{"shrink below an IPv4 header", v4, -27, skb.AdjRoomMAC, 0, -skb.ENOTSUPP},
		{"shrink to an IPv4 header", v4, -26, skb.AdjRoomMAC, 0, 0},
		{"shrink needs an IPv6 header after decap", v4, -7, skb.AdjRoomMAC, skb.FAdjRoomDecapL3IPv6, -skb.ENOTSUPP},
		{"shrink the whole network part", v4, -46, skb.AdjRoomMAC, 0, -skb.ENOTSUPP},
		{"encap flags on shrink", v4, -4, skb.AdjRoomMAC, encap4, -22},
		{"both L3 encaps", v4, 20, skb.AdjRoomMAC, encap4 | skb.FAdjRoomEncapL3IPv6, -22},
		{"GRE and UDP", v4, 20, skb.AdjRoomMAC, encap4 | skb.FAdjRoomEncapL4GRE | skb.FAdjRoomEncapL4UDP, -22},
		{"inner MAC too short for Ethernet", v4, 40, skb.AdjRoomMAC, encap4 | skb.FAdjRoomEncapL2Eth | skb.FAdjRoomEncapL2(13), -22},
		{"inner MAC longer than the room", v4, 20, skb.AdjRoomMAC, encap4 | skb.FAdjRoomEncapL2(21), -22},
		{"L2 ETH encap", v4, 40, skb.AdjRoomMAC, encap4 | skb.FAdjRoomEncapL2Eth | skb.FAdjRoomEncapL2(14), 0},
		{"grow past MaxLen", testFrame(skb.EthPIP, skb.MaxLen-100), 101, skb.AdjRoomMAC, 0, -skb.ENOTSUPP},
		{"zero", v4, 0, skb.AdjRoomNet, 0, 0},
	} {
		p, _ := skb.New(c.frame, skb.Loopback())
		if got := p.AdjustRoom(c.diff, c.mode, c.flags); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	gso, _ := skb.New(v4, skb.Loopback())
	gso.GSOSize = 1000
	if got := gso.AdjustRoom(4, skb.AdjRoomMAC, 0); got != -skb.ENOTSUPP {
		t.Errorf("non-TCP GSO: %d", got)
	}
	gso.GSOType = skb.GSOTCPv4
	if got := gso.AdjustRoom(4, skb.AdjRoomMAC, 0); got != 0 || gso.GSOSize != 996 || gso.GSOType&skb.GSODodgy == 0 {
		t.Errorf("TCP GSO: %d size %d type %#x", got, gso.GSOSize, gso.GSOType)
	}
}

func TestPacket_AdjustRoom_HeadroomReallocationSetsTransport(t *testing.T) {
	// test_run's skb has 64 bytes of headroom. Growing by 100 makes the
	// kernel reallocate with 64 more; the unset transport header (~0) moves
	// with the other offsets and lands 65 bytes before the old data: 35
	// bytes into the new packet.
	p, _ := skb.New(testFrame(skb.EthPIP, 60), skb.Loopback())
	if got := p.AdjustRoom(100, skb.AdjRoomMAC, 0); got != 0 {
		t.Fatal(got)
	}
	if p.TransportOffset() != 35 {
		t.Fatalf("transport offset %d, want 35", p.TransportOffset())
	}
	if p.ChangeTail(34, 0) != -22 || p.ChangeTail(35, 0) != 0 {
		t.Error("change_tail does not stop at the transport header")
	}
	q, _ := skb.New(testFrame(skb.EthPIP, 60), skb.Loopback())
	if q.AdjustRoom(64, skb.AdjRoomMAC, 0) != 0 || q.TransportOffset() != -1 {
		t.Error("growth within the headroom set the transport header")
	}
}

func vlanFrame(t *testing.T, tags ...uint16) []byte {
	t.Helper()
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0},
		EthernetType: layers.EthernetTypeDot1Q}}
	for i, tci := range tags {
		next := layers.EthernetTypeDot1Q
		if i == len(tags)-1 {
			next = layers.EthernetTypeIPv4
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: tci & 0xfff, Priority: uint8(tci >> 13), Type: next})
	}
	ls = append(ls, &layers.IPv4{Version: 4, TTL: 1, SrcIP: net.IP{1, 2, 3, 4}, DstIP: net.IP{5, 6, 7, 8}, Protocol: 59}, gopacket.Payload("xxxxxx"))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPacket_VlanPushPop(t *testing.T) {
	plain := ipv4L4(t, true, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1, 2)
	p, _ := skb.New(plain, skb.Loopback())
	if p.VlanPush(0x0081, 0x0123) != 0 || !bytes.Equal(p.Data(), plain) || !p.VlanPresent || p.VlanTCI != 0x123 || p.VlanProto != skb.EthP8021Q {
		t.Fatal("first push must stay out of band")
	}
	if p.VlanPush(0x1234, 0x0456) != 0 || p.VlanProto != skb.EthP8021Q {
		t.Fatal("unknown TPIDs mean 802.1Q")
	}
	// The first tag went into the packet.
	dot1q, ok := decode(p.Data()).Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
	if !ok || dot1q.VLANIdentifier != 0x123 || dot1q.Type != layers.EthernetTypeIPv4 || p.Protocol != skb.EthP8021Q || p.VlanTCI != 0x456 {
		t.Fatalf("after QinQ push: %v protocol %#04x", decode(p.Data()), p.Protocol)
	}
	if p.NetworkOffset() != 14 || p.MACLen() != 14 {
		t.Errorf("network offset %d mac_len %d after the in-packet tag (Linux 6.18 keeps 14)", p.NetworkOffset(), p.MACLen())
	}
	// Pop drops the out-of-band tag and moves the in-packet one out.
	if p.VlanPop() != 0 || !bytes.Equal(p.Data(), plain) || p.VlanTCI != 0x123 || p.Protocol != skb.EthPIP {
		t.Fatalf("pop: %x tci %#x", p.Data(), p.VlanTCI)
	}
	if p.VlanPop() != 0 || p.VlanPresent || p.VlanProto != 0 || p.VlanPop() != 0 {
		t.Fatal("popping the last tag")
	}

	tagged := vlanFrame(t, 0x2005, 0x0007)
	q, _ := skb.New(tagged, skb.Loopback())
	if q.Protocol != skb.EthP8021Q || q.VlanPop() != 0 {
		t.Fatal("pop of an in-packet tag")
	}
	// Outer tag removed; the inner one became the out-of-band tag.
	if !q.VlanPresent || q.VlanTCI != 0x0007 || q.Protocol != skb.EthPIP || q.Len() != len(tagged)-8 {
		t.Fatalf("present %v tci %#x protocol %#04x len %d", q.VlanPresent, q.VlanTCI, q.Protocol, q.Len())
	}
	if ip := decode(q.Data()).Layer(layers.LayerTypeIPv4); ip == nil {
		t.Fatal("untagged result does not decode as IPv4")
	}
	short, _ := skb.New(testFrame(skb.EthP8021Q, 17), skb.Loopback())
	if got := short.VlanPop(); got != -12 {
		t.Errorf("pop from a 17-byte frame: %d, want -ENOMEM", got)
	}
}

func TestPacket_EcnSetCE(t *testing.T) {
	for _, c := range []struct {
		name     string
		tos, ret uint8
		wantTOS  uint8
	}{
		{"Not-ECT", 0x00, 0, 0x00},
		{"ECT(1)", 0x01, 1, 0x03},
		{"ECT(0)", 0x02, 1, 0x03},
		{"CE", 0x03, 1, 0x03},
		{"DSCP kept", 0xb8 | 0x02, 1, 0xbb},
	} {
		ip := &layers.IPv4{Version: 4, TOS: c.tos, TTL: 9, Protocol: 59, SrcIP: net.IP{1, 2, 3, 4}, DstIP: net.IP{4, 3, 2, 1}}
		buf := gopacket.NewSerializeBuffer()
		gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
			&layers.Ethernet{EthernetType: layers.EthernetTypeIPv4, SrcMAC: make(net.HardwareAddr, 6), DstMAC: make(net.HardwareAddr, 6)}, ip)
		p, _ := skb.New(buf.Bytes(), skb.Loopback())
		if got := p.EcnSetCE(); got != int64(c.ret) {
			t.Errorf("%s: %d, want %d", c.name, got, c.ret)
		}
		hdr := p.Data()[14:34]
		if hdr[1] != c.wantTOS || onesSum(hdr) != 0xffff {
			t.Errorf("%s: tos %#x, header sum %#x", c.name, hdr[1], onesSum(hdr))
		}
	}
	v6 := testFrame(skb.EthPIPv6, 60)
	binary.BigEndian.PutUint32(v6[14:], 6<<28|0x2d<<22|2<<20|0xabcde) // DSCP, ECT(0), flow label
	p, _ := skb.New(v6, skb.Loopback())
	if p.EcnSetCE() != 1 || binary.BigEndian.Uint32(p.Data()[14:]) != 6<<28|0x2d<<22|3<<20|0xabcde {
		t.Errorf("IPv6: %x", p.Data()[14:18])
	}
	binary.BigEndian.PutUint32(v6[14:], 6<<28)
	q, _ := skb.New(v6, skb.Loopback())
	if q.EcnSetCE() != 0 {
		t.Error("IPv6 Not-ECT marked")
	}
	// Behind an in-packet tag the protocol is IPv4, but the header is taken
	// at the network header, which test_run puts right after the Ethernet
	// header: the tag. Its TCI byte 0x05 reads as an ECT(0) TOS and is
	// "marked", as the kernel does.
	tagged := vlanFrame(t, 5)
	r, _ := skb.New(tagged, skb.Loopback())
	if got := r.EcnSetCE(); got != 1 || r.Data()[15] != 0x07 {
		t.Errorf("tagged: %d, TCI byte %#x", got, r.Data()[15])
	}
	arp, _ := skb.New(testFrame(0x0806, 60), skb.Loopback())
	if arp.EcnSetCE() != 0 {
		t.Error("ARP marked")
	}
}
