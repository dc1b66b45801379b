package kernel

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is a route to install in a namespace's routing table.
type Route struct {
	Dst       netip.Prefix
	Gateway   netip.Addr // zero: on link
	Ifindex   int
	Table     int // 0: the main table
	Metric    int
	Blackhole bool
	// Type is the route's rtm_type (unix.RTN_UNREACHABLE, ...); 0 is
	// unicast, or blackhole with Blackhole set.
	Type int
	// Src is the preferred source address (ip route ... src), MTULock the
	// route's locked MTU (ip route ... mtu lock N); zero: none.
	Src     netip.Addr
	MTULock int
}

// AddAddr assigns p (address and prefix length) to a device; the kernel
// adds the connected and local routes.
func (ns *NetNS) AddAddr(ifindex int, p netip.Prefix) error {
	err := ns.Do(func() error {
		l, err := ns.nl.LinkByIndex(ifindex)
		if err != nil {
			return linkErr(err)
		}
		ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		a := &netlink.Addr{IPNet: ipn}
		if p.Addr().Is6() {
			// Usable at once, as IPv4 addresses are: no duplicate
			// address detection leaving it tentative for a while.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := ns.nl.AddrAdd(l, a); err != nil {
			return err
		}
		if p.Addr().Is6() && l.Attrs().RawFlags&unix.IFF_RUNNING != 0 {
			return ns.waitLocalRoute(p.Addr())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add address %s to %d: %w", p, ifindex, err)
	}
	return nil
}

// waitLocalRoute waits for the local route of IPv6 address a. Even
// without duplicate address detection, IPv6 inserts an address's local
// route from a work queue after RTM_NEWADDR has been answered; until then
// the kernel routes the address like any other on its prefix (a
// bpf_fib_lookup of it answers with the prefix route's device, not
// NOT_FWDED). IPv4 adds its local route before answering.
func (ns *NetNS) waitLocalRoute(a netip.Addr) error {
	filter := &netlink.Route{Table: unix.RT_TABLE_LOCAL, Dst: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(128, 128)}}
	const patience = 2 * time.Second
	deadline := time.Now().Add(patience)
	for {
		rs, err := ns.nl.RouteListFiltered(netlink.FAMILY_V6, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
		if err != nil {
			return fmt.Errorf("list local routes: %w", err)
		}
		if len(rs) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no local route for %s after %v: %w", a, patience, unix.ETIMEDOUT)
		}
		time.Sleep(time.Millisecond)
	}
}

// AddRoute installs r.
func (ns *NetNS) AddRoute(r Route) error {
	nr := &netlink.Route{
		Dst:       &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
		LinkIndex: r.Ifindex,
		Table:     r.Table,
		Priority:  r.Metric,
	}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	}
	if r.Blackhole {
		r.Type = unix.RTN_BLACKHOLE
	}
	if r.Type != 0 && r.Type != unix.RTN_UNICAST {
		nr.Type = r.Type
		if r.Type != unix.RTN_LOCAL {
			nr.LinkIndex = 0
		}
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.MTULock != 0 {
		nr.MTU, nr.MTULock = r.MTULock, true
	}
	err := ns.Do(func() error { return ns.nl.RouteAdd(nr) })
	if err != nil {
		return fmt.Errorf("add route %s: %w", r.Dst, err)
	}
	return nil
}

// AddNeigh adds a permanent neighbour entry: addr is at mac on ifindex.
func (ns *NetNS) AddNeigh(ifindex int, addr netip.Addr, mac [6]byte) error {
	fam := unix.AF_INET
	if addr.Is6() && !addr.Is4In6() {
		fam = unix.AF_INET6
	}
	err := ns.Do(func() error {
		return ns.nl.NeighAdd(&netlink.Neigh{LinkIndex: ifindex, Family: fam, State: netlink.NUD_PERMANENT,
			IP: addr.AsSlice(), HardwareAddr: net.HardwareAddr(mac[:])})
	})
	if err != nil {
		return fmt.Errorf("add neighbour %s on %d: %w", addr, ifindex, err)
	}
	return nil
}

// SetIPv4Forwarding switches IPv4 forwarding on or off for every device of
// the namespace (net.ipv4.conf.all.forwarding).
func (ns *NetNS) SetIPv4Forwarding(on bool) error {
	v := []byte("0\n")
	if on {
		v = []byte("1\n")
	}
	err := ns.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/all/forwarding", v, 0)
	})
	if err != nil {
		return fmt.Errorf("set ipv4 forwarding: %w", err)
	}
	return nil
}

