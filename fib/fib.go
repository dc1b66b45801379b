package fib

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// Results of bpf_fib_lookup (BPF_FIB_LKUP_RET_*, include/uapi/linux/bpf.h).
const (
	RetSuccess     = 0
	RetBlackhole   = 1
	RetUnreachable = 2
	RetProhibit    = 3
	RetNotFwded    = 4
	RetFwdDisabled = 5
	RetUnsuppLWT   = 6
	RetNoNeigh     = 7
	RetFragNeeded  = 8
	RetNoSrcAddr   = 9
)

// Flags of bpf_fib_lookup (BPF_FIB_LOOKUP_*).
const (
	FlagDirect    = 1 << 0
	FlagOutput    = 1 << 1
	FlagSkipNeigh = 1 << 2
	FlagTBID      = 1 << 3
	FlagSrc       = 1 << 4
	FlagMark      = 1 << 5
	flagMask      = FlagDirect | FlagOutput | FlagSkipNeigh | FlagTBID | FlagSrc | FlagMark
)

// ParamsSize is sizeof(struct bpf_fib_lookup).
const ParamsSize = 64

// Routing tables the default rules consult: RT_TABLE_LOCAL (addresses of
// the namespace itself, broadcast), RT_TABLE_MAIN (where routes go unless
// they name a table), RT_TABLE_DEFAULT.
const (
	TableLocal   = 255
	TableMain    = 254
	TableDefault = 253
)

const (
	afInet  = 2  // AF_INET
	afInet6 = 10 // AF_INET6
)

// RouteType is a route's rtm_type, as far as lookups tell them apart.
type RouteType uint8

const (
	Unicast     RouteType = iota // RTN_UNICAST: forwarded
	Blackhole                    // RTN_BLACKHOLE
	Unreachable                  // RTN_UNREACHABLE
	Prohibit                     // RTN_PROHIBIT
	Local                        // RTN_LOCAL: delivered here, not forwarded
	Broadcast                    // RTN_BROADCAST: not forwarded
	Anycast                      // RTN_ANYCAST (IPv6 subnet-router anycast): not forwarded
	Throw                        // RTN_THROW: the lookup goes on in the next table
)

var routeTypeNames = [...]string{"unicast", "blackhole", "unreachable", "prohibit", "local", "broadcast", "anycast", "throw"}

func (t RouteType) String() string {
	if int(t) < len(routeTypeNames) {
		return routeTypeNames[t]
	}
	return "RouteType(" + strconv.Itoa(int(t)) + ")"
}

// ParseRouteType is the inverse of RouteType.String ("" is Unicast).
func ParseRouteType(s string) (RouteType, bool) {
	if s == "" {
		return Unicast, true
	}
	for i, n := range routeTypeNames {
		if n == s {
			return RouteType(i), true
		}
	}
	return 0, false
}

// hasNexthop reports the types whose route leaves through a device: the
// others (blackhole, ...) answer without one.
func (t RouteType) hasNexthop() bool {
	return t == Unicast || t == Local || t == Broadcast || t == Anycast
}

// Device is a network device as route lookups see it.
type Device struct {
	Ifindex uint32
	MAC     [6]byte
	MTU     uint32 // 0 means 1500
	// Forwarding is net.ipv4.conf.<dev>.forwarding and
	// net.ipv6.conf.<dev>.forwarding: a lookup for a packet arriving on a
	// device without it answers RetFwdDisabled (a new namespace starts
	// with forwarding off everywhere).
	Forwarding4, Forwarding6 bool
}

func (d *Device) mtu() uint32 {
	if d.MTU == 0 {
		return 1500
	}
	return d.MTU
}

// Route is one entry of a routing table.
type Route struct {
	Dst     netip.Prefix
	Type    RouteType
	Table   uint32     // 0 means TableMain
	Ifindex uint32     // the output device
	Gateway netip.Addr // the next hop, if not on link; may be IPv6 for an IPv4 route
	Metric  uint32     // fib_priority / fib6_metric
	PrefSrc netip.Addr // the preferred source address (BPF_FIB_LOOKUP_SRC)
	// MTU is the route's locked MTU (ip route ... mtu lock N): the
	// forwarding lookup's MTU check uses a route MTU only when it is
	// locked (ip_mtu_from_fib_result, ip6_mtu_from_fib6), so an unlocked
	// one has no place here. 0: the device's.
	MTU uint32
}

