package fib_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tcxgo/tcx/fib"
)

// params builds a struct bpf_fib_lookup for an IPv4 lookup.
func params(ifindex uint32, src, dst string, totLen uint16) []byte {
	p := make([]byte, fib.ParamsSize)
	p[0] = 2
	binary.LittleEndian.PutUint16(p[6:], totLen)
	binary.LittleEndian.PutUint32(p[8:], ifindex)
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[16:], s[:])
	copy(p[32:], d[:])
	return p
}

func TestTable_Lookup(t *testing.T) {
	gwMAC, outMAC := [6]byte{2, 0, 0, 0, 0, 0x99}, [6]byte{2, 0, 0, 0, 0, 2}
	tbl := &fib.Table{
		Devices: []fib.Device{
			{Ifindex: 2, MAC: [6]byte{2, 0, 0, 0, 0, 1}, Forwarding4: true},
			{Ifindex: 3, MAC: outMAC, MTU: 1400, Forwarding4: true},
			{Ifindex: 4},
		},
		Routes: []fib.Route{
			{Dst: netip.MustParsePrefix("10.0.0.0/8"), Ifindex: 3, Gateway: netip.MustParseAddr("192.168.1.254"), Metric: 20},
			{Dst: netip.MustParsePrefix("10.9.0.0/16"), Ifindex: 3, Metric: 5, PrefSrc: netip.MustParseAddr("192.168.1.1")},
			{Dst: netip.MustParsePrefix("10.66.0.0/16"), Type: fib.Blackhole},
			{Dst: netip.MustParsePrefix("172.16.0.0/12"), Ifindex: 3, Table: 100},
		},
		Neighbours: []fib.Neighbour{{Ifindex: 3, Addr: netip.MustParseAddr("192.168.1.254"), MAC: gwMAC}},
	}
	// Through the gateway: next hop in ipv4_dst, MACs, output device,
	// metric, VLAN fields cleared, the output device's MTU reported.
	p := params(2, "10.1.1.1", "10.2.3.4", 0)
	binary.LittleEndian.PutUint32(p[48:], 0xffffffff)
	if got := tbl.Lookup(p, 0, 100, false); got != fib.RetSuccess {
		t.Fatalf("via gateway: %d", got)
	}
	le := binary.LittleEndian
	if le.Uint32(p[8:]) != 3 || netip.AddrFrom4([4]byte(p[32:36])).String() != "192.168.1.254" ||
		[6]byte(p[58:64]) != gwMAC || [6]byte(p[52:58]) != outMAC || le.Uint32(p[12:]) != 20 ||
		le.Uint32(p[48:]) != 0 || le.Uint16(p[6:]) != 1400 {
		t.Errorf("via gateway: params % x", p)
	}
	for _, c := range []struct {
		name   string
		p      []byte
		flags  uint32
		skbLen int
		want   int64
	}{
		{"on link, no neighbour", params(2, "10.1.1.1", "10.9.0.7", 0), 0, 100, fib.RetNoNeigh},
		{"on link, neighbour skipped", params(2, "10.1.1.1", "10.9.0.7", 0), fib.FlagSkipNeigh, 100, fib.RetSuccess},
		{"tot_len over the MTU", params(2, "10.1.1.1", "10.2.3.4", 1401), 0, 100, fib.RetFragNeeded},
		{"frame over the MTU", params(2, "10.1.1.1", "10.2.3.4", 0), 0, 1500, fib.RetFragNeeded},
		{"blackhole", params(2, "10.1.1.1", "10.66.1.1", 0), 0, 100, fib.RetBlackhole},
		{"no route", params(2, "10.1.1.1", "8.8.8.8", 0), 0, 100, fib.RetNotFwded},
		{"other table, not asked for", params(2, "10.1.1.1", "172.16.1.1", 0), fib.FlagDirect, 100, fib.RetNotFwded},
		{"forwarding off", params(4, "10.1.1.1", "10.2.3.4", 0), 0, 100, fib.RetFwdDisabled},
		{"no such device", params(9, "10.1.1.1", "10.2.3.4", 0), 0, 100, -19},
		{"unknown flag", params(2, "10.1.1.1", "10.2.3.4", 0), 64, 100, -22},
		{"short params", params(2, "10.1.1.1", "10.2.3.4", 0)[:63], 0, 100, -22},
	} {
		if got := tbl.Lookup(c.p, c.flags, c.skbLen, false); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// A table by ID (DIRECT|TBID), and the preferred source address.
	p = params(2, "10.1.1.1", "172.16.1.1", 0)
	le.PutUint32(p[48:], 100)
	if got := tbl.Lookup(p, fib.FlagDirect|fib.FlagTBID|fib.FlagSkipNeigh, 100, false); got != fib.RetSuccess || le.Uint32(p[48:]) != 0 {
		t.Errorf("table 100: %d, tbid %d", got, le.Uint32(p[48:]))
	}
	p = params(2, "10.1.1.1", "10.9.0.7", 0)
	if got := tbl.Lookup(p, fib.FlagSrc|fib.FlagSkipNeigh, 100, false); got != fib.RetSuccess || netip.AddrFrom4([4]byte(p[16:20])).String() != "192.168.1.1" {
		t.Errorf("source: %d, % x", got, p[16:20])
	}
	// A new namespace: lo exists, forwarding is off, nothing else.
	var empty *fib.Table
	if got := empty.Lookup(params(1, "10.1.1.1", "10.2.3.4", 0), 0, 100, false); got != fib.RetFwdDisabled {
		t.Errorf("new namespace, lo: %d", got)
	}
	if got := empty.Lookup(params(2, "10.1.1.1", "10.2.3.4", 0), 0, 100, false); got != -19 {
		t.Errorf("new namespace, ifindex 2: %d", got)
	}
}
