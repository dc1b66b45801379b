package fib

import "net/netip"

// hasTable is fib_get_table / fib6_get_table: IPv6 always has its local
// and main tables; IPv4 its main table, the local one (merged into main)
// once a local route exists, and others once a route of theirs does.
func (t *Table) hasTable(tbid uint32, v6 bool) bool {
	if tbid == TableMain || (v6 && tbid == TableLocal) {
		return true
	}
	if t != nil {
		for i := range t.Routes {
			if r := &t.Routes[i]; r.table() == tbid && r.Dst.Addr().Is6() == v6 {
				return true
			}
		}
	}
	return false
}

// lookup4 is fib_table_lookup in table tbid. Without custom rules the
// kernel keeps the local table merged into main (fib_unmerge undoes it
// when a rule is added): looking up either sees both. Prefixes are tried
// longest first; within one, the local table's routes before main's, then
// by metric. A route without a next hop (blackhole, unreachable,
// prohibit, throw) answers at once; one with a next hop must leave
// through the device a BPF_FIB_LOOKUP_OUTPUT lookup names
// (fib_lookup_good_nhc), else the search goes on.
func (t *Table) lookup4(dst netip.Addr, flags, ifindex, tbid uint32) *Route {
	var oif uint32
	if flags&FlagOutput != 0 {
		oif = ifindex
	}
	merged := (tbid == TableMain || tbid == TableLocal) && !t.customRules(false)
	var best *Route
	for i := range t.Routes {
		r := &t.Routes[i]
		if !r.Dst.Addr().Is4() || !r.Dst.Contains(dst) {
			continue
		}
		if rt := r.table(); rt != tbid && !(merged && (rt == TableMain || rt == TableLocal)) {
			continue
		}
		if oif != 0 && r.Type.hasNexthop() && r.Ifindex != oif {
			continue
		}
		if best == nil || before4(r, best) {
			best = r
		}
	}
	return best
}

func before4(r, best *Route) bool {
	switch {
	case r.Dst.Bits() != best.Dst.Bits():
		return r.Dst.Bits() > best.Dst.Bits()
	case r.table() != best.table():
		return r.table() > best.table()
	}
	return r.Metric < best.Metric
}

// lookup6 is fib6_table_lookup in table tbid: the longest prefix with
// routes wins, whatever their devices; among its routes of the lowest
// metric, rt6_select prefers one leaving through oif (the device a
// lookup names, in both directions), else the first. A route without a
// next hop counts as leaving through lo. The local table also holds the
// subnet-router anycast address of every IPv6 prefix on a device that
// forwards (addrconf_join_anycast).
// anycast reports a match of such an address (RTN_ANYCAST: not
// forwarded).
func (t *Table) lookup6(dst netip.Addr, oif, tbid uint32) (_ *Route, anycast bool) {
	var best *Route
	for i := range t.Routes {
		r := &t.Routes[i]
		if !r.Dst.Addr().Is6() || r.table() != tbid || !r.Dst.Contains(dst) {
			continue
		}
		if best == nil || before6(r, best, oif) {
			best = r
		}
	}
	if tbid == TableLocal && (best == nil || best.Dst.Bits() < 128) {
		if t.anycast(dst) {
			return nil, true
		}
	}
	return best, false
}

func before6(r, best *Route, oif uint32) bool {
	switch {
	case r.Dst.Bits() != best.Dst.Bits():
		return r.Dst.Bits() > best.Dst.Bits()
	case r.Metric != best.Metric:
		return r.Metric < best.Metric
	}
	return nhDev(r) == oif && nhDev(best) != oif
}

func nhDev(r *Route) uint32 {
	if !r.Type.hasNexthop() || r.Ifindex == 0 {
		return 1
	}
	return r.Ifindex
}

func (t *Table) anycast(dst netip.Addr) bool {
	for _, a := range t.Addrs {
		if !a.Prefix.Addr().Is6() || a.Prefix.Bits() >= 127 {
			continue
		}
		d, ok := t.device(a.Ifindex)
		if !ok || !d.Forwarding6 {
			continue
		}
		if p := a.Prefix.Masked().Addr(); p == dst && !p.IsUnspecified() {
			return true
		}
	}
	return false
}
