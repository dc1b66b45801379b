package skb_test

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

func TestPacket_Reset_EthTypeTrans(t *testing.T) {
	veth := skb.Device{Ifindex: 7, Addr: [6]byte{2, 0, 0, 0, 0, 9}, Broadcast: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for _, c := range []struct {
		name     string
		dev      skb.Device
		dst      [6]byte
		et       uint16
		payload  []byte
		pktType  uint8
		protocol uint16
	}{
		{"to the loopback address", skb.Loopback(), [6]byte{}, skb.EthPIP, nil, skb.PacketHost, skb.EthPIP},
		// lo's broadcast address is all-zero, so ff:ff:.. is only multicast.
		{"broadcast on lo", skb.Loopback(), [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, skb.EthPIP, nil, skb.PacketMulticast, skb.EthPIP},
		{"broadcast on veth", veth, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, skb.EthPIPv6, nil, skb.PacketBroadcast, skb.EthPIPv6},
		{"multicast", veth, [6]byte{1, 0, 0x5e, 0, 0, 1}, skb.EthPIP, nil, skb.PacketMulticast, skb.EthPIP},
		{"unicast to us", veth, veth.Addr, 0x0806, nil, skb.PacketHost, 0x0806},
		{"unicast to another host", veth, [6]byte{2, 0, 0, 0, 0, 8}, skb.EthPIP, nil, skb.PacketOtherHost, skb.EthPIP},
		{"802.3 length with LLC", skb.Loopback(), [6]byte{}, 0x05dc, []byte{0x42, 0x42}, skb.PacketHost, skb.EthP8022},
		{"802.3 length, raw IPX", skb.Loopback(), [6]byte{}, 0x0020, []byte{0xff, 0xff}, skb.PacketHost, skb.EthP8023},
		{"smallest ethertype", skb.Loopback(), [6]byte{}, 0x0600, []byte{0xff, 0xff}, skb.PacketHost, 0x0600},
	} {
		frame := testFrame(c.et, 60)
		copy(frame, c.dst[:])
		copy(frame[14:], c.payload)
		p, err := skb.New(frame, c.dev)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p.PktType != c.pktType || p.Protocol != c.protocol || p.Ifindex != c.dev.Ifindex {
			t.Errorf("%s: pkt_type %d protocol %#04x ifindex %d, want %d %#04x %d", c.name, p.PktType, p.Protocol, p.Ifindex, c.pktType, c.protocol, c.dev.Ifindex)
		}
		if string(p.Data()) != string(frame) || p.MACOffset() != 0 || p.NetworkOffset() != 14 ||
			p.TransportOffset() != -1 || p.MACLen() != 0 || p.WireLen != 60 || p.IPSummed != skb.ChecksumNone {
			t.Errorf("%s: layout is not test_run's", c.name)
		}
	}
}

func TestPacket_Reset_Errors(t *testing.T) {
	var p skb.Packet
	for _, n := range []int{0, 13, skb.MaxFrame + 1} {
		if err := p.Reset(make([]byte, n), skb.Loopback()); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%d-byte frame: %v, want EINVAL", n, err)
		}
	}
	if err := p.Reset(make([]byte, skb.MaxFrame), skb.Loopback()); err != nil {
		t.Errorf("MaxFrame: %v", err)
	}
}

func TestPacket_Reset_ClearsStateKeepsConfig(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 60), skb.Loopback())
	hook := func(*skb.Packet, uint32, uint64) int64 { return 0 }
	p.OnClone, p.HashSeed = hook, 42
	p.Mark, p.VlanPresent = 1, true
	p.Redirect(3, 0)
	p.ChangeTail(1000, 0)
	if err := p.Reset(testFrame(skb.EthPIPv6, 70), skb.Loopback()); err != nil {
		t.Fatal(err)
	}
	if p.Mark != 0 || p.VlanPresent || p.PendingRedirect().Kind != skb.RedirectNone || p.Len() != 70 {
		t.Error("Reset kept packet state")
	}
	if p.OnClone == nil || p.HashSeed != 42 {
		t.Error("Reset dropped OnClone or HashSeed")
	}
}

func TestPacket_ResetTestRun_Sizes(t *testing.T) {
	for _, c := range []struct {
		et   uint16
		n    int
		want error
	}{
		{0, 13, syscall.EINVAL},
		{0, 14, nil},
		{0, skb.TestRunMaxData, nil},
		{0, skb.TestRunMaxData + 1, syscall.EINVAL},
		{skb.EthPIP, 33, syscall.EINVAL},
		{skb.EthPIP, 34, nil},
		{skb.EthPIPv6, 53, syscall.EINVAL},
		{skb.EthPIPv6, 54, nil},
		{skb.EthP8021Q, 15, nil},
	} {
		var p skb.Packet
		frame := testFrame(c.et, max(c.n, 14))[:c.n]
		err := p.ResetTestRun(frame, nil, nil)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("ethertype %#04x, %d bytes: %v, want %v", c.et, c.n, err, c.want)
		}
	}
}

// testRunCtxOK lists the __sk_buff bytes test_run lets ctx_in set.
func testRunCtxOK(off int) bool {
	in := func(start, n int) bool { return off >= start && off < start+n }
	return in(skb.CtxMark, 4) || in(skb.CtxPriority, 12) || in(skb.CtxCB, 20) || in(skb.CtxTstamp, 16) ||
		in(skb.CtxGSOSize, 4) || in(skb.CtxHWTstamp, 8)
}

