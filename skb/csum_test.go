package skb_test

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/tcxgo/tcx/skb"
)

// onesSum is the RFC 1071 reference: the 16-bit ones' complement sum of b
// read as big-endian words (an odd last byte is padded with zero), folded
// with end-around carry. 0 only for all-zero input.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// onesEqual compares two ones' complement values, where 0 and 0xffff both
// mean zero.
func onesEqual(a, b uint16) bool {
	return a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

func TestChecksum_RFC1071Example(t *testing.T) {
	// RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the
	// checksum is its complement 220d.
	if got := skb.Checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); got != 0x220d {
		t.Fatalf("Checksum = %#04x, want 0x220d", got)
	}
}

func TestChecksum_MatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		b := make([]byte, r.IntN(80))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := skb.Checksum(b), ^onesSum(b); !onesEqual(got, want) {
			t.Fatalf("Checksum(%x) = %#04x, want %#04x", b, got, want)
		}
	}
}

func TestCsumDiff_Values(t *testing.T) {
	// Results are the folded (not complemented) sum in the program's
	// little-endian view, i.e. byte-swapped relative to RFC 1071.
	for _, c := range []struct {
		name     string
		from, to []byte
		seed     uint32
		want     int64
	}{
		// 0x0201 + 0x0403 as little-endian words.
		{"push 4 bytes", nil, []byte{1, 2, 3, 4}, 0, 0x0604},
		// ~(~0 + 0x04030201) = 0xfbfcfdfe, folded 0xfbfc + 0xfdfe = 0xf9fb.
		{"pull 4 bytes", []byte{1, 2, 3, 4}, nil, 0, 0xf9fb},
		// x - x is ones' complement "negative zero".
		{"diff of equal words", []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4}, 0, 0xffff},
		// Nothing to sum: the seed, folded (0x1234 + 0x5678).
		{"seed only", nil, nil, 0x12345678, 0x68ac},
		// Since 6.13 lengths need not be multiples of 4: 0x04030201 minus
		// 0x0201+0x03, folded.
		{"odd from", []byte{1, 2, 3}, []byte{1, 2, 3, 4}, 0, 0x0400},
		// A seed of ~0 is negative zero and changes nothing.
		{"seed all ones", nil, []byte{1, 2, 3, 4}, 0xffffffff, 0x0604},
	} {
		if got := skb.CsumDiff(c.from, c.to, c.seed); got != c.want {
			t.Errorf("%s: CsumDiff = %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestCsumDiff_IsIncrementalUpdate(t *testing.T) {
	// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Feeding CsumDiff(m, m') to
	// bpf_l3_csum_replace with size 0 must give the checksum of the changed
	// header.
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		hdr := make([]byte, 20)
		for i := range hdr {
			hdr[i] = byte(r.Uint32())
		}
		binary.BigEndian.PutUint16(hdr[10:], 0)
		binary.BigEndian.PutUint16(hdr[10:], skb.Checksum(hdr))
		off := 4 * r.IntN(5)
		var m2 [4]byte
		binary.LittleEndian.PutUint32(m2[:], r.Uint32())
		diff := skb.CsumDiff(hdr[off:off+4], m2[:], 0)

		frame := append(testFrame(0x9999, 14), hdr...)
		p, err := skb.New(frame, skb.Loopback())
		if err != nil {
			t.Fatal(err)
		}
		if ret := p.StoreBytes(uint32(14+off), m2[:], 0); ret != 0 {
			t.Fatal(ret)
		}
		if ret := p.L3CsumReplace(14+10, 0, uint64(diff), 0); ret != 0 {
			t.Fatal(ret)
		}
		got := p.Data()[14:]
		if onesSum(got) != 0xffff && onesSum(got) != 0 {
			t.Fatalf("header %x no longer sums to zero after the update", got)
		}
	}
}

// ipv4TCP serialises Ethernet/IPv4/TCP (or UDP) with correct checksums.
func ipv4L4(t *testing.T, udp bool, src, dst net.IP, sport, dport uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Id: 0x1234}
	payload := gopacket.Payload("payload bytes for the checksum!")
	var l4 gopacket.SerializableLayer
	if udp {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		u.SetNetworkLayerForChecksum(ip)
		l4 = u
	} else {
		ip.Protocol = layers.IPProtocolTCP
		tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 7, SYN: true, Window: 1000}
		tc.SetNetworkLayerForChecksum(ip)
		l4 = tc
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, eth, ip, l4, payload); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func le32(b []byte) uint64 { return uint64(binary.LittleEndian.Uint32(b)) }
func le16(b []byte) uint64 { return uint64(binary.LittleEndian.Uint16(b)) }

