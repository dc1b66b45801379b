package topology

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcxgo/tcx/fib"
)

// Route is a static route of a namespace (ip route add), for
// bpf_fib_lookup: the routes of devices' addresses are added without
// being listed.
type Route struct {
	// To is the destination prefix (10.0.0.0/8, 2001:db8::/32), or
	// "default" (0.0.0.0/0, or ::/0 when via is IPv6).
	To string `yaml:"to"`
	// Via is the gateway, on a prefix of an address of dev; none: on link.
	Via string `yaml:"via"`
	// Dev is the output device, in the route's namespace; default: the
	// device with an address whose prefix holds via.
	Dev   string `yaml:"dev"`
	NetNS string `yaml:"netns"`
	// Type is unicast (default), blackhole, unreachable, prohibit or
	// throw; the others have no via or dev.
	Type string `yaml:"type"`
	// Table is the routing table (0: main, 254); lookups see tables other
	// than main only with BPF_FIB_LOOKUP_DIRECT|BPF_FIB_LOOKUP_TBID.
	Table uint32 `yaml:"table"`
	// Metric is the route's priority (default 0 for IPv4, 1024 for IPv6,
	// as the kernel gives).
	Metric uint32 `yaml:"metric"`
	// Src is the preferred source address (an address of the namespace).
	Src string `yaml:"src"`
	// MTU is a locked route MTU (ip route ... mtu lock N).
	MTU int `yaml:"mtu"`
}