func (r *Route) table() uint32 {
	if r.Table == 0 {
		return TableMain
	}
	return r.Table
}

// Neighbour is a valid (NUD_VALID) entry of a device's neighbour cache.
type Neighbour struct {
	Ifindex uint32
	Addr    netip.Addr
	MAC     [6]byte
}

// Addr is an address assigned to a device (ip addr add), which source
// address selection picks from.
type Addr struct {
	Ifindex uint32
	Prefix  netip.Prefix
}

// Table is a network namespace's routing tables, devices, addresses and
// neighbours. The zero value (or nil) is a new namespace: no routes, and
// a loopback device (ifindex 1, MTU 65536) without forwarding or
// addresses (NewNamespace gives one whose lo is up, as a kernel
// namespace's after ip link set lo up). It is not safe for concurrent
// change; build it, then look up.
type Table struct {
	Devices    []Device
	Routes     []Route
	Neighbours []Neighbour
	Addrs      []Addr
	// Rules are fib rules (ip rule) besides the default ones; a family
	// with rules of its own looks up through them, and IPv4 then keeps
	// its local table apart from main, as the kernel does from the first
	// rule on.
	Rules []Rule
}

func (t *Table) device(ifindex uint32) (*Device, bool) {
	if t != nil {
		for i := range t.Devices {
			if t.Devices[i].Ifindex == ifindex {
				return &t.Devices[i], true
			}
		}
	}
	if ifindex == 1 {
		return &Device{Ifindex: 1, MTU: 65536}, true
	}
	return nil, false
}

func (t *Table) neighbour(ifindex uint32, a netip.Addr) (*Neighbour, bool) {
	if t != nil {
		for i := range t.Neighbours {
			if n := &t.Neighbours[i]; n.Ifindex == ifindex && n.Addr == a {
				return n, true
			}
		}
	}
	return nil, false
}

// Lookup mirrors bpf_fib_lookup for a tc program (bpf_skb_fib_lookup): p
// is the program's struct bpf_fib_lookup, read and written in place (its
// first ParamsSize bytes). skbLen and gso describe the packet, for the MTU
// check the kernel makes when p's tot_len is 0. The result is a
// BPF_FIB_LKUP_RET_* code or a negative Linux errno: -EINVAL for a short
// p or unknown flags, -EAFNOSUPPORT for a family other than AF_INET and
// AF_INET6, -ENODEV for an unknown ifindex.
func (t *Table) Lookup(p []byte, flags uint32, skbLen int, gso bool) int64 {
	if len(p) < ParamsSize {
		return -linuxerr.EINVAL
	}
	if flags&^flagMask != 0 {
		return -linuxerr.EINVAL
	}
	checkMTU := binary.LittleEndian.Uint16(p[6:]) != 0
	rc := int64(-linuxerr.EAFNOSUPPORT)
	switch p[0] {
	case afInet:
		rc = t.lookup(p, flags, checkMTU, false)
	case afInet6:
		rc = t.lookup(p, flags, checkMTU, true)
	}
	if rc == RetSuccess && !checkMTU {
		dev, _ := t.device(binary.LittleEndian.Uint32(p[8:]))
		// is_skb_forwardable: the frame, less its Ethernet header (and a
		// VLAN tag's room), must fit the MTU unless GSO splits it.
		if !gso && uint32(skbLen) > dev.mtu()+14+4 {
			rc = RetFragNeeded
		}
		binary.LittleEndian.PutUint16(p[6:], uint16(dev.mtu()))
	}
	return rc
}

func addrAt(p []byte, off int, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte(p[off : off+16]))
	}
	return netip.AddrFrom4([4]byte(p[off : off+4]))
}

