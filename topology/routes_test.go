package topology_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tcxgo/tcx/fib"
	"github.com/tcxgo/tcx/topology"
)

const routesYAML = `namespaces: [b]
devices:
  - name: r0
    mac: 02:00:00:00:01:00
    addresses: [10.0.0.1/24, 2001:db8::1/64]
    forwarding: true
  - name: r1
    mac: 02:00:00:00:01:01
    mtu: 1400
    addresses: [10.1.0.1/24]
    forwarding: true
  - name: r0
    netns: b
    addresses: [10.9.0.1/24]
routes:
  - { to: default, via: 10.1.0.254 }
  - { to: 2001:db8:7::/48, via: 2001:db8::fe, metric: 5 }
  - { to: 10.66.0.0/16, type: blackhole }
  - { to: 172.16.0.0/12, dev: r1, table: 100, mtu: 1300 }
  - { to: 10.5.0.0/16, via: 10.9.0.254, netns: b }
neighbours:
  - { addr: 10.1.0.254, mac: 02:00:00:00:fe:01, dev: r1 }
  - { addr: 10.9.0.254, mac: 02:00:00:00:fe:09, dev: r0, netns: b }
rules:
  - { priority: 100, fwmark: "0x10/0xf0", table: 100 }
  - { priority: 110, iif: r0, to: 10.99.0.0/16, type: prohibit }
  - { priority: 120, family: ipv6, fwmark: 7, type: blackhole }
`

func lookupParams(ifindex uint32, dst string) []byte {
	p := make([]byte, fib.ParamsSize)
	a := netip.MustParseAddr(dst)
	p[0] = 2
	if a.Is6() {
		p[0] = 10
	}
	binary.LittleEndian.PutUint32(p[8:], ifindex)
	copy(p[32:], a.AsSlice())
	return p
}

