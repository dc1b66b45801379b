package fib

import "net/netip"

// prefSrc is the source address a BPF_FIB_LOOKUP_SRC lookup reports: the
// route's preferred source, else the kernel's choice
// (fib_result_prefsrc, ipv6_dev_get_saddr). Only IPv6 can fail to find
// one (BPF_FIB_LKUP_RET_NO_SRC_ADDR); IPv4 then reports 0.0.0.0.
func (t *Table) prefSrc(r *Route, out uint32, dst netip.Addr, v6 bool) (netip.Addr, bool) {
	if r.PrefSrc.IsValid() {
		return r.PrefSrc, true
	}
	if v6 {
		return t.selectAddr6(out, dst)
	}
	return t.selectAddr4(out, r.Gateway), true
}

// selectAddr4 is inet_select_addr for a route of universe scope: the
// first global address of the output device, or the first one whose
// prefix holds the gateway; failing that the first global address of any
// device, in ifindex order (the kernel's device list order in a
// namespace whose devices were never renumbered). 127.0.0.0/8 addresses
// have host scope and are never chosen.
func (t *Table) selectAddr4(out uint32, gw netip.Addr) netip.Addr {
	var first netip.Addr
	for _, a := range t.Addrs {
		if a.Ifindex != out || !global4(a.Prefix) {
			continue
		}
		if gw.Is4() && a.Prefix.Contains(gw) {
			return a.Prefix.Addr()
		}
		if !first.IsValid() {
			first = a.Prefix.Addr()
		}
	}
	if first.IsValid() {
		return first
	}
	var bestIf uint32
	for _, a := range t.Addrs {
		if global4(a.Prefix) && (!first.IsValid() || a.Ifindex < bestIf) {
			first, bestIf = a.Prefix.Addr(), a.Ifindex
		}
	}
	if first.IsValid() {
		return first
	}
	return netip.IPv4Unspecified()
}

func global4(p netip.Prefix) bool {
	return p.Addr().Is4() && !p.Addr().IsLoopback()
}

// selectAddr6 is ipv6_dev_get_saddr for a global destination (link-local
// and multicast ones never get this far): among every IPv6 address of the
// namespace, RFC 6724's rules as the kernel orders them -- the
// destination itself, appropriate scope, the output device, matching
// label, longest matching prefix (up to the address's prefix length) --
// the first best in the kernel's order (listedBefore).
func (t *Table) selectAddr6(out uint32, dst netip.Addr) (netip.Addr, bool) {
	var best *Addr
	bi := -1
	for i := range t.Addrs {
		a := &t.Addrs[i]
		if !a.Prefix.Addr().Is6() || a.Prefix.Addr().IsMulticast() || a.Prefix.Addr().IsUnspecified() {
			continue
		}
		if best == nil || better6(a, best, out, dst) || (!better6(best, a, out, dst) && t.listedBefore(i, bi)) {
			best, bi = a, i
		}
	}
	if best == nil {
		return netip.Addr{}, false
	}
	return best.Prefix.Addr(), true
}

// listedBefore reports whether the kernel meets a before b: devices in
// ifindex order (the device list of a namespace whose devices were never
// renumbered), a device's addresses by scope, widest first, and within
// one scope the newest first (ipv6_link_dev_addr). i and j index Addrs,
// in the order the addresses were added.
func (t *Table) listedBefore(i, j int) bool {
	a, b := &t.Addrs[i], &t.Addrs[j]
	switch {
	case a.Ifindex != b.Ifindex:
		return a.Ifindex < b.Ifindex
	case scope6(a.Prefix.Addr()) != scope6(b.Prefix.Addr()):
		return scope6(a.Prefix.Addr()) > scope6(b.Prefix.Addr())
	}
	return i > j
}

// better6 reports whether a wins over b by the first rule that tells
// them apart.
func better6(a, b *Addr, out uint32, dst netip.Addr) bool {
	ds := scope6(dst)
	for rule := range 5 {
		x, y := score6(rule, a, out, dst, ds), score6(rule, b, out, dst, ds)
		if x != y {
			return x > y
		}
	}
	return false
}

func score6(rule int, a *Addr, out uint32, dst netip.Addr, ds int) int {
	addr := a.Prefix.Addr()
	switch rule {
	case 0: // rule 1: the destination itself
		return b2i(addr == dst)
	case 1: // rule 2: appropriate scope
		s := scope6(addr)
		if s >= ds {
			return -s
		}
		return s - 128
	case 2: // rule 5: the outgoing interface
		return b2i(a.Ifindex == out)
	case 3: // rule 6: matching label
		return b2i(label6(addr) == label6(dst))
	default: // rule 8: longest matching prefix
		return min(commonBits(addr, dst), a.Prefix.Bits())
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scope6 is __ipv6_addr_src_scope: link (link-local and, by RFC 6724
// 3.4, ::1), site, global (v4-mapped ones too, whatever the IPv4 address).
func scope6(a netip.Addr) int {
	switch {
	case a.Is4In6():
		return 0xe
	case a.IsLoopback(), a.IsLinkLocalUnicast():
		return 0x2
	case netip.MustParsePrefix("fec0::/10").Contains(a):
		return 0x5
	}
	return 0xe
}

// label6 is the default policy table's label (ip addrlabel).
func label6(a netip.Addr) int {
	for _, l := range [...]struct {
		p     string
		label int
	}{{"::1/128", 0}, {"::ffff:0:0/96", 4}, {"2001::/32", 6}, {"2002::/16", 2}, {"3ffe::/16", 12},
		{"fec0::/10", 11}, {"fc00::/7", 5}, {"::/96", 3}} {
		if netip.MustParsePrefix(l.p).Contains(a) {
			return l.label
		}
	}
	return 1
}

func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	for i := range 16 {
		if d := x[i] ^ y[i]; d != 0 {
			n := 0
			for d&0x80 == 0 {
				d <<= 1
				n++
			}
			return i*8 + n
		}
	}
	return 128
}