// lookup is bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup.
func (t *Table) lookup(p []byte, flags uint32, checkMTU, v6 bool) int64 {
	le := binary.LittleEndian
	src, dst := addrAt(p, 16, v6), addrAt(p, 32, v6)
	if v6 && (needStrict(dst) || needStrict(src)) {
		return RetNotFwded // link-local addresses are never forwarded
	}
	dev, ok := t.device(le.Uint32(p[8:]))
	if !ok {
		return -linuxerr.ENODEV
	}
	if (!v6 && !dev.Forwarding4) || (v6 && !dev.Forwarding6) {
		return RetFwdDisabled
	}
	var r *Route
	if flags&FlagDirect != 0 {
		tbid := uint32(TableMain)
		if flags&FlagTBID != 0 {
			tbid = le.Uint32(p[48:])
			le.PutUint32(p[48:], 0)
		}
		if tbid == 0 {
			tbid = TableMain // fib_get_table and fib6_get_table read 0 as main
		}
		if !t.hasTable(tbid, v6) {
			return RetNotFwded
		}
		if v6 {
			var any bool
			if r, any = t.lookup6(dst, dev.Ifindex, tbid); any {
				return RetNotFwded
			}
		} else {
			r = t.lookup4(dst, flags, dev.Ifindex, tbid)
		}
	} else if t.customRules(v6) {
		var rc int64
		if r, rc = t.ruleLookup(p, flags, dev.Ifindex, v6); rc != 0 {
			return rc
		}
	} else if v6 {
		// fib6_lookup without custom rules: the local table, then main.
		var any bool
		if r, any = t.lookup6(dst, dev.Ifindex, TableLocal); any {
			return RetNotFwded
		}
		if r == nil {
			r, _ = t.lookup6(dst, dev.Ifindex, TableMain)
		}
	} else {
		// fib_lookup without custom rules: main (with local merged in),
		// then, when main has no route or a throw route, default if it
		// exists.
		r = t.lookup4(dst, flags, dev.Ifindex, TableMain)
		if (r == nil || r.Type == Throw) && t.hasTable(TableDefault, false) {
			r = t.lookup4(dst, flags, dev.Ifindex, TableDefault)
		}
	}
	if r == nil {
		return RetNotFwded
	}
	switch r.Type {
	case Unicast:
	case Blackhole:
		return RetBlackhole
	case Unreachable:
		return RetUnreachable
	case Prohibit:
		return RetProhibit
	default:
		return RetNotFwded
	}
	out, ok := t.device(r.Ifindex)
	if !ok {
		return RetNotFwded
	}
	var mtu uint32
	if checkMTU {
		mtu = out.mtu()
		if v6 {
			mtu = max(mtu, 1280) // IPV6_MIN_MTU
		}
		if r.MTU != 0 {
			mtu = r.MTU
		}
		if uint32(le.Uint16(p[6:])) > mtu {
			le.PutUint16(p[6:], uint16(mtu))
			return RetFragNeeded
		}
	}
	next := dst
	if v6 && r.Gateway.IsValid() {
		next = r.Gateway
		putAddr(p, 32, r.Gateway)
	}
	le.PutUint32(p[12:], r.Metric)
	le.PutUint32(p[8:], out.Ifindex)
	if flags&FlagSrc != 0 {
		s, ok := t.prefSrc(r, out.Ifindex, dst, v6)
		if !ok {
			return RetNoSrcAddr
		}
		putAddr(p, 16, s)
	}
	if !v6 && r.Gateway.IsValid() {
		next = r.Gateway
		if r.Gateway.Is6() && !r.Gateway.Is4In6() {
			p[0] = afInet6
		}
		putAddr(p, 32, r.Gateway)
	}
	if flags&FlagSkipNeigh == 0 {
		n, ok := t.neighbour(out.Ifindex, next)
		if !ok {
			return RetNoNeigh
		}
		copy(p[58:64], n.MAC[:])
		copy(p[52:58], out.MAC[:])
	}
	// bpf_fib_set_fwd_params
	le.PutUint32(p[48:], 0)
	if mtu != 0 {
		le.PutUint16(p[6:], uint16(mtu))
	}
	return RetSuccess
}

func putAddr(p []byte, off int, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		copy(p[off:], b[:])
		return
	}
	b := a.As16()
	copy(p[off:], b[:])
}

// needStrict is rt6_need_strict: multicast, link-local and loopback
// destinations are bound to their device.
func needStrict(a netip.Addr) bool {
	if a.Is4In6() {
		return false // IPV6_ADDR_MAPPED
	}
	return a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLoopback()
}
