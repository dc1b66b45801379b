package skb

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestHop_TaggedFrameAcrossVeth: a frame sent tagged keeps its tag in the
// bytes at egress and has it moved out of band on the peer's receive
// path, with the MAC addresses moved up and the receive path's resets.
func TestHop_TaggedFrameAcrossVeth(t *testing.T) {
	frame := make([]byte, 64)
	copy(frame, []byte{2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 0x81, 0x00, 0x20, 0x05, 0x88, 0xb5})
	var p Packet
	if err := p.ResetXmit(frame, 3); err != nil {
		t.Fatal(err)
	}
	p.Xmit(3)
	if p.Protocol != EthP8021Q || p.NetworkOffset() != EthHLen+VlanHLen || p.WireLen != 64 || p.AtIngress || p.PktType != PacketHost {
		t.Fatalf("egress: protocol %#x, network at %d, wire_len %d", p.Protocol, p.NetworkOffset(), p.WireLen)
	}
	p.Mark, p.Priority, p.CB[0], p.Tstamp = 7, 9, 42, 1000
	p.PickTx()
	if !p.Forward(Device{Ifindex: 2, Addr: [6]byte{2, 0, 0, 0, 0, 0xb}}, false) {
		t.Fatal("dropped")
	}
	want := append(append([]byte{}, frame[:12]...), frame[16:]...)
	if !bytes.Equal(p.Data(), want) || !p.VlanPresent || p.VlanProto != EthP8021Q || p.VlanTCI != 0x2005 || p.Protocol != 0x88b5 {
		t.Fatalf("ingress: % x, tag %v %#x %#x, protocol %#x", p.Data()[:16], p.VlanPresent, p.VlanProto, p.VlanTCI, p.Protocol)
	}
	if p.Ifindex != 2 || p.IngressIfindex != 2 || p.PktType != PacketHost || p.MACLen() != EthHLen || p.WireLen != 60-EthHLen || !p.AtIngress {
		t.Fatalf("ingress: ifindex %d/%d pkt_type %d mac_len %d wire_len %d", p.Ifindex, p.IngressIfindex, p.PktType, p.MACLen(), p.WireLen)
	}
	if p.Mark != 7 || p.Priority != 0 || p.CB[0] != 42 || p.Tstamp != 1000 {
		t.Fatalf("within a namespace: mark %d priority %d cb %d tstamp %d", p.Mark, p.Priority, p.CB[0], p.Tstamp)
	}
	// Across namespaces the mark and a realtime tstamp go, a mono one stays.
	p.Forward(Device{Ifindex: 5}, true)
	if p.Mark != 0 || p.Tstamp != 0 || p.PktType != PacketOtherHost {
		t.Fatalf("across namespaces: mark %d tstamp %d pkt_type %d", p.Mark, p.Tstamp, p.PktType)
	}
	p.Mark, p.Tstamp, p.TstampType = 7, 1000, ClockMonotonic
	p.Forward(Device{Ifindex: 5}, true)
	if p.Tstamp != 1000 {
		t.Fatal("a mono tstamp was cleared")
	}
	// bpf_redirect_peer: scrubbed within the namespace only.
	p.Mark, p.Priority, p.PktType = 7, 9, PacketOtherHost
	if !p.RedirectToPeer(9) || p.Mark != 7 || p.Priority != 9 || p.PktType != PacketHost || p.IngressIfindex != 9 {
		t.Fatalf("redirect_peer: mark %d priority %d pkt_type %d iif %d", p.Mark, p.Priority, p.PktType, p.IngressIfindex)
	}
	if got := p.WireFrame(nil); binary.BigEndian.Uint16(got[12:]) != EthP8021Q || !bytes.Equal(got[16:], want[12:]) {
		t.Fatalf("wire frame % x", got[:18])
	}
}

// TestHop_ShortTaggedFrameDropped: skb_vlan_untag needs 4 + 2 bytes past
// the Ethernet header.
func TestHop_ShortTaggedFrameDropped(t *testing.T) {
	var p Packet
	if err := p.Reset([]byte{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 0x81, 0, 0, 1, 0x08}, Device{Ifindex: 2}); err != nil {
		t.Fatal(err)
	}
	if p.Receive() {
		t.Fatal("a 17-byte tagged frame was untagged")
	}
}
