package topology

import (
	"fmt"
	"net"
	"net/netip"
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

// Neighbour is a static ARP/NDP entry (ip neigh add ... nud permanent).
type Neighbour struct {
	Addr  string `yaml:"addr"`
	MAC   string `yaml:"mac"`
	Dev   string `yaml:"dev"`
	NetNS string `yaml:"netns"`
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
	type devAddrs struct {
		key    string
		ifx    uint32
		prefix []netip.Prefix
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
	return tables, errs
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