// SetIPv6Forwarding switches IPv6 forwarding on or off for every device
// of the namespace (net.ipv6.conf.all.forwarding), which also makes the
// kernel add the subnet-router anycast address of each prefix.
func (ns *NetNS) SetIPv6Forwarding(on bool) error {
	v := []byte("0\n")
	if on {
		v = []byte("1\n")
	}
	err := ns.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", v, 0)
	})
	if err != nil {
		return fmt.Errorf("set ipv6 forwarding: %w", err)
	}
	return nil
}

// SetMTU sets a device's MTU (ip link set DEV mtu N).
func (ns *NetNS) SetMTU(ifindex, mtu int) error {
	err := ns.Do(func() error {
		l, err := ns.nl.LinkByIndex(ifindex)
		if err != nil {
			return linkErr(err)
		}
		return ns.nl.LinkSetMTU(l, mtu)
	})
	if err != nil {
		return fmt.Errorf("set mtu of device %d: %w", ifindex, err)
	}
	return nil
}

// SetDeviceForwarding switches IPv4 and IPv6 forwarding of one device
// on or off (net.ipv4.conf.NAME.forwarding, net.ipv6.conf.NAME.forwarding).
func (ns *NetNS) SetDeviceForwarding(name string, on bool) error {
	v := []byte("0\n")
	if on {
		v = []byte("1\n")
	}
	err := ns.Do(func() error {
		for _, fam := range []string{"ipv4", "ipv6"} {
			if err := os.WriteFile("/proc/sys/net/"+fam+"/conf/"+name+"/forwarding", v, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set forwarding of %s: %w", name, err)
	}
	return nil
}

// Rule is a fib rule to install (ip rule add): selectors (zero: any),
// then Action (unix.FR_ACT_*; 0 looks Table up).
type Rule struct {
	Priority   int
	IPv6       bool
	Src, Dst   netip.Prefix
	Iif, Oif   string
	Mark, Mask uint32
	Invert     bool
	Action     int
	Table      int
}

// AddRule installs r.
func (ns *NetNS) AddRule(r Rule) error {
	nr := netlink.NewRule()
	nr.Priority, nr.Table, nr.Invert = r.Priority, r.Table, r.Invert
	nr.Family = unix.AF_INET
	if r.IPv6 {
		nr.Family = unix.AF_INET6
	}
	for _, x := range []struct {
		p   netip.Prefix
		dst **net.IPNet
	}{{r.Src, &nr.Src}, {r.Dst, &nr.Dst}} {
		if x.p.IsValid() {
			*x.dst = &net.IPNet{IP: x.p.Addr().AsSlice(), Mask: net.CIDRMask(x.p.Bits(), x.p.Addr().BitLen())}
		}
	}
	nr.IifName, nr.OifName = r.Iif, r.Oif
	if r.Mark != 0 || r.Mask != 0 {
		nr.Mark = r.Mark
		if r.Mask != 0 {
			m := r.Mask
			nr.Mask = &m
		}
	}
	if r.Action != 0 {
		nr.Type = uint8(r.Action)
		nr.Table = -1
	}
	err := ns.Do(func() error { return ns.nl.RuleAdd(nr) })
	if err != nil {
		return fmt.Errorf("add rule %d: %w", r.Priority, err)
	}
	return nil
}