func TestPacket_CsumReplace_SNATMatchesGopacket(t *testing.T) {
	for _, udp := range []bool{false, true} {
		orig := ipv4L4(t, udp, net.IP{10, 0, 0, 1}, net.IP{192, 0, 2, 7}, 40000, 53)
		want := ipv4L4(t, udp, net.IP{203, 0, 113, 9}, net.IP{192, 0, 2, 7}, 61000, 53)
		p, err := skb.New(orig, skb.Loopback())
		if err != nil {
			t.Fatal(err)
		}
		const ipOff, srcOff, l4Off = 14, 14 + 12, 14 + 20
		csumOff := uint32(l4Off + 16)
		l4Flags := uint64(skb.FPseudoHdr)
		if udp {
			csumOff = l4Off + 6
			l4Flags |= skb.FMarkMangled0
		}
		d := p.Data()
		oldIP, newIP := le32(d[srcOff:]), le32(want[srcOff:])
		oldPort, newPort := le16(d[l4Off:]), le16(want[l4Off:])
		// What a SNAT program does: rewrite, then fix both checksums.
		steps := []int64{
			p.StoreBytes(srcOff, want[srcOff:srcOff+4], 0),
			p.L3CsumReplace(ipOff+10, oldIP, newIP, 4),
			p.L4CsumReplace(csumOff, oldIP, newIP, l4Flags|4),
			p.StoreBytes(l4Off, want[l4Off:l4Off+2], 0),
			p.L4CsumReplace(csumOff, oldPort, newPort, l4Flags&^skb.FPseudoHdr|2),
		}
		for i, ret := range steps {
			if ret != 0 {
				t.Fatalf("udp=%v step %d returned %d", udp, i, ret)
			}
		}
		if got := p.Data(); string(got) != string(want) {
			t.Errorf("udp=%v: after SNAT\n got  %x\n want %x (gopacket)", udp, got, want)
		}
	}
}

func TestPacket_L4CsumReplace_IPv6PrefixMatchesGopacket(t *testing.T) {
	mk := func(src net.IP) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src, DstIP: net.ParseIP("2001:db8::53")}
		u := &layers.UDP{SrcPort: 5353, DstPort: 53}
		u.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, eth, ip, u, gopacket.Payload("q")); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	orig, want := mk(net.ParseIP("fd00::1")), mk(net.ParseIP("2001:db8:ffff::1"))
	p, _ := skb.New(orig, skb.Loopback())
	const srcOff, csumOff = 14 + 8, 14 + 40 + 6
	// NPTv6: csum_diff over the 16-byte address, folded in with size 0.
	diff := skb.CsumDiff(orig[srcOff:srcOff+16], want[srcOff:srcOff+16], 0)
	if ret := p.StoreBytes(srcOff, want[srcOff:srcOff+16], 0); ret != 0 {
		t.Fatal(ret)
	}
	if ret := p.L4CsumReplace(csumOff, 0, uint64(diff), skb.FPseudoHdr|skb.FMarkMangled0|skb.FIPv6); ret != 0 {
		t.Fatal(ret)
	}
	if got := p.Data(); string(got) != string(want) {
		t.Errorf("after prefix rewrite\n got  %x\n want %x (gopacket)", got, want)
	}
}

