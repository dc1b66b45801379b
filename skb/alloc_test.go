package skb_test

import (
	"net"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

// TestPacket_ZeroAllocs: the packet path allocates nothing once a Packet's
// buffer has seen the frame size, for Reset and for every helper that stays
// within DefaultHeadroom and DefaultTailroom.
func TestPacket_ZeroAllocs(t *testing.T) {
	frame := ipv4L4(t, false, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1000, 80)
	ctx := make([]byte, skb.CtxSize)
	var p skb.Packet
	if err := p.Reset(frame, skb.Loopback()); err != nil {
		t.Fatal(err)
	}
	var img [skb.CtxSize]byte
	var buf [32]byte
	nh := make([]byte, 20)
	const csumOff = 14 + 20 + 16
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Reset", func() { p.Reset(frame, skb.Loopback()) }},
		{"ResetTestRun", func() { p.ResetTestRun(frame, ctx, nil) }},
		{"LoadBytes", func() { p.LoadBytes(14, buf[:20]) }},
		{"LoadBytesRelative", func() { p.LoadBytesRelative(0, buf[:20], skb.HdrStartNet) }},
		{"StoreBytes", func() { p.StoreBytes(26, buf[:4], skb.FRecomputeCsum|skb.FInvalidateHash) }},
		{"PullData", func() { p.PullData(0) }},
		{"L3CsumReplace", func() { p.L3CsumReplace(24, 1, 2, 4) }},
		{"L4CsumReplace", func() { p.L4CsumReplace(csumOff, 1, 2, skb.FPseudoHdr|4) }},
		{"CsumDiff", func() { skb.CsumDiff(buf[:4], buf[4:8], 0) }},
		{"CsumUpdate", func() { p.CsumUpdate(1) }},
		{"CsumLevel", func() { p.CsumLevel(skb.CsumLevelInc) }},
		{"ChangeProto", func() { p.ChangeProto(0xdd86, 0); p.ChangeProto(0x0008, 0) }},
		{"ChangeType", func() { p.ChangeType(skb.PacketOtherHost) }},
		{"ChangeHead", func() { p.Reset(frame, skb.Loopback()); p.ChangeHead(14, 0) }},
		{"ChangeTail", func() { p.ChangeTail(uint32(len(frame)+100), 0); p.ChangeTail(uint32(len(frame)), 0) }},
		{"AdjustRoom", func() {
			p.AdjustRoom(20, skb.AdjRoomMAC, skb.FAdjRoomEncapL3IPv4)
			p.AdjustRoom(-20, skb.AdjRoomMAC, skb.FAdjRoomDecapL3IPv4)
		}},
		{"VlanPush", func() { p.Reset(frame, skb.Loopback()); p.VlanPush(0x0081, 1); p.VlanPush(0xa888, 2) }},
		{"VlanPop", func() { p.VlanPop(); p.VlanPop() }},
		{"GetHashRecalc", func() { p.SetHashInvalid(); p.GetHashRecalc() }},
		{"SetHash", func() { p.SetHash(7) }},
		{"EcnSetCE", func() { p.EcnSetCE() }},
		{"SetTstamp", func() { p.SetTstamp(5, skb.ClockMonotonic) }},
		{"Redirect", func() { p.Redirect(2, skb.FIngress); p.RedirectPeer(3, 0); p.RedirectNeigh(4, nh, 0) }},
		{"CloneRedirect", func() { p.CloneRedirect(1, 0) }},
		{"WriteCtx", func() { p.WriteCtx(img[:], 0x1000) }},
		{"CtxLoad", func() { skb.CtxLoad(img[:], skb.CtxProtocol+2, 2) }},
		{"StoreCtx", func() { p.StoreCtx(img[:], skb.CtxMark, 4, 9) }},
		{"ReadCtx", func() { p.ReadCtx(img[:]) }},
		{"ReadCtxWords", func() { p.ReadCtxWords(img[:], 1<<(skb.CtxMark/4)|1<<(skb.CtxCB/4)) }},
		{"CtxOut", func() { p.CtxOut(img[:]) }},
	} {
		c.f() // warm up
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
	}
}

func BenchmarkPacket_ResetSNAT(b *testing.B) {
	t := &testing.T{}
	frame := ipv4L4(t, false, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1000, 80)
	newIP := []byte{203, 0, 113, 9}
	var p skb.Packet
	var img [skb.CtxSize]byte
	b.ReportAllocs()
	for b.Loop() {
		p.Reset(frame, skb.Loopback())
		p.WriteCtx(img[:], 0x1000)
		old := le32(p.Data()[26:])
		p.StoreBytes(26, newIP, 0)
		p.L3CsumReplace(24, old, le32(newIP), 4)
		p.L4CsumReplace(14+20+16, old, le32(newIP), skb.FPseudoHdr|4)
	}
}

// BenchmarkCopyBaseline is the floor BenchmarkPacket_ResetSNAT compares
// with: copying the frame into a reused buffer.
func BenchmarkCopyBaseline(b *testing.B) {
	t := &testing.T{}
	frame := ipv4L4(t, false, net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, 1000, 80)
	buf := make([]byte, 2048)
	for b.Loop() {
		copy(buf[256:], frame)
	}
}
