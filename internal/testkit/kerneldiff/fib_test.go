package kerneldiff_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/fib"
	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// fibRoute is a route of the bpf_fib_lookup scenario, given to the kernel
// (kernel.Route) and to the engine (fib.Route).
type fibRoute struct {
	dst    string
	via    string
	dev    string
	typ    fib.RouteType
	table  uint32
	metric uint32
	src    string
	mtu    uint32 // locked
}

// The scenario: four devices (two veth pairs, forwarding off on fibd),
// addresses of both
// families, routes of every type in main, in table 100 and in the
// default table (253, behind a throw route in main), a locked route MTU
// per family, one prefix through two devices at two metrics, a
// preferred source, and neighbours for most next hops.
var (
	fibDevs  = []string{"fiba", "fibb", "fibc", "fibd"}
	fibMTUs  = map[string]int{"fiba": 1500, "fibb": 1400, "fibc": 9000, "fibd": 1500}
	fibAddrs = map[string][]string{
		"fiba": {"192.168.1.1/24", "2001:db8:1::1/64"},
		"fibb": {"192.168.2.1/24", "2001:db8:2::1/64"},
		"fibc": {"10.3.0.1/16", "2001:db8:3::1/64", "2001:db8:33::1/64"},
	}
	fibNeighs = [][2]string{
		{"fiba", "192.168.1.254"}, {"fiba", "192.168.1.7"}, {"fiba", "2001:db8:1::fe"}, {"fiba", "2001:db8:1::7"},
		{"fibb", "192.168.2.254"}, {"fibb", "2001:db8:2::fe"},
		{"fibc", "10.3.0.254"}, {"fibc", "2001:db8:3::fe"}, {"fibc", "2001:db8:300::7"},
	}
	fibRoutes = []fibRoute{
		{dst: "10.0.0.0/8", via: "192.168.1.254", dev: "fiba"},
		{dst: "10.9.0.0/16", dev: "fiba", src: "192.168.1.1"},
		{dst: "10.66.0.0/16", typ: fib.Blackhole},
		{dst: "10.67.0.0/16", typ: fib.Unreachable},
		{dst: "10.68.0.0/16", typ: fib.Prohibit},
		{dst: "10.77.0.0/16", typ: fib.Throw},
		{dst: "10.77.0.0/16", via: "10.3.0.254", dev: "fibc", table: fib.TableDefault},
		{dst: "10.50.0.0/16", dev: "fiba", metric: 10},
		{dst: "10.50.0.0/16", dev: "fibb", metric: 20},
		{dst: "10.60.0.0/16", via: "192.168.2.254", dev: "fibb", mtu: 1300},
		{dst: "172.16.0.0/12", dev: "fibb", table: 100},
		{dst: "172.16.5.0/24", typ: fib.Blackhole, table: 100},
		{dst: "0.0.0.0/0", via: "192.168.2.254", dev: "fibb", table: 100},
		{dst: "2001:db8:100::/48", via: "2001:db8:1::fe", dev: "fiba"},
		{dst: "2001:db8:200::/48", via: "2001:db8:2::fe", dev: "fibb", mtu: 1300},
		{dst: "2001:db8:300::/48", dev: "fibc"},
		{dst: "2001:db8:400::/48", dev: "fibc", src: "2001:db8:33::1"},
		{dst: "2001:db8:dead::/48", typ: fib.Blackhole},
		{dst: "2001:db8:beef::/48", typ: fib.Unreachable},
		{dst: "2001:db8:abcd::/48", typ: fib.Prohibit},
		{dst: "2001:db8:77::/48", typ: fib.Throw},
		{dst: "2001:db8:50::/48", dev: "fiba", metric: 10},
		{dst: "2001:db8:50::/48", dev: "fibb", metric: 20},
		{dst: "2001:db8:100:5::/64", via: "2001:db8:2::fe", dev: "fibb", table: 100},
		{dst: "::/0", via: "2001:db8:3::fe", dev: "fibc", table: 100},
	}
	// Destinations: one per route and answer, the routers' own and
	// broadcast addresses, the anycast address, link-local and nowhere.
	fibDsts = []string{
		"10.2.3.4", "10.9.0.7", "10.66.1.1", "10.67.1.1", "10.68.1.1", "10.77.1.1", "10.50.1.1", "10.60.1.1",
		"172.16.1.1", "172.16.5.5", "8.8.8.8", "192.168.1.254", "192.168.1.7", "192.168.1.8", "192.168.1.1",
		"192.168.1.255", "192.168.2.9", "10.3.0.254", "10.3.255.255", "127.0.0.1",
		"2001:db8:100::9", "2001:db8:200::9", "2001:db8:300::7", "2001:db8:300::8", "2001:db8:400::1",
		"2001:db8:dead::1", "2001:db8:beef::1", "2001:db8:abcd::1", "2001:db8:77::1", "2001:db8:50::1",
		"2001:db8:100:5::1", "2001:db8:1::fe", "2001:db8:1::7", "2001:db8:1::1", "2001:db8:1::", "2001:db8:3::fe",
		"2001:db8:33::9", "2001:db9::1", "fe80::1", "ff02::1", "10.80.1.1", "2001:db8:80::1",
	}
	fibSrcs = []string{"192.168.1.2", "10.1.1.1", "2001:db8:1::2", "2001:db8:9::9", "fe80::2", "::"}
)