func TestPacket_L4CsumReplace_Mangled0(t *testing.T) {
	frame := ipv4L4(t, true, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1, 2)
	const csumOff = 14 + 20 + 6
	t.Run("zero checksum stays zero", func(t *testing.T) {
		f := append([]byte(nil), frame...)
		f[csumOff], f[csumOff+1] = 0, 0
		p, _ := skb.New(f, skb.Loopback())
		// Even with an invalid size: the zero test comes first.
		if ret := p.L4CsumReplace(csumOff, 1, 2, skb.FMarkMangled0|3); ret != 0 {
			t.Fatalf("ret %d", ret)
		}
		if d := p.Data(); d[csumOff] != 0 || d[csumOff+1] != 0 {
			t.Fatalf("checksum became %x", d[csumOff:csumOff+2])
		}
	})
	t.Run("a result of zero is written as 0xffff", func(t *testing.T) {
		f := append([]byte(nil), frame...)
		// Field 1 (little-endian view): replacing 0 by 1 gives ~(~1 + 1) = 0.
		f[csumOff], f[csumOff+1] = 0x01, 0x00
		p, _ := skb.New(f, skb.Loopback())
		if ret := p.L4CsumReplace(csumOff, 0, 1, skb.FMarkMangled0|2); ret != 0 {
			t.Fatalf("ret %d", ret)
		}
		if d := p.Data(); d[csumOff] != 0xff || d[csumOff+1] != 0xff {
			t.Fatalf("checksum %x, want ffff", d[csumOff:csumOff+2])
		}
		q, _ := skb.New(f, skb.Loopback())
		q.L4CsumReplace(csumOff, 0, 1, 2)
		if d := q.Data(); d[csumOff] != 0 || d[csumOff+1] != 0 {
			t.Fatalf("without the flag the checksum is %x, want 0000", d[csumOff:csumOff+2])
		}
	})
}

