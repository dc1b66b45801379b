package sock

import (
	"encoding/binary"
	"net/netip"
)

// Sizes of struct bpf_sock_tuple's two forms.
const (
	TupleSize4 = 12 // ipv4: saddr, daddr, sport, dport
	TupleSize6 = 36 // ipv6
)

// CurrentNetns is BPF_F_CURRENT_NETNS: the netns_id argument that names
// the namespace of the packet's device.
const CurrentNetns = 0xffffffff

// Lookup is the socket lookup of bpf_sk_lookup_tcp, bpf_sk_lookup_udp and
// bpf_skc_lookup_tcp (__bpf_skc_lookup) for a packet on device dif: tuple
// is the program's struct bpf_sock_tuple, whose source is the remote end
// and destination the local one. It returns nil, as the kernel does, for
// a tuple of another size, non-zero flags, a netns_id other than a
// negative one (the current namespace: the model has no other namespace
// with an id) and when no socket matches. An established TCP socket
// matching the 4-tuple wins over listeners; among listeners and among UDP
// sockets the kernel's score decides, an exact local address before the
// wildcard. Sockets bound to a device match only packets on that device;
// unbound ones match packets outside an L3 master device (sdif 0, which is
// all the engine models).
func (t *Table) Lookup(proto uint8, tuple []byte, netnsID, flags uint64, dif uint32) *Socket {
	if t == nil {
		return nil
	}
	var q query
	switch len(tuple) {
	case TupleSize4:
		q.v4 = true
		q.src = netip.AddrFrom4([4]byte(tuple[0:4]))
		q.dst = netip.AddrFrom4([4]byte(tuple[4:8]))
		q.sport = binary.BigEndian.Uint16(tuple[8:])
		q.dport = binary.BigEndian.Uint16(tuple[10:])
	case TupleSize6:
		q.src = netip.AddrFrom16([16]byte(tuple[0:16]))
		q.dst = netip.AddrFrom16([16]byte(tuple[16:32]))
		q.sport = binary.BigEndian.Uint16(tuple[32:])
		q.dport = binary.BigEndian.Uint16(tuple[34:])
	default:
		return nil
	}
	// A netns_id that is not negative as an s32 names another namespace
	// by its id, and the model has none with an id.
	if flags != 0 || int32(netnsID) >= 0 {
		return nil
	}
	q.dif = dif
	socks := t.onPort(q.dport)
	if proto == ProtoTCP {
		for _, s := range socks {
			if s.Protocol == ProtoTCP && s.State == StateEstablished && q.established(s) {
				return s
			}
		}
		if s := q.best(socks, true, q.listenScore); s != nil {
			return s
		}
		return q.best(socks, false, q.listenScore)
	}
	if proto != ProtoUDP {
		return nil
	}
	if s := q.best(socks, true, q.udpScore); s != nil {
		return s
	}
	return q.best(socks, false, q.udpScore)
}

// query is one lookup: the packet's source (the socket's remote end) and
// destination (its local end).
type query struct {
	v4           bool
	src, dst     netip.Addr
	sport, dport uint16
	dif          uint32
}

// devOK is inet_sk_bound_dev_eq with sdif 0.
func (q *query) devOK(s *Socket) bool { return s.BoundIfindex == 0 || s.BoundIfindex == q.dif }

// established is the ehash match: the full 4-tuple and the device.
func (q *query) established(s *Socket) bool {
	if !q.devOK(s) || s.Local.Port() != q.dport || s.Remote.Port() != q.sport {
		return false
	}
	if q.v4 {
		l, r := s.Local.Addr(), s.Remote.Addr()
		if s.Family == AFInet6 && !(l.Is4In6() && r.Is4In6()) {
			return false
		}
		return l.Unmap() == q.dst && r.Unmap() == q.src
	}
	return s.Family == AFInet6 && s.Local.Addr() == q.dst && s.Remote.Addr() == q.src
}

// best returns the socket with the highest score in the pass that asks
// for the exact destination address (exact) or for the wildcard; the
// first added wins a tie.
func (q *query) best(socks []*Socket, exact bool, score func(*Socket, bool) int) *Socket {
	var win *Socket
	hi := -1
	for _, s := range socks {
		if sc := score(s, exact); sc > hi {
			win, hi = s, sc
		}
	}
	return win
}

// localMatches says whether s's bound address is the one a pass looks
// for: the destination itself or the wildcard.
func (q *query) localMatches(s *Socket, exact bool) bool {
	if q.v4 {
		want := [4]byte{}
		if exact {
			want = q.dst.As4()
		}
		return s.rcv4() == want
	}
	want := [16]byte{}
	if exact {
		want = q.dst.As16()
	}
	return s.v6(s.Local.Addr()) == want
}

// familyOK: an IPv4 lookup sees AF_INET sockets and AF_INET6 ones without
// IPV6_V6ONLY; an IPv6 lookup sees AF_INET6 sockets.
func (q *query) familyOK(s *Socket) bool {
	if q.v4 {
		return s.Family == AFInet || !s.V6Only
	}
	return s.Family == AFInet6
}

// listenScore is compute_score of inet_hashtables.c and inet6_hashtables.c
// (less the incoming-CPU bonus): -1 for no match.
func (q *query) listenScore(s *Socket, exact bool) int {
	if s.Protocol != ProtoTCP || s.State != StateListen || s.Local.Port() != q.dport ||
		!q.familyOK(s) || !q.localMatches(s, exact) || !q.devOK(s) {
		return -1
	}
	sc := 1
	if s.BoundIfindex != 0 {
		sc = 2
	}
	if q.v4 && s.Family == AFInet {
		sc++
	}
	return sc
}

// udpScore is compute_score of udp.c and udp6.c (less the incoming-CPU
// bonus): -1 for no match.
func (q *query) udpScore(s *Socket, exact bool) int {
	if s.Protocol != ProtoUDP || s.Local.Port() != q.dport || !q.familyOK(s) || !q.localMatches(s, exact) || !q.devOK(s) {
		return -1
	}
	if q.v4 {
		sc := 1
		if s.Family == AFInet {
			sc = 2
		}
		if d := s.dst4(); d != [4]byte{} {
			if d != q.src.As4() {
				return -1
			}
			sc += 4
		}
		if p := s.Remote.Port(); p != 0 {
			if p != q.sport {
				return -1
			}
			sc += 4
		}
		if s.BoundIfindex != 0 {
			sc += 4
		}
		return sc
	}
	sc := 0
	if p := s.Remote.Port(); p != 0 {
		if p != q.sport {
			return -1
		}
		sc++
	}
	if d := s.v6(s.Remote.Addr()); d != [16]byte{} {
		if d != q.src.As16() {
			return -1
		}
		sc++
	}
	if s.BoundIfindex != 0 {
		sc++
	}
	return sc
}