// fibScenario sets the scenario up in a new kernel namespace and returns
// the namespace and the engine's fib.Table of the same.
func fibScenario(t *testing.T, rules bool) (*kernel.NetNS, *fib.Table) {
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	tbl := fib.NewNamespace()
	tbl.Devices[0].Forwarding4, tbl.Devices[0].Forwarding6 = true, true // all.forwarding covers lo
	idx := map[string]int{}
	for i := 0; i < len(fibDevs); i += 2 {
		a, b, err := ns.AddVethPair(fibDevs[i], fibDevs[i+1])
		if err != nil {
			t.Fatal(err)
		}
		idx[fibDevs[i]], idx[fibDevs[i+1]] = a, b
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ns.SetIPv4Forwarding(true))
	must(ns.SetIPv6Forwarding(true))
	for k, name := range fibDevs {
		mac := [6]byte{2, 0, 0, 0, 0xf0, byte(k)}
		must(ns.SetHardwareAddr(idx[name], mac))
		must(ns.SetMTU(idx[name], fibMTUs[name]))
		fwd := name != "fibd" // lookups for packets arriving on fibd answer FWD_DISABLED
		if !fwd {
			must(ns.SetDeviceForwarding(name, false))
		}
		tbl.Devices = append(tbl.Devices, fib.Device{Ifindex: uint32(idx[name]), MAC: mac, MTU: uint32(fibMTUs[name]), Forwarding4: fwd, Forwarding6: fwd})
	}
	// Addresses go on in ifindex order, the kernel's device list order,
	// which source address selection breaks ties by.
	names := append([]string(nil), fibDevs...)
	sort.Slice(names, func(i, j int) bool { return idx[names[i]] < idx[names[j]] })
	for _, name := range names {
		for _, a := range fibAddrs[name] {
			p := netip.MustParsePrefix(a)
			must(ns.AddAddr(idx[name], p))
			tbl.AddAddress(uint32(idx[name]), p)
		}
	}
	for k, n := range fibNeighs {
		mac := [6]byte{2, 0, 0, 0, 0xe0, byte(k)}
		a := netip.MustParseAddr(n[1])
		must(ns.AddNeigh(idx[n[0]], a, mac))
		tbl.Neighbours = append(tbl.Neighbours, fib.Neighbour{Ifindex: uint32(idx[n[0]]), Addr: a, MAC: mac})
	}
	rtn := map[fib.RouteType]int{fib.Blackhole: 6, fib.Unreachable: 7, fib.Prohibit: 8, fib.Throw: 9}
	for _, r := range fibRoutes {
		dst := netip.MustParsePrefix(r.dst)
		kr := kernel.Route{Dst: dst, Ifindex: idx[r.dev], Table: int(r.table), Metric: int(r.metric), Type: rtn[r.typ], MTULock: int(r.mtu)}
		fr := fib.Route{Dst: dst, Type: r.typ, Table: r.table, Ifindex: uint32(idx[r.dev]), Metric: r.metric, MTU: r.mtu}
		if r.via != "" {
			kr.Gateway = netip.MustParseAddr(r.via)
			fr.Gateway = kr.Gateway
		}
		if r.src != "" {
			kr.Src = netip.MustParseAddr(r.src)
			fr.PrefSrc = kr.Src
		}
		if dst.Addr().Is6() && fr.Metric == 0 {
			fr.Metric = fib.MetricUser6
		}
		must(ns.AddRoute(kr))
		tbl.Routes = append(tbl.Routes, fr)
	}
	if rules {
		for _, r := range fibRules {
			kr := kernel.Rule{Priority: int(r.Priority), IPv6: r.IPv6, Src: r.Src, Dst: r.Dst, Mark: r.Mark, Mask: r.Mask,
				Invert: r.Invert, Table: int(r.Table), Action: []int{0, 6, 7, 8}[r.Action]}
			for name, i := range idx {
				if uint32(i) == r.Iif {
					kr.Iif = name
				}
				if uint32(i) == r.Oif {
					kr.Oif = name
				}
			}
			must(ns.AddRule(kr))
			tbl.Rules = append(tbl.Rules, r)
		}
	}
	return ns, tbl
}