func TestPacket_ResetTestRun_CtxFields(t *testing.T) {
	data := testFrame(skb.EthPIP, 60)
	lookup := func(ifindex uint32) (skb.Device, bool) { return skb.Device{}, true }
	for off := range skb.CtxSize {
		ctx := make([]byte, skb.CtxSize)
		ctx[off] = 1
		switch off &^ 3 {
		case skb.CtxIfindex:
			ctx[off] = 5 // 1 would mean lo
		case skb.CtxWireLen, skb.CtxGSOSegs:
			// These have value limits, tested in CtxValues.
			binary.LittleEndian.PutUint32(ctx[off&^3:], 60)
		}
		var p skb.Packet
		err := p.ResetTestRun(data, ctx, lookup)
		if testRunCtxOK(off) != (err == nil) {
			t.Errorf("ctx byte %d set: %v", off, err)
		}
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ctx byte %d: %v, want EINVAL", off, err)
		}
	}
}

func TestPacket_ResetTestRun_CtxValues(t *testing.T) {
	data := testFrame(0x0806, 60)
	le := binary.LittleEndian
	ctxWith := func(off int, v uint32) []byte {
		c := make([]byte, skb.CtxSize)
		le.PutUint32(c[off:], v)
		return c
	}
	for _, c := range []struct {
		name string
		ctx  []byte
		want error
	}{
		{"wire_len below len", ctxWith(skb.CtxWireLen, 59), syscall.EINVAL},
		{"wire_len = len", ctxWith(skb.CtxWireLen, 60), nil},
		{"wire_len 64 KiB", ctxWith(skb.CtxWireLen, 65536), nil},
		{"wire_len above 64 KiB", ctxWith(skb.CtxWireLen, 65537), syscall.EINVAL},
		{"gso_segs 65535", ctxWith(skb.CtxGSOSegs, 65535), nil},
		{"gso_segs 65536", ctxWith(skb.CtxGSOSegs, 65536), syscall.EINVAL},
		{"unknown ifindex", ctxWith(skb.CtxIfindex, 9), syscall.ENODEV},
		{"ifindex 1 is lo", ctxWith(skb.CtxIfindex, 1), nil},
		{"short ctx", make([]byte, 12), nil},
		{"long ctx, zero tail", make([]byte, 300), nil},
		{"long ctx, non-zero tail", append(make([]byte, 300), 1), syscall.E2BIG},
	} {
		var p skb.Packet
		err := p.ResetTestRun(data, c.ctx, nil)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestPacket_ResetTestRun_CtxInOut(t *testing.T) {
	data := testFrame(skb.EthPIP, 60)
	le := binary.LittleEndian
	ctx := make([]byte, skb.CtxSize)
	le.PutUint32(ctx[skb.CtxMark:], 0x1234)
	le.PutUint32(ctx[skb.CtxPriority:], 6)
	le.PutUint32(ctx[skb.CtxIngressIfindex:], 3)
	le.PutUint32(ctx[skb.CtxIfindex:], 4)
	ctx[skb.CtxCB+19] = 0xcb
	le.PutUint64(ctx[skb.CtxTstamp:], 99)
	le.PutUint32(ctx[skb.CtxGSOSegs:], 2)
	le.PutUint32(ctx[skb.CtxGSOSize:], 0x10005) // echoed whole, 16 bits in the skb
	le.PutUint64(ctx[skb.CtxHWTstamp:], 77)
	var p skb.Packet
	dev := skb.Device{Addr: [6]byte{2, 0, 0, 0, 0, 1}}
	if err := p.ResetTestRun(data, ctx, func(i uint32) (skb.Device, bool) { return dev, i == 4 }); err != nil {
		t.Fatal(err)
	}
	if p.Ifindex != 4 || p.PktType != skb.PacketOtherHost || p.WireLen != 60 || p.GSOSize != 5 || p.IngressIfindex != 3 {
		t.Fatalf("ctx_in not applied: ifindex %d pkt_type %d wire_len %d gso_size %d iif %d", p.Ifindex, p.PktType, p.WireLen, p.GSOSize, p.IngressIfindex)
	}
	p.Mark = 0x5678
	p.ChangeTail(200, 0) // resets GSO state; ctx_out still echoes gso_size
	out := make([]byte, skb.CtxSize)
	p.CtxOut(out)
	want := append([]byte(nil), ctx...)
	le.PutUint32(want[skb.CtxMark:], 0x5678)
	le.PutUint32(want[skb.CtxWireLen:], 60)
	le.PutUint32(want[skb.CtxGSOSegs:], 0)
	if string(out) != string(want) {
		t.Errorf("ctx_out\n got  %x\n want %x", out, want)
	}

	var q skb.Packet
	if err := q.ResetTestRun(data, nil, nil); err != nil || q.WireLen != 0 {
		t.Errorf("without a ctx wire_len is %d (%v), want 0", q.WireLen, err)
	}
}

func TestPacket_Accessors(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 60), skb.Loopback())
	if p.Len() != 60 || len(p.Data()) != 60 || p.Headroom() < 64 || p.Tailroom() < 64 {
		t.Fatalf("len %d headroom %d tailroom %d", p.Len(), p.Headroom(), p.Tailroom())
	}
	if cap(p.Data()) != 60 {
		t.Error("Data's capacity lets a caller write past the tail")
	}
	meta, data, end := p.Pointers(0x100)
	if meta != 0x100 || data != 0x100 || end != 0x100+60 {
		t.Errorf("Pointers: %#x %#x %#x", meta, data, end)
	}
}