// Rule is a fib rule (ip rule add): which table a bpf_fib_lookup without
// BPF_FIB_LOOKUP_DIRECT reads, or that it fails.
type Rule struct {
	// Priority orders the rules (1..4294967295; the kernel's own are
	// local at 0, main at 32766, default at 32767).
	Priority uint32 `yaml:"priority"`
	// From and To are prefixes the source and destination must be in.
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Iif and Oif name devices: the one a lookup comes in by (lo for a
	// BPF_FIB_LOOKUP_OUTPUT one) and the one an OUTPUT lookup names.
	Iif string `yaml:"iif"`
	Oif string `yaml:"oif"`
	// Fwmark is the mark (params->mark with BPF_FIB_LOOKUP_MARK) as N or
	// "N/MASK".
	Fwmark any `yaml:"fwmark"`
	// Not inverts the selectors.
	Not bool `yaml:"not"`
	// Table is the table to look up; Type instead ends the lookup:
	// blackhole, unreachable or prohibit.
	Table uint32 `yaml:"table"`
	Type  string `yaml:"type"`
	// Family is ipv4 (default, as ip rule) or ipv6; from or to decide it
	// when given.
	Family string `yaml:"family"`
	NetNS  string `yaml:"netns"`
}

// Neighbour is a static ARP/NDP entry (ip neigh add ... nud permanent).
type Neighbour struct {
	Addr  string `yaml:"addr"`
	MAC   string `yaml:"mac"`
	Dev   string `yaml:"dev"`
	NetNS string `yaml:"netns"`
}

// devAddrs is a device's ifindex and IP prefixes, by NS/NAME.
type devAddrs struct {
	key    string
	ifx    uint32
	prefix []netip.Prefix
}

func nsOf(s string) string {
	if s == "" {
		return DefaultNetNS
	}
	return s
}

// routing checks the devices' addresses and MACs, the routes and the
// neighbours, and builds each namespace's FIB; ifindex gives a device's
// ifindex by NS/NAME (Validate passes one that answers 0).
func (t *Topology) routing(ifindex func(key string) uint32) (map[string]*fib.Table, []error) {
	var errs []error
	bad := func(e *Error) { errs = append(errs, e) }
	tables := map[string]*fib.Table{DefaultNetNS: fib.NewNamespace()}
	for _, n := range t.Namespaces {
		tables[n] = fib.NewNamespace()
	}
	devs := map[string]*devAddrs{}
	for i, d := range t.Devices {
		p := fmt.Sprintf("$.devices[%d]", i)
		tbl := tables[d.ns()]
		if tbl == nil {
			continue // an unknown namespace, reported by Validate
		}
		mtu := uint32(d.MTU)
		if mtu == 0 {
			mtu = 1500
		}
		fd := fib.Device{Ifindex: ifindex(d.key()), MTU: mtu, Forwarding4: d.Forwarding, Forwarding6: d.Forwarding}
		if d.MAC != "" {
			mac, err := parseMAC(d.MAC)
			if err != nil {
				bad(t.errAt(p+".mac", "%v", err))
			}
			fd.MAC = mac
		}
		tbl.Devices = append(tbl.Devices, fd)
		da := &devAddrs{key: d.key(), ifx: fd.Ifindex}
		devs[d.key()] = da
		for k, a := range d.Addresses {
			pfx, err := netip.ParsePrefix(a)
			if err != nil {
				bad(t.errAt(fmt.Sprintf("%s.addresses[%d]", p, k), "address %q: want ADDRESS/LENGTH (10.0.0.1/24, 2001:db8::1/64)", a))
				continue
			}
			if pfx.Addr().Zone() != "" || pfx.Addr().Is4In6() || pfx.Addr().IsMulticast() || pfx.Addr().IsUnspecified() || pfx.Addr().IsLoopback() {
				bad(t.errAt(fmt.Sprintf("%s.addresses[%d]", p, k), "address %q: want a unicast address that is not loopback", a))
				continue
			}
			da.prefix = append(da.prefix, pfx)
			tbl.AddAddress(fd.Ifindex, pfx)
		}
	}
	// dev finds a device of namespace ns by name, or the one with a
	// prefix holding gw.
	dev := func(ns, name string, gw netip.Addr) (*devAddrs, string) {
		if name != "" {
			if d := devs[ns+"/"+name]; d != nil {
				return d, ""
			}
			return nil, fmt.Sprintf("no device %q in namespace %s", name, ns)
		}
		if !gw.IsValid() {
			return nil, "a unicast route needs dev or via"
		}
		for _, d := range t.Devices {
			if d.ns() != ns {
				continue
			}
			for _, p := range devs[d.key()].prefix {
				if p.Contains(gw) {
					return devs[d.key()], ""
				}
			}
		}
		return nil, fmt.Sprintf("gateway %s is on no prefix of a device of namespace %s: name dev", gw, ns)
	}
	for i, r := range t.Routes {
		p := fmt.Sprintf("$.routes[%d]", i)
		ns := nsOf(r.NetNS)
		tbl := tables[ns]
		if tbl == nil {
			bad(t.errAt(p+".netns", "unknown namespace %q: declare it under namespaces", r.NetNS))
			continue
		}
		typ, ok := fib.ParseRouteType(r.Type)
		if !ok || typ == fib.Local || typ == fib.Broadcast || typ == fib.Anycast {
			bad(t.errAt(p+".type", "route type %q: want unicast, blackhole, unreachable, prohibit or throw", r.Type))
			continue
		}
		var via, src netip.Addr
		var err error
		if r.Via != "" {
			if via, err = netip.ParseAddr(r.Via); err != nil || via.Zone() != "" {
				bad(t.errAt(p+".via", "gateway %q: want an IPv4 or IPv6 address", r.Via))
				continue
			}
		}
		to := r.To
		if to == "default" {
			to = "0.0.0.0/0"
			if via.Is6() {
				to = "::/0"
			}
		}
		dst, err := netip.ParsePrefix(to)
		if err != nil {
			bad(t.errAt(p+".to", "destination %q: want PREFIX/LENGTH or default", r.To))
			continue
		}
		if dst != dst.Masked() {
			bad(t.errAt(p+".to", "destination %s has host bits set: did you mean %s?", dst, dst.Masked()))
			continue
		}
		if via.IsValid() && via.Is4() != dst.Addr().Is4() {
			bad(t.errAt(p+".via", "gateway %s and destination %s are of different families", via, dst))
			continue
		}
		if r.Src != "" {
			if src, err = netip.ParseAddr(r.Src); err != nil || src.Is4() != dst.Addr().Is4() {
				bad(t.errAt(p+".src", "source %q: want an address of the destination's family", r.Src))
				continue
			}
			if !t.ownAddr(ns, src) {
				bad(t.errAt(p+".src", "source %s is no address of a device of namespace %s", src, ns))
				continue
			}
		}
		if r.MTU != 0 && (r.MTU < 68 || r.MTU > 65535) {
			bad(t.errAt(p+".mtu", "mtu %d: want 68..65535", r.MTU))
			continue
		}
		if r.Table == fib.TableLocal {
			bad(t.errAt(p+".table", "table 255 (local) is the kernel's, for the namespace's own addresses"))
			continue
		}
		fr := fib.Route{Dst: dst, Type: typ, Table: r.Table, Metric: r.Metric, PrefSrc: src, MTU: uint32(r.MTU), Gateway: via}
		if fr.Metric == 0 && dst.Addr().Is6() {
			fr.Metric = fib.MetricUser6
		}
		if typ != fib.Unicast {
			if r.Via != "" || r.Dev != "" {
				bad(t.errAt(p+".type", "a %s route has no via or dev", typ))
				continue
			}
			tbl.Routes = append(tbl.Routes, fr)
			continue
		}
		d, why := dev(ns, r.Dev, via)
		if d == nil {
			at := p + ".dev"
			if r.Dev == "" {
				at = p + ".via"
			}
			bad(t.errAt(at, "%s", why))
			continue
		}
		if via.IsValid() && !onLink(d.prefix, via) {
			bad(t.errAt(p+".via", "gateway %s is on no prefix of %s's addresses (the kernel answers ENETUNREACH)", via, r.Dev))
			continue
		}
		fr.Ifindex = d.ifx
		tbl.Routes = append(tbl.Routes, fr)
	}
	for i, n := range t.Neighbours {
		p := fmt.Sprintf("$.neighbours[%d]", i)
		ns := nsOf(n.NetNS)
		if tables[ns] == nil {
			bad(t.errAt(p+".netns", "unknown namespace %q: declare it under namespaces", n.NetNS))
			continue
		}
		a, err := netip.ParseAddr(n.Addr)
		if err != nil || a.Zone() != "" {
			bad(t.errAt(p+".addr", "neighbour address %q: want an IPv4 or IPv6 address", n.Addr))
			continue
		}
		mac, err := parseMAC(n.MAC)
		if err != nil {
			bad(t.errAt(p+".mac", "%v", err))
			continue
		}
		d := devs[ns+"/"+n.Dev]
		if d == nil {
			bad(t.errAt(p+".dev", "no device %q in namespace %s", n.Dev, ns))
			continue
		}
		tables[ns].Neighbours = append(tables[ns].Neighbours, fib.Neighbour{Ifindex: d.ifx, Addr: a, MAC: mac})
	}
	for i, r := range t.Rules {
		p := fmt.Sprintf("$.rules[%d]", i)
		ns := nsOf(r.NetNS)
		if tables[ns] == nil {
			bad(t.errAt(p+".netns", "unknown namespace %q: declare it under namespaces", r.NetNS))
			continue
		}
		fr, at, err := t.rule(r, ns, devs)
		if err != nil {
			bad(t.errAt(p+at, "%v", err))
			continue
		}
		tables[ns].Rules = append(tables[ns].Rules, fr)
	}
	return tables, errs
}

// rule checks a rule and makes it a fib.Rule; at is the key at fault.
func (t *Topology) rule(r Rule, ns string, devs map[string]*devAddrs) (fib.Rule, string, error) {
	fr := fib.Rule{Priority: r.Priority, Invert: r.Not, Table: r.Table}
	if r.Priority == 0 {
		return fr, ".priority", fmt.Errorf("a rule needs a priority, 1..4294967295 (0 is the kernel's rule for the local table)")
	}
	switch r.Family {
	case "", "ipv4":
	case "ipv6":
		fr.IPv6 = true
	default:
		return fr, ".family", fmt.Errorf("family %q: want ipv4 or ipv6", r.Family)
	}
	fam := ""
	for _, x := range []struct {
		key, s string
		dst    *netip.Prefix
	}{{".from", r.From, &fr.Src}, {".to", r.To, &fr.Dst}} {
		if x.s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(x.s)
		if err != nil || pfx != pfx.Masked() {
			return fr, x.key, fmt.Errorf("prefix %q: want PREFIX/LENGTH without host bits", x.s)
		}
		f := "ipv4"
		if pfx.Addr().Is6() {
			f = "ipv6"
		}
		if fam != "" && fam != f || r.Family != "" && r.Family != f {
			return fr, x.key, fmt.Errorf("prefix %s is %s, the rule's other addresses or family are not", pfx, f)
		}
		fam = f
		fr.IPv6 = f == "ipv6"
		*x.dst = pfx
	}
	for _, x := range []struct {
		key, name string
		dst       *uint32
	}{{".iif", r.Iif, &fr.Iif}, {".oif", r.Oif, &fr.Oif}} {
		switch {
		case x.name == "":
		case x.name == "lo":
			*x.dst = 1
		case devs[ns+"/"+x.name] != nil:
			*x.dst = devs[ns+"/"+x.name].ifx
		default:
			return fr, x.key, fmt.Errorf("no device %q in namespace %s", x.name, ns)
		}
	}
	if r.Fwmark != nil {
		mark, mask, err := parseMark(r.Fwmark)
		if err != nil {
			return fr, ".fwmark", err
		}
		fr.Mark, fr.Mask = mark, mask
	}
	switch r.Type {
	case "":
		if r.Table == 0 {
			return fr, ".table", fmt.Errorf("a rule looks a table up (table: N) or has a type (blackhole, unreachable, prohibit)")
		}
	case "blackhole", "unreachable", "prohibit":
		if r.Table != 0 {
			return fr, ".table", fmt.Errorf("a %s rule looks no table up", r.Type)
		}
		fr.Action = map[string]fib.RuleAction{"blackhole": fib.RuleBlackhole, "unreachable": fib.RuleUnreachable, "prohibit": fib.RuleProhibit}[r.Type]
	default:
		return fr, ".type", fmt.Errorf("rule type %q: want blackhole, unreachable or prohibit (or table: N)", r.Type)
	}
	return fr, "", nil
}

// parseMark reads a fwmark: an integer, or "N/MASK" with either in
// decimal or 0x hex.
func parseMark(v any) (mark, mask uint32, err error) {
	bad := fmt.Errorf("fwmark %v: want N or N/MASK (32-bit, decimal or 0x hex)", v)
	switch x := v.(type) {
	case uint64:
		if x > 0xffffffff {
			return 0, 0, bad
		}
		return uint32(x), 0, nil
	case int64:
		if x < 0 || x > 0xffffffff {
			return 0, 0, bad
		}
		return uint32(x), 0, nil
	case int:
		if x < 0 || int64(x) > 0xffffffff {
			return 0, 0, bad
		}
		return uint32(x), 0, nil
	case string:
		m, k, hasMask := strings.Cut(x, "/")
		a, err1 := strconv.ParseUint(m, 0, 32)
		b, err2 := uint64(0), error(nil)
		if hasMask {
			b, err2 = strconv.ParseUint(k, 0, 32)
		}
		if err1 != nil || err2 != nil {
			return 0, 0, bad
		}
		return uint32(a), uint32(b), nil
	}
	return 0, 0, bad
}

func onLink(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ownAddr reports an address of a device of namespace ns.
func (t *Topology) ownAddr(ns string, a netip.Addr) bool {
	for _, d := range t.Devices {
		if d.ns() != ns {
			continue
		}
		for _, s := range d.Addresses {
			if p, err := netip.ParsePrefix(s); err == nil && p.Addr() == a {
				return true
			}
		}
	}
	return false
}

func parseMAC(s string) ([6]byte, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return [6]byte{}, fmt.Errorf("MAC address %q: want six bytes as 02:00:00:00:00:01", strings.TrimSpace(s))
	}
	return [6]byte(m), nil
}