// The devices' addresses, routes and neighbours make each namespace's
// FIB: a gateway route chosen by its device, the MACs the lookup returns,
// forwarding as each device says, the other namespace its own.
func TestBuild_Routes(t *testing.T) {
	topo, err := topology.Parse("r.yaml", []byte(routesYAML))
	if err != nil {
		t.Fatal(err)
	}
	b, err := topo.Build(topology.BuildOptions{NoPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	def, nsb := b.FIBs["default"], b.FIBs["b"]
	p := lookupParams(2, "8.8.8.8")
	if rc := def.Lookup(p, 0, 100, false); rc != fib.RetSuccess {
		t.Fatalf("default route: %d", rc)
	}
	if out := binary.LittleEndian.Uint32(p[8:]); out != 3 || [6]byte(p[52:58]) != [6]byte{2, 0, 0, 0, 1, 1} || [6]byte(p[58:64]) != [6]byte{2, 0, 0, 0, 0xfe, 1} {
		t.Errorf("default route: out %d, params % x", out, p)
	}
	for _, c := range []struct {
		tbl   *fib.Table
		in    uint32
		dst   string
		flags uint32
		want  int64
	}{
		{def, 2, "10.66.1.1", 0, fib.RetBlackhole},
		{def, 2, "2001:db8:7::1", 0, fib.RetNoNeigh},
		{def, 2, "10.0.0.1", 0, fib.RetNotFwded},
		{def, 2, "172.16.0.1", fib.FlagDirect | fib.FlagTBID | fib.FlagSkipNeigh, fib.RetSuccess}, // tbid 0: main, its default route
		{nsb, 2, "8.8.8.8", 0, fib.RetFwdDisabled},
		{nsb, 4, "8.8.8.8", 0, -19},
	} {
		if rc := c.tbl.Lookup(lookupParams(c.in, c.dst), c.flags, 100, false); rc != c.want {
			t.Errorf("%s in %d: %d, want %d", c.dst, c.in, rc, c.want)
		}
	}
	// Table 100 with its locked MTU.
	p = lookupParams(2, "172.16.0.1")
	binary.LittleEndian.PutUint16(p[6:], 1350)
	binary.LittleEndian.PutUint32(p[48:], 100)
	if rc := def.Lookup(p, fib.FlagDirect|fib.FlagTBID|fib.FlagSkipNeigh, 100, false); rc != fib.RetFragNeeded || binary.LittleEndian.Uint16(p[6:]) != 1300 {
		t.Errorf("table 100 over its route MTU: %d, mtu %d", rc, binary.LittleEndian.Uint16(p[6:]))
	}
	// The rules: a mark selects table 100, a destination from r0 is
	// prohibited; namespace b has none.
	p = lookupParams(2, "172.16.0.1")
	binary.LittleEndian.PutUint32(p[52:], 0x15)
	if rc := def.Lookup(p, fib.FlagMark|fib.FlagSkipNeigh, 100, false); rc != fib.RetSuccess || binary.LittleEndian.Uint32(p[8:]) != 3 {
		t.Errorf("fwmark 0x15 into table 100: %d, out %d", rc, binary.LittleEndian.Uint32(p[8:]))
	}
	if rc := def.Lookup(lookupParams(2, "10.99.1.1"), 0, 100, false); rc != fib.RetProhibit {
		t.Errorf("prohibit rule: %d", rc)
	}
	if len(def.Rules) != 3 || len(nsb.Rules) != 0 || !def.Rules[2].IPv6 || def.Rules[0].Mask != 0xf0 {
		t.Errorf("rules: default %+v, b %+v", def.Rules, nsb.Rules)
	}
	if n := len(nsb.Neighbours); n != 1 {
		t.Errorf("namespace b has %d neighbours, want 1", n)
	}
}

// Routing mistakes carry file, line and column, and never panic.
func TestParse_RouteErrors(t *testing.T) {
	dev := "devices:\n  - name: a\n    addresses: [10.0.0.1/24]\n"
	for _, tc := range []struct{ yaml, want string }{
		{dev + "routes:\n  - { to: 10.1.0.0/16, via: 10.2.0.1 }\n", `t.yaml:5:29: routes[0].via: gateway 10.2.0.1 is on no prefix of a device of namespace default`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, via: 10.2.0.1, dev: a }\n", `routes[0].via: gateway 10.2.0.1 is on no prefix of a's addresses`},
		{dev + "routes:\n  - { to: 10.1.0.1/16, dev: a }\n", `t.yaml:5:11: routes[0].to: destination 10.1.0.1/16 has host bits set: did you mean 10.1.0.0/16?`},
		{dev + "routes:\n  - { to: nowhere, dev: a }\n", `routes[0].to: destination "nowhere"`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, dev: zz }\n", `t.yaml:5:29: routes[0].dev: no device "zz" in namespace default`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, type: blackhole, dev: a }\n", `routes[0].type: a blackhole route has no via or dev`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, type: local }\n", `routes[0].type: route type "local"`},
		{dev + "routes:\n  - { to: 10.1.0.0/16 }\n", `routes[0].via: a unicast route needs dev or via`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, dev: a, src: 10.0.0.9 }\n", `routes[0].src: source 10.0.0.9 is no address`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, dev: a, mtu: 20 }\n", `routes[0].mtu: mtu 20`},
		{dev + "routes:\n  - { to: 2001:db8::/32, via: 10.0.0.2 }\n", `routes[0].via: gateway 10.0.0.2 and destination 2001:db8::/32 are of different families`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, dev: a, netns: zz }\n", `routes[0].netns: unknown namespace "zz"`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, dev: a, table: 255 }\n", `routes[0].table: table 255 (local) is the kernel's`},
		{dev + "neighbours:\n  - { addr: 10.0.0.2, mac: 02:00:00, dev: a }\n", `t.yaml:5:28: neighbours[0].mac: MAC address "02:00:00"`},
		{dev + "neighbours:\n  - { addr: 10.0.0.300, mac: 02:00:00:00:00:01, dev: a }\n", `neighbours[0].addr: neighbour address "10.0.0.300"`},
		{dev + "neighbours:\n  - { addr: 10.0.0.3, mac: 02:00:00:00:00:01, dev: b }\n", `neighbours[0].dev: no device "b"`},
		{"devices:\n  - name: a\n    addresses: [10.0.0.1]\n", `t.yaml:3:17: devices[0].addresses[0]: address "10.0.0.1": want ADDRESS/LENGTH`},
		{"devices:\n  - name: a\n    addresses: [224.0.0.1/4]\n", `devices[0].addresses[0]: address "224.0.0.1/4": want a unicast address`},
		{"devices:\n  - name: a\n    mac: zz\n", `t.yaml:3:10: devices[0].mac: MAC address "zz"`},
		{dev + "routes:\n  - { to: 10.1.0.0/16, metric: -1, dev: a }\n", `t.yaml:5:`},
		{dev + "rules:\n  - { table: 100 }\n", `t.yaml:5:5: rules[0].priority: a rule needs a priority`},
		{dev + "rules:\n  - { priority: 5 }\n", `rules[0].table: a rule looks a table up`},
		{dev + "rules:\n  - { priority: 5, table: 9, type: blackhole }\n", `rules[0].table: a blackhole rule looks no table up`},
		{dev + "rules:\n  - { priority: 5, type: nat }\n", `rules[0].type: rule type "nat"`},
		{dev + "rules:\n  - { priority: 5, table: 9, iif: zz }\n", `rules[0].iif: no device "zz"`},
		{dev + "rules:\n  - { priority: 5, table: 9, fwmark: 0x1/zz }\n", `rules[0].fwmark: fwmark 0x1/zz`},
		{dev + "rules:\n  - { priority: 5, table: 9, from: 10.0.0.0/8, to: 2001:db8::/32 }\n", `rules[0].to: prefix 2001:db8::/32 is ipv6`},
		{dev + "rules:\n  - { priority: 5, table: 9, family: ipv6, to: 10.0.0.0/8 }\n", `rules[0].to: prefix 10.0.0.0/8 is ipv4`},
		{dev + "rules:\n  - { priority: 5, table: 9, family: ip7 }\n", `rules[0].family: family "ip7"`},
		{dev + "rules:\n  - { priority: 5, table: 9, netns: q }\n", `rules[0].netns: unknown namespace "q"`},
	} {
		_, err := topology.Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.yaml, err, tc.want)
		}
		var te *topology.Error
		if err != nil && !errors.As(err, &te) {
			t.Errorf("%q: %T is not a *topology.Error", tc.yaml, err)
		}
	}
}