// fibRules are the fib rules of TestKernel_FibLookupRules, their devices
// as ifindexes of fibDevs in a namespace made by fibScenario (fibb 2,
// fiba 3, fibd 4, fibc 5: a veth pair numbers its peer first).
var fibRules = []fib.Rule{
	{Priority: 100, Src: netip.MustParsePrefix("192.168.1.0/24"), Dst: netip.MustParsePrefix("172.16.0.0/12"), Table: 100},
	{Priority: 110, Mark: 0x10, Table: 100},
	{Priority: 120, Iif: 2, Table: 100},
	{Priority: 130, Oif: 5, Action: fib.RuleBlackhole},
	{Priority: 140, Dst: netip.MustParsePrefix("10.80.0.0/16"), Action: fib.RuleUnreachable},
	{Priority: 150, Invert: true, Dst: netip.MustParsePrefix("10.0.0.0/8"), Mark: 0x20, Mask: 0xf0, Action: fib.RuleProhibit},
	{Priority: 100, IPv6: true, Src: netip.MustParsePrefix("2001:db8:1::/64"), Table: 100},
	{Priority: 110, IPv6: true, Mark: 0x10, Table: 100},
	{Priority: 120, IPv6: true, Dst: netip.MustParsePrefix("2001:db8:80::/48"), Action: fib.RuleBlackhole},
	{Priority: 130, IPv6: true, Iif: 2, Table: 100},
	{Priority: 140, IPv6: true, Oif: 5, Action: fib.RuleProhibit},
	{Priority: 32766, IPv6: true, Mark: 0x25, Action: fib.RuleUnreachable},
}

// TestKernel_FibLookup compares bpf_fib_lookup on both families with the
// kernel's, in a namespace set up as the engine's fib.Table: random
// params (family, device, source, destination, tot_len, tbid, mark, the
// bytes the helper may write) and random combinations of every flag of
// 6.18 (DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC, MARK and an unknown one),
// over frames of random length (the MTU check without tot_len). The
// params after the call and the result must agree; every result the
// scenario can give must be reached.
func TestKernel_FibLookup(t *testing.T) { fibDifferential(t, false) }

// TestKernel_FibLookupRules is TestKernel_FibLookup with fib rules of
// both families (fibRules): source and destination prefixes, input and
// output devices, marks under masks, not, tables, blackhole, unreachable
// and prohibit; IPv4's local table is then apart from main.
func TestKernel_FibLookupRules(t *testing.T) { fibDifferential(t, true) }

