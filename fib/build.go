package fib

import "net/netip"

// IPv6 route metrics the kernel gives when none is asked for: routes of
// an address's prefix (IP6_RT_PRIO_ADDRCONF) and routes a user adds
// (IP6_RT_PRIO_USER). IPv4 routes default to 0.
const (
	MetricAddrconf6 = 256
	MetricUser6     = 1024
)

// NewNamespace returns the table of a new network namespace whose
// loopback device is up (ip link set lo up): 127.0.0.1/8 and ::1/128 on
// lo, with the routes the kernel adds for them.
func NewNamespace() *Table {
	t := &Table{Devices: []Device{{Ifindex: 1, MTU: 65536}}}
	t.AddAddress(1, netip.MustParsePrefix("127.0.0.1/8"))
	t.AddAddress(1, netip.MustParsePrefix("::1/128"))
	return t
}

// AddAddress assigns p to the device ifindex (which must be up, as for
// the kernel's routes to appear) and adds the routes the kernel adds with
// it (fib_add_ifaddr, addrconf_prefix_route): for IPv4 a local route in
// the local table, the prefix in main with p's address as preferred
// source (on lo: a local route, in the local table) and the directed
// broadcast address for prefixes shorter than /31; for IPv6 a local route
// (metric 0) and the prefix in main (metric 256, none for a /128). The
// subnet-router anycast address of devices that forward IPv6 is answered
// at lookup time, as the kernel adds and removes it with forwarding.
func (t *Table) AddAddress(ifindex uint32, p netip.Prefix) {
	a := p.Addr()
	t.Addrs = append(t.Addrs, Addr{Ifindex: ifindex, Prefix: p})
	host := netip.PrefixFrom(a, a.BitLen())
	if a.Is6() {
		t.Routes = append(t.Routes, Route{Dst: host, Type: Local, Table: TableLocal, Ifindex: ifindex})
		if p.Bits() < 128 {
			t.Routes = append(t.Routes, Route{Dst: p.Masked(), Ifindex: ifindex, Metric: MetricAddrconf6})
		}
		return
	}
	t.Routes = append(t.Routes, Route{Dst: host, Type: Local, Table: TableLocal, Ifindex: ifindex, PrefSrc: a})
	if p.Bits() == 32 {
		return
	}
	if ifindex == 1 {
		t.Routes = append(t.Routes, Route{Dst: p.Masked(), Type: Local, Table: TableLocal, Ifindex: 1, PrefSrc: a})
	} else {
		t.Routes = append(t.Routes, Route{Dst: p.Masked(), Ifindex: ifindex, PrefSrc: a})
	}
	if p.Bits() < 31 {
		b := p.Masked().Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		t.Routes = append(t.Routes, Route{Dst: netip.PrefixFrom(netip.AddrFrom4(b), 32), Type: Broadcast, Table: TableLocal, Ifindex: ifindex, PrefSrc: a})
	}
}
