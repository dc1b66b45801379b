package skb_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

// TestPacket_TunnelKey: set then get swaps remote and local (the transmit
// key read as a receive view), keeps id, tos and ttl, and reports flags on
// request; the older short layouts work; errors zero the buffer.
func TestPacket_TunnelKey(t *testing.T) {
	p, err := skb.New(testFrame(skb.EthPIP, 60), skb.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	to := bytes.Repeat([]byte{0xee}, skb.TunnelKeySize)
	if got := p.GetTunnelKey(to, 0); got != -22 || !bytes.Equal(to, make([]byte, skb.TunnelKeySize)) {
		t.Errorf("get without metadata: %d, % x", got, to)
	}
	if got := p.GetTunnelOpt(to[:8]); got != -2 {
		t.Errorf("get options without metadata: %d", got)
	}
	key := make([]byte, skb.TunnelKeySize)
	le := binary.LittleEndian
	le.PutUint32(key[0:], 77)
	le.PutUint32(key[4:], 0x0a000002) // remote 10.0.0.2
	key[20], key[21] = 4, 63
	le.PutUint32(key[28:], 0x0a000001) // local 10.0.0.1
	if got := p.SetTunnelKey(key, skb.FSeqNumber); got != 0 {
		t.Fatalf("set: %d", got)
	}
	tun, ok := p.Tunnel()
	if !ok || tun.ID != 77 || tun.Dst != [16]byte{10, 0, 0, 2} || tun.Src != [16]byte{10, 0, 0, 1} || !tun.TX ||
		tun.Flags != 1<<skb.TunnelKey|1<<skb.TunnelCsum|1<<skb.TunnelSeq|1<<skb.TunnelNoCache {
		t.Errorf("metadata %+v", tun)
	}
	if got := p.GetTunnelKey(to, skb.FTunInfoFlags); got != 0 ||
		le.Uint32(to[4:]) != 0x0a000001 || le.Uint32(to[28:]) != 0x0a000002 || to[20] != 4 || to[21] != 63 ||
		binary.BigEndian.Uint16(to[22:]) != 1<<skb.TunnelKey|1<<skb.TunnelCsum|1<<skb.TunnelSeq|1<<skb.TunnelNoCache {
		t.Errorf("get: % x", to)
	}
	if got := p.GetTunnelKey(to[:24], 0); got != 0 || le.Uint32(to[:4]) != 77 {
		t.Errorf("get, 24-byte layout: %d", got)
	}
	if got := p.GetTunnelKey(to, skb.FTunInfoIPv6); got != -71 {
		t.Errorf("get IPv6 of IPv4 metadata: %d, want -EPROTO", got)
	}
	if got := p.SetTunnelOpt([]byte{1, 2, 3}); got != -22 {
		t.Errorf("options of 3 bytes: %d", got)
	}
	if got := p.SetTunnelOpt(make([]byte, 256)); got != -12 {
		t.Errorf("options of 256 bytes: %d", got)
	}
	if got := p.SetTunnelOpt([]byte{1, 2, 3, 4}); got != 0 {
		t.Errorf("options: %d", got)
	}
	opt := bytes.Repeat([]byte{9}, 8)
	if got := p.GetTunnelOpt(opt); got != 4 || !bytes.Equal(opt, []byte{1, 2, 3, 4, 0, 0, 0, 0}) {
		t.Errorf("get options: %d % x", got, opt)
	}
	if got := p.GetTunnelOpt(opt[:2]); got != -12 {
		t.Errorf("get options into 2 bytes: %d", got)
	}
	// Received metadata (a collect-metadata device's) cannot take options
	// from a program, and a namespace crossing drops it.
	p.SetTunnel(skb.Tunnel{ID: 5, Opts: []byte{1, 2, 3, 4}, Flags: 1 << skb.TunnelGeneveOpt}, true)
	if got := p.SetTunnelOpt([]byte{1, 2, 3, 4}); got != -22 {
		t.Errorf("options on received metadata: %d", got)
	}
	if got := p.GetTunnelOpt(opt); got != 4 {
		t.Errorf("options of received metadata: %d", got)
	}
	p.Scrub(false)
	if _, ok := p.Tunnel(); ok {
		t.Error("metadata survives skb_scrub_packet")
	}
}

func TestPacket_CheckMTU(t *testing.T) {
	p, err := skb.New(testFrame(skb.EthPIP, 1514), skb.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	eth := skb.Device{Ifindex: 3}
	for _, c := range []struct {
		dev     *skb.Device
		in      uint32
		diff    int32
		flags   uint64
		want    int64
		wantMTU uint32
	}{
		{&eth, 0, 0, 0, skb.MTUChkSuccess, 1500},
		{&eth, 0, 1, 0, skb.MTUChkFragNeed, 1500},
		{&eth, 1501, 0, 0, skb.MTUChkFragNeed, 1500},
		{&eth, 0, 0, 2, -22, 0},
		{&eth, 7, 0, skb.MTUChkSegs, -22, 7},
		{nil, 9, 0, 0, -19, 9},
	} {
		mtu := c.in
		if got := p.CheckMTU(c.dev, &mtu, c.diff, c.flags); got != c.want || mtu != c.wantMTU {
			t.Errorf("%+v: %d, mtu %d; want %d, %d", c, got, mtu, c.want, c.wantMTU)
		}
	}
}