func fibDifferential(t *testing.T, rules bool) {
	kerneltest.RequireKernel(t)
	kerneldiff.PinCPU0(t)
	ns, tbl := fibScenario(t, rules)
	kerneldiff.PinNSCPU0(t, ns)
	spec, err := engine.LoadCollectionSpec(filepath.Join("testdata", "fib_probe.o"))
	if err != nil {
		t.Fatal(err)
	}
	kern, err := kernel.NewTestRunner(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kern.Close() })
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, FIB: tbl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Close() })
	s, err := kerneldiff.NewSide(kern, coll)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.NS = ns
	var ifindexes []uint32
	for _, d := range tbl.Devices {
		ifindexes = append(ifindexes, d.Ifindex)
	}
	ifindexes = append(ifindexes, ifindexes[1], 99)
	lookups := envInt(t, "KERNELDIFF_PACKETS", 1000) * 5
	seed := uint64(envInt(t, "KERNELDIFF_SEED", 0))
	rng := rand.New(rand.NewPCG(9+seed, 9))
	results, results6 := map[int64]int{}, map[int64]int{}
	flagsSeen := map[uint32]int{}
	for i := range lookups {
		frame := make([]byte, 14+fib.ParamsSize+rng.IntN(1600))
		p := frame[14 : 14+fib.ParamsSize]
		for k := range p {
			p[k] = byte(rng.Uint32())
		}
		dst := netip.MustParseAddr(fibDsts[rng.IntN(len(fibDsts))])
		src := netip.MustParseAddr(fibSrcs[rng.IntN(len(fibSrcs))])
		if rng.IntN(4) == 0 { // somewhere else in the same prefix
			b := dst.AsSlice()
			b[len(b)-1] = byte(rng.Uint32())
			dst, _ = netip.AddrFromSlice(b)
		}
		switch rng.IntN(20) {
		case 0:
			p[0] = byte(rng.IntN(12))
		case 1, 2, 3, 4, 5, 6, 7, 8, 9:
			p[0] = 2
		default:
			p[0] = 10
		}
		if dst.Is4() != (p[0] == 2) { // the other family's address, as a v4-mapped or a v4 in v6's first word
			if p[0] == 10 && rng.IntN(2) == 0 {
				dst = netip.AddrFrom16(dst.As16())
			}
		}
		copy(p[32:48], make([]byte, 16))
		copy(p[32:], dst.AsSlice())
		if src.Is4() == dst.Is4() || rng.IntN(3) == 0 {
			copy(p[16:32], make([]byte, 16))
			copy(p[16:], src.AsSlice())
		}
		le := binary.LittleEndian
		switch rng.IntN(5) {
		case 0, 1, 2:
			le.PutUint16(p[6:], 0)
		case 3:
			le.PutUint16(p[6:], uint16(1200+rng.IntN(400)))
		}
		le.PutUint32(p[8:], ifindexes[rng.IntN(len(ifindexes))])
		le.PutUint32(p[48:], []uint32{0, 100, 100, fib.TableDefault, fib.TableMain, fib.TableLocal, 1000, rng.Uint32()}[rng.IntN(8)])
		var flags uint32
		for _, f := range []uint32{fib.FlagDirect, fib.FlagOutput, fib.FlagSkipNeigh, fib.FlagTBID, fib.FlagSrc, fib.FlagMark} {
			if rng.IntN(3) == 0 {
				flags |= f
			}
		}
		if rng.IntN(40) == 0 {
			flags |= 1 << (6 + rng.IntN(26))
		}
		if rng.IntN(2) == 0 {
			le.PutUint32(p[52:], []uint32{0, 0x10, 0x20, 0x25, 0x2f}[rng.IntN(5)])
		}
		ctx := make([]byte, skb.CtxSize)
		le.PutUint32(ctx[skb.CtxCB:], flags)
		model := append([]byte(nil), p...)
		rc := tbl.Lookup(model, flags, len(frame), false)
		d, err := s.Compare("fib_probe", frame, ctx, map[uint32]int{})
		if err != nil {
			t.Fatal(err)
		}
		if d != "" {
			t.Fatalf("divergence at lookup %d: flags %#x, model result %d: %s\nparams in % x", i, flags, rc, d, p)
		}
		results[rc]++
		if p[0] == 10 {
			results6[rc]++
		}
		if rc >= 0 {
			flagsSeen[flags]++
		}
	}
	t.Logf("bpf_fib_lookup: %d lookups, 0 divergences, results %v (IPv6 %v), %d flag combinations answered", lookups, results, results6, len(flagsSeen))
	// Every answer but NO_SRC_ADDR (an IPv6 namespace with lo up always has
	// ::1 to choose) and UNSUPP_LWT (no lightweight tunnel routes).
	for _, want := range []int64{fib.RetSuccess, fib.RetBlackhole, fib.RetUnreachable, fib.RetProhibit, fib.RetNotFwded,
		fib.RetFwdDisabled, fib.RetNoNeigh, fib.RetFragNeeded, -22, -19, -97} {
		if results[want] == 0 {
			t.Errorf("no lookup gave %d: %v", want, results)
		}
		if want >= 0 && results6[want] == 0 {
			t.Errorf("no IPv6 lookup gave %d: %v", want, results6)
		}
	}
}