func TestPacket_CsumReplace_Errors(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	for _, c := range []struct {
		name      string
		l4        bool
		off       uint32
		from, flg uint64
		want      int64
	}{
		{"l3 unknown flag", false, 24, 0, skb.FPseudoHdr | 4, -22},
		{"l3 odd offset", false, 23, 0, 4, -14},
		{"l3 offset above 0xffff", false, 0x10000, 0, 4, -14},
		{"l3 past the tail", false, 39, 0, 4, -14},
		{"l3 field ends at the tail", false, 38, 0, 4, 0},
		{"l3 size 3", false, 24, 0, 3, -22},
		{"l3 diff with from", false, 24, 1, 0, -22},
		{"l4 unknown flag", true, 24, 0, 1 << 8, -22},
		{"l4 odd offset", true, 25, 0, 2, -14},
		{"l4 size 1", true, 24, 0, skb.FPseudoHdr | 1, -22},
		{"l4 diff with from", true, 24, 7, 0, -22},
		{"l4 ipv6 flag is known", true, 24, 0, skb.FIPv6, 0},
	} {
		var got int64
		if c.l4 {
			got = p.L4CsumReplace(c.off, c.from, 0x1234, c.flg)
		} else {
			got = p.L3CsumReplace(c.off, c.from, 0x1234, c.flg)
		}
		if got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

func TestPacket_L4CsumReplace_PartialPseudoHeader(t *testing.T) {
	// With CHECKSUM_PARTIAL the field holds the uncomplemented pseudo-header
	// sum; an address change must keep it equal to the sum of the new one.
	pseudo := func(src, dst [4]byte) uint16 {
		b := append(append(append([]byte{}, src[:]...), dst[:]...), 0, 17, 0, 20)
		return onesSum(b)
	}
	src, dst, src2 := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, [4]byte{198, 51, 100, 200}
	frame := ipv4L4(t, true, src[:], dst[:], 1, 2)
	const csumOff = 14 + 20 + 6
	binary.BigEndian.PutUint16(frame[csumOff:], pseudo(src, dst))
	p, _ := skb.New(frame, skb.Loopback())
	p.SetChecksumPartial(14+20, 6)
	if ret := p.L4CsumReplace(csumOff, le32(src[:]), le32(src2[:]), skb.FPseudoHdr|4); ret != 0 {
		t.Fatal(ret)
	}
	got := binary.BigEndian.Uint16(p.Data()[csumOff:])
	if !onesEqual(got, pseudo(src2, dst)) {
		t.Fatalf("partial checksum %#04x, want pseudo sum %#04x", got, pseudo(src2, dst))
	}
	// Without the pseudo-header flag a PARTIAL checksum is left alone.
	if p.L4CsumReplace(csumOff, 1, 2, 2); binary.BigEndian.Uint16(p.Data()[csumOff:]) != got {
		t.Fatal("non-pseudo replace touched a CHECKSUM_PARTIAL field")
	}
}

// completeSum is what skb->csum must be equivalent to while the packet is
// CHECKSUM_COMPLETE (with tc_at_ingress false the sum covers all of data),
// in the little-endian view the kernel keeps it in.
func completeSum(d []byte) uint16 { return bits.ReverseBytes16(onesSum(d)) }

func csumFold16(c uint32) uint16 {
	c = c&0xffff + c>>16
	c = c&0xffff + c>>16
	return uint16(c)
}

func TestPacket_ChecksumComplete_FollowsTheBytes(t *testing.T) {
	// Every helper that moves bytes keeps a CHECKSUM_COMPLETE sum equal to
	// the ones' complement sum of the packet: stores with
	// BPF_F_RECOMPUTE_CSUM (also at odd offsets), VLAN tags in and out of
	// the packet, room for headers, NAT64 room, ECN marks.
	r := rand.New(rand.NewPCG(7, 8))
	for it := range 500 {
		frame := randFrame(r)
		p, err := skb.New(frame, skb.Loopback())
		if err != nil {
			continue
		}
		p.IPSummed = skb.ChecksumComplete
		p.Csum = uint32(completeSum(p.Data()))
		for range 6 {
			var buf [9]byte
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			o := r.IntN(7)
			switch o {
			case 0:
				p.StoreBytes(uint32(r.IntN(p.Len())), buf[:1+r.IntN(8)], skb.FRecomputeCsum)
			case 1:
				p.VlanPush(pick[uint16](r, 0x0081, 0xa888), uint16(r.Uint32()))
			case 2:
				p.VlanPop()
			case 3:
				p.AdjustRoom(int32(pick(r, 20, -20, 8, -8, 40, -40)), pick[uint32](r, skb.AdjRoomMAC, skb.AdjRoomNet), 0)
			case 4:
				p.ChangeProto(pick[uint16](r, 0xdd86, 0x0008), 0)
			case 5:
				p.EcnSetCE()
			case 6:
				p.StoreBytes(uint32(r.IntN(p.Len())), buf[:2], 0)
				p.Csum = uint32(completeSum(p.Data())) // a plain store: re-sync
			}
			if p.IPSummed != skb.ChecksumComplete {
				t.Fatalf("iteration %d: state changed to %d", it, p.IPSummed)
			}
			if got, want := csumFold16(p.Csum), completeSum(p.Data()); !onesEqual(got, want) {
				t.Fatalf("iteration %d op %d: csum %#x folds to %#04x, packet sums to %#04x", it, o, p.Csum, got, want)
			}
		}
	}
}

func TestPacket_CsumUpdate(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	if got := p.CsumUpdate(5); got != -skb.ENOTSUPP {
		t.Fatalf("CHECKSUM_NONE: got %d, want -ENOTSUPP", got)
	}
	p.IPSummed, p.Csum = skb.ChecksumComplete, 0xfffffff0
	// 0xfffffff0 + 0x20 carries out: 0x10 + 1.
	if got := p.CsumUpdate(0x20); got != 0x11 || p.Csum != 0x11 {
		t.Fatalf("got %#x (csum %#x), want 0x11", got, p.Csum)
	}
}

func TestPacket_ChecksumComplete_NAT(t *testing.T) {
	// A NAT program stores the address plainly and lets the checksum
	// helpers fix skb->csum: with BPF_F_PSEUDO_HDR the L4 helper accounts
	// for the bytes that changed (the IPv4 header's own sum is unchanged),
	// and for IPv6 (BPF_F_IPV6, no header checksum) nothing changes.
	for _, c := range []struct {
		name string
		v6   bool
		diff bool
	}{{"IPv4 size 4", false, false}, {"IPv4 diff", false, true}, {"IPv6 diff", true, true}} {
		var frame []byte
		var srcOff, csumOff, alen int
		if c.v6 {
			frame = testFrame(skb.EthPIPv6, 80)
			srcOff, csumOff, alen = 14+8, 14+40+16, 16
		} else {
			frame = ipv4L4(t, false, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1, 2)
			srcOff, csumOff, alen = 14+12, 14+20+16, 4
		}
		p, _ := skb.New(frame, skb.Loopback())
		p.IPSummed = skb.ChecksumComplete
		p.Csum = uint32(completeSum(p.Data()))
		newAddr := make([]byte, alen)
		for i := range newAddr {
			newAddr[i] = byte(0xc0 + i)
		}
		old := append([]byte(nil), p.Data()[srcOff:srcOff+alen]...)
		p.StoreBytes(uint32(srcOff), newAddr, 0)
		switch {
		case !c.diff:
			p.L3CsumReplace(14+10, le32(old), le32(newAddr), 4)
			p.L4CsumReplace(uint32(csumOff), le32(old), le32(newAddr), skb.FPseudoHdr|4)
		case c.v6:
			p.L4CsumReplace(uint32(csumOff), 0, uint64(skb.CsumDiff(old, newAddr, 0)), skb.FPseudoHdr|skb.FIPv6)
		default:
			d := uint64(skb.CsumDiff(old, newAddr, 0))
			p.L3CsumReplace(14+10, 0, d, 0)
			p.L4CsumReplace(uint32(csumOff), 0, d, skb.FPseudoHdr)
		}
		if got, want := csumFold16(p.Csum), completeSum(p.Data()); !onesEqual(got, want) {
			t.Errorf("%s: csum folds to %#04x, packet sums to %#04x", c.name, got, want)
		}
	}
}

func TestPacket_ChecksumComplete_AtIngress(t *testing.T) {
	// At tc ingress skb->csum starts at the network header; the VLAN
	// helpers fold the MAC header in and out around their work.
	r := rand.New(rand.NewPCG(11, 12))
	for range 200 {
		p, _ := skb.New(testFrame(skb.EthPIP, 60+r.IntN(40)), skb.Loopback())
		p.ChangeHead(0, 0) // mac_len = 14, as on the live ingress path
		p.AtIngress = true
		p.IPSummed = skb.ChecksumComplete
		p.Csum = uint32(completeSum(p.Data()[p.NetworkOffset():]))
		for range 5 {
			if r.IntN(2) == 0 {
				p.VlanPush(pick[uint16](r, 0x0081, 0xa888), uint16(r.Uint32()))
			} else {
				p.VlanPop()
			}
			if got, want := csumFold16(p.Csum), completeSum(p.Data()[p.NetworkOffset():]); !onesEqual(got, want) {
				t.Fatalf("csum folds to %#04x, network part sums to %#04x (netoff %d)", got, want, p.NetworkOffset())
			}
		}
	}
}

func TestPacket_ChecksumPartial(t *testing.T) {
	t.Run("IPv6 pseudo diff", func(t *testing.T) {
		frame := testFrame(skb.EthPIPv6, 80)
		const srcOff, csumOff = 14 + 8, 14 + 40 + 6
		pseudo := func(d []byte) uint16 { return onesSum(d[14+8 : 14+40]) }
		binary.BigEndian.PutUint16(frame[csumOff:], pseudo(frame))
		p, _ := skb.New(frame, skb.Loopback())
		p.SetChecksumPartial(14+40, 6)
		newAddr := []byte("0123456789abcdef")
		diff := skb.CsumDiff(frame[srcOff:srcOff+16], newAddr, 0)
		p.StoreBytes(srcOff, newAddr, 0)
		p.L4CsumReplace(csumOff, 0, uint64(diff), skb.FPseudoHdr|skb.FIPv6)
		if got := binary.BigEndian.Uint16(p.Data()[csumOff:]); !onesEqual(got, pseudo(p.Data())) {
			t.Errorf("partial checksum %#04x, want %#04x", got, pseudo(p.Data()))
		}
	})
	t.Run("a store before csum_start drops to CHECKSUM_NONE", func(t *testing.T) {
		p, _ := skb.New(testFrame(skb.EthPIP, 60), skb.Loopback())
		p.SetChecksumPartial(40, 6)
		p.StoreBytes(0, []byte{1}, skb.FRecomputeCsum)
		if p.IPSummed != skb.ChecksumPartial {
			t.Fatal("csum_start still inside the packet")
		}
		p.SetChecksumPartial(-2, 6)
		p.StoreBytes(0, []byte{1}, skb.FRecomputeCsum)
		if p.IPSummed != skb.ChecksumNone {
			t.Fatal("csum_start before data kept CHECKSUM_PARTIAL")
		}
	})
}
