package fib_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tcxgo/tcx/fib"
)

// router is a namespace with addresses of both families, routes of each
// kind and rules, for the allocation test and the benchmarks.
func router() *fib.Table {
	t := fib.NewNamespace()
	for i := uint32(2); i <= 4; i++ {
		t.Devices = append(t.Devices, fib.Device{Ifindex: i, MAC: [6]byte{2, 0, 0, 0, 0, byte(i)}, Forwarding4: true, Forwarding6: true})
	}
	t.AddAddress(2, netip.MustParsePrefix("10.0.0.1/24"))
	t.AddAddress(2, netip.MustParsePrefix("2001:db8::1/64"))
	t.AddAddress(3, netip.MustParsePrefix("10.1.0.1/24"))
	t.AddAddress(3, netip.MustParsePrefix("2001:db8:1::1/64"))
	P, A := netip.MustParsePrefix, netip.MustParseAddr
	t.Routes = append(t.Routes,
		fib.Route{Dst: P("192.168.0.0/16"), Ifindex: 3, Gateway: A("10.1.0.254")},
		fib.Route{Dst: P("2001:db8:100::/48"), Ifindex: 3, Gateway: A("2001:db8:1::fe"), Metric: fib.MetricUser6},
		fib.Route{Dst: P("172.16.0.0/12"), Ifindex: 3, Table: 100})
	t.Neighbours = append(t.Neighbours,
		fib.Neighbour{Ifindex: 3, Addr: A("10.1.0.254"), MAC: [6]byte{2, 0, 0, 0, 0xfe, 1}},
		fib.Neighbour{Ifindex: 3, Addr: A("2001:db8:1::fe"), MAC: [6]byte{2, 0, 0, 0, 0xfe, 2}})
	return t
}

func lookupParams(dst string) []byte {
	p := make([]byte, fib.ParamsSize)
	a := netip.MustParseAddr(dst)
	p[0] = 2
	if a.Is6() {
		p[0] = 10
	}
	binary.LittleEndian.PutUint32(p[8:], 2)
	copy(p[32:], a.AsSlice())
	return p
}

// A lookup runs on the packet path: it allocates nothing, with rules,
// source selection of either family and the MTU check.
func TestLookup_NoAllocs(t *testing.T) {
	tbl := router()
	tbl.Rules = []fib.Rule{{Priority: 10, Mark: 7, Table: 100}, {Priority: 10, IPv6: true, Mark: 7, Table: 100}}
	p := make([]byte, fib.ParamsSize)
	for _, c := range []struct {
		dst   string
		flags uint32
		want  int64
	}{
		{"192.168.1.1", fib.FlagSrc | fib.FlagMark, fib.RetSuccess},
		{"2001:db8:100::1", fib.FlagSrc | fib.FlagMark, fib.RetSuccess},
		{"2001:db8:100::1", fib.FlagDirect, fib.RetSuccess},
		{"8.8.8.8", 0, fib.RetNotFwded},
	} {
		in := lookupParams(c.dst)
		allocs := testing.AllocsPerRun(100, func() {
			copy(p, in)
			if rc := tbl.Lookup(p, c.flags, 100, false); rc != c.want {
				t.Fatalf("%s flags %#x: %d, want %d", c.dst, c.flags, rc, c.want)
			}
		})
		if allocs != 0 {
			t.Errorf("%s flags %#x: %v allocations per lookup", c.dst, c.flags, allocs)
		}
	}
}

// BenchmarkLookup: a lookup through a gateway with its neighbour, per
// family and with rules and source selection, against the baseline of a
// lookup answered at its first check (forwarding off) in the same run.
func BenchmarkLookup(b *testing.B) {
	tbl := router()
	ruled := router()
	ruled.Rules = []fib.Rule{{Priority: 10, Mark: 7, Table: 100}, {Priority: 10, IPv6: true, Mark: 7, Table: 100}}
	off := lookupParams("192.168.1.1")
	binary.LittleEndian.PutUint32(off[8:], 1) // lo: forwarding off
	for _, c := range []struct {
		name  string
		tbl   *fib.Table
		in    []byte
		flags uint32
	}{
		{"baseline_fwd_disabled", tbl, off, 0},
		{"ipv4", tbl, lookupParams("192.168.1.1"), 0},
		{"ipv6", tbl, lookupParams("2001:db8:100::1"), 0},
		{"ipv4_rules_src", ruled, lookupParams("192.168.1.1"), fib.FlagSrc | fib.FlagMark},
		{"ipv6_rules_src", ruled, lookupParams("2001:db8:100::1"), fib.FlagSrc | fib.FlagMark},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := make([]byte, fib.ParamsSize)
			for range b.N {
				copy(p, c.in)
				c.tbl.Lookup(p, c.flags, 100, false)
			}
		})
	}
}
