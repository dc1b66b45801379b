package sock

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
)

// Address families, protocols and socket types as the kernel numbers them.
const (
	AFInet  = 2  // AF_INET
	AFInet6 = 10 // AF_INET6

	ProtoTCP = 6  // IPPROTO_TCP
	ProtoUDP = 17 // IPPROTO_UDP

	typeStream = 1 // SOCK_STREAM
	typeDgram  = 2 // SOCK_DGRAM
)

// States a socket may be in (the kernel's TCP_* states, which UDP sockets
// use too: TCP_ESTABLISHED once connected, TCP_CLOSE before).
const (
	StateEstablished = 1  // TCP_ESTABLISHED
	StateClose       = 7  // TCP_CLOSE: an unconnected UDP socket
	StateListen      = 10 // TCP_LISTEN
)

// ImageSize is sizeof(struct bpf_sock).
const ImageSize = 80

// Offsets of the struct bpf_sock fields (include/uapi/linux/bpf.h).
const (
	OffBoundDevIf     = 0
	OffFamily         = 4
	OffType           = 8
	OffProtocol       = 12
	OffMark           = 16
	OffPriority       = 20
	OffSrcIP4         = 24
	OffSrcIP6         = 28
	OffSrcPort        = 44 // host byte order
	OffDstPort        = 48 // network byte order, 2 bytes, then 2 of padding
	OffDstIP4         = 52
	OffDstIP6         = 56
	OffState          = 72
	OffRxQueueMapping = 76
)

// loopback4IPv6 is LOOPBACK4_IPV6 (127.0.0.6): the IPv4 address the kernel
// gives an IPv6 socket bound or connected to an address with no IPv4 form,
// which is what its src_ip4/dst_ip4 read and what IPv4 lookups compare.
var loopback4IPv6 = [4]byte{127, 0, 0, 6}

// Socket is one socket of the namespace. Fill in the exported fields and
// Add it to a Table; the Table's copy is immutable.
type Socket struct {
	// Family is AFInet or AFInet6; an AFInet6 socket may hold IPv4-mapped
	// addresses.
	Family uint16
	// Protocol is ProtoTCP or ProtoUDP.
	Protocol uint8
	// State is StateListen or StateEstablished for TCP, StateClose
	// (unconnected) or StateEstablished (connected) for UDP.
	State uint8
	// Local is the bound address and port; an unspecified address is the
	// wildcard. Remote is the peer of a connected socket (zero otherwise).
	Local, Remote netip.AddrPort
	// BoundIfindex is SO_BINDTODEVICE (0: any device).
	BoundIfindex uint32
	// V6Only is IPV6_V6ONLY: an AFInet6 socket without it also answers
	// IPv4 lookups (a dual-stack wildcard listener, a v4-mapped address).
	V6Only bool
	// Accepted says a listener accepted the connection (the passive
	// end): over IPv6 its inet_daddr, dst_ip4, is LOOPBACK4_IPV6
	// (tcp_v6_syn_recv_sock), where the connecting end's stays 0.
	Accepted bool
	// Mark and Priority are SO_MARK and SO_PRIORITY.
	Mark, Priority uint32
	// RxQueue is the receive queue the socket's packets last came in on
	// (sk_rx_queue_mapping), if RxQueueRecorded; a socket that has
	// received nothing through a device that records queues reads -1.
	RxQueue         uint16
	RxQueueRecorded bool
	// Cookie is the socket's cookie (SO_COOKIE, bpf_get_socket_cookie,
	// what a sockmap reports); 0 lets Add pick one.
	Cookie uint64

	// TCP is what bpf_tcp_sock shows of a TCP socket.
	TCP TCPState

	img    [ImageSize]byte
	tcpImg [TCPImageSize]byte
	closed *atomic.Bool // set by Table.Remove
}

// Closed reports whether the socket was removed from its table: maps that
// hold it read it as absent, as the kernel unlinks a closing socket.
func (s *Socket) Closed() bool { return s.closed != nil && s.closed.Load() }

// Image is the struct bpf_sock a program reads through a pointer to s.
// The engine maps it read-only; it must not be changed.
func (s *Socket) Image() []byte { return s.img[:] }

// Hashed reports whether the socket is in the kernel's lookup tables
// (sk_hashed): a TCP socket that listens or is established, a UDP socket
// with a local port.
func (s *Socket) Hashed() bool {
	if s.Protocol == ProtoTCP {
		return s.State == StateListen || s.State == StateEstablished
	}
	return s.Local.Port() != 0
}

func (s *Socket) String() string {
	proto := "tcp"
	if s.Protocol == ProtoUDP {
		proto = "udp"
	}
	if s.Remote.IsValid() {
		return fmt.Sprintf("%s %s->%s cookie %d", proto, s.Local, s.Remote, s.Cookie)
	}
	return fmt.Sprintf("%s %s cookie %d", proto, s.Local, s.Cookie)
}

// rcv4 and dst4 are inet_rcv_saddr and inet_daddr: the IPv4 view of the
// local and remote addresses.
func (s *Socket) rcv4() [4]byte { return v4View(s.Family, s.Local.Addr()) }
func (s *Socket) dst4() [4]byte {
	if a := s.Remote.Addr(); a.IsValid() && !a.Is4() && !a.Is4In6() && !s.Accepted {
		return [4]byte{} // tcp_v6_connect and UDP connect leave inet_daddr alone
	}
	return v4View(s.Family, s.Remote.Addr())
}

func v4View(family uint16, a netip.Addr) [4]byte {
	switch {
	case !a.IsValid() || a.IsUnspecified():
		return [4]byte{}
	case a.Is4():
		return a.As4()
	case a.Is4In6():
		return a.Unmap().As4()
	case family == AFInet6:
		return loopback4IPv6
	}
	return [4]byte{}
}

// v6 is sk_v6_rcv_saddr or sk_v6_daddr for the address a: the address
// of an AFInet6 socket; for an AFInet one zero, but for an established
// TCP socket the v4-mapped form (tcp_v4_connect and the accepting side
// set both views, sk_rcv_saddr_set and sk_daddr_set, where bind and UDP
// connect set only the IPv4 one).
func (s *Socket) v6(a netip.Addr) [16]byte {
	if !a.IsValid() || s.Family != AFInet6 && (s.Protocol != ProtoTCP || s.State != StateEstablished) {
		return [16]byte{}
	}
	return a.As16()
}

func (s *Socket) layout() {
	b := s.img[:]
	le := binary.LittleEndian
	le.PutUint32(b[OffBoundDevIf:], s.BoundIfindex)
	le.PutUint32(b[OffFamily:], uint32(s.Family))
	typ := uint32(typeStream)
	if s.Protocol == ProtoUDP {
		typ = typeDgram
	}
	le.PutUint32(b[OffType:], typ)
	le.PutUint32(b[OffProtocol:], uint32(s.Protocol))
	le.PutUint32(b[OffMark:], s.Mark)
	le.PutUint32(b[OffPriority:], s.Priority)
	src4, dst4 := s.rcv4(), s.dst4()
	copy(b[OffSrcIP4:], src4[:])
	src6, dst6 := s.v6(s.Local.Addr()), s.v6(s.Remote.Addr())
	copy(b[OffSrcIP6:], src6[:])
	le.PutUint32(b[OffSrcPort:], uint32(s.Local.Port()))
	binary.BigEndian.PutUint16(b[OffDstPort:], s.Remote.Port())
	copy(b[OffDstIP4:], dst4[:])
	copy(b[OffDstIP6:], dst6[:])
	le.PutUint32(b[OffState:], uint32(s.State))
	// NO_QUEUE_MAPPING reads as -1 (as a 64-bit -1 in the kernel, whose
	// load the verifier rewrites; the image holds 32 bits).
	rxq := uint32(0xffffffff)
	if s.RxQueueRecorded {
		rxq = uint32(s.RxQueue)
	}
	le.PutUint32(b[OffRxQueueMapping:], rxq)
}

// check validates a socket before it joins a table.
func (s *Socket) check() error {
	bad := func(why string) error { return fmt.Errorf("socket %s: %s: %w", s, why, syscall.EINVAL) }
	switch s.Family {
	case AFInet, AFInet6:
	default:
		return fmt.Errorf("socket %s: family %d: %w", s, s.Family, syscall.EAFNOSUPPORT)
	}
	for _, a := range []netip.AddrPort{s.Local, s.Remote} {
		if !a.IsValid() {
			continue
		}
		if a.Addr().Zone() != "" {
			return bad("addresses with a zone are not modelled")
		}
		if s.Family == AFInet && !a.Addr().Is4() {
			return bad("an AF_INET socket with an IPv6 address")
		}
		if s.Family == AFInet6 && a.Addr().Is4() {
			return bad("an AF_INET6 socket with an IPv4 address (use its v4-mapped form)")
		}
	}
	if !s.Local.IsValid() {
		return bad("no local address (use the unspecified address for the wildcard)")
	}
	connected := s.Remote.IsValid() && s.Remote.Port() != 0
	switch s.Protocol {
	case ProtoTCP:
		switch s.State {
		case StateListen:
			if connected || s.Local.Port() == 0 {
				return bad("a listener has a local port and no peer")
			}
		case StateEstablished:
			if !connected || s.Local.Port() == 0 || s.Local.Addr().IsUnspecified() {
				return bad("an established socket has both ends")
			}
		default:
			return bad(fmt.Sprintf("TCP state %d is not modelled (listen or established)", s.State))
		}
	case ProtoUDP:
		switch {
		case s.State == StateClose && !s.Remote.IsValid():
		case s.State == StateEstablished && connected:
		default:
			return bad("a UDP socket is unconnected (StateClose, no peer) or connected (StateEstablished, a peer)")
		}
	default:
		return fmt.Errorf("socket %s: protocol %d: %w", s, s.Protocol, syscall.EPROTONOSUPPORT)
	}
	return nil
}

// Table is the sockets of one network namespace. Lookups read an
// immutable snapshot without locking or allocating; Add and Remove
// replace it. The zero value (and a nil *Table) is empty.
type Table struct {
	// NetnsCookie is the namespace's cookie (SO_NETNS_COOKIE), what
	// bpf_get_netns_cookie answers for a packet in it; InitNetnsCookie is
	// the initial namespace's, its answer for a NULL context. Set them
	// before programs run.
	NetnsCookie, InitNetnsCookie uint64

	mu     sync.Mutex
	snap   atomic.Pointer[snapshot]
	cookie uint64 // the last cookie Add picked
}

// Add puts a copy of s into the table and returns it: EINVAL (or
// EAFNOSUPPORT, EPROTONOSUPPORT) for a socket the model cannot hold,
// EADDRINUSE for a second listener on the same address, port and device
// or a second socket with the same TCP 4-tuple, EEXIST for a cookie
// already taken.
func (t *Table) Add(s Socket) (*Socket, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("add %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.sockets()
	for _, o := range old {
		if s.Cookie != 0 && o.Cookie == s.Cookie {
			return nil, fmt.Errorf("add socket %s: cookie taken by %s: %w", &s, o, syscall.EEXIST)
		}
		if s.Protocol == ProtoTCP && o.Protocol == ProtoTCP && o.State == s.State && o.Local == s.Local &&
			o.Remote == s.Remote && o.BoundIfindex == s.BoundIfindex {
			return nil, fmt.Errorf("add socket %s: %s holds it: %w", &s, o, syscall.EADDRINUSE)
		}
	}
	if s.Cookie == 0 {
		for taken := true; taken; {
			t.cookie++
			taken = slices.ContainsFunc(old, func(o *Socket) bool { return o.Cookie == t.cookie })
		}
		s.Cookie = t.cookie
	}
	s.layout()
	s.layoutTCP()
	s.closed = new(atomic.Bool)
	n := &s
	t.publish(append(slices.Clip(slices.Clone(old)), n))
	return n, nil
}

// Remove takes the socket with cookie out of the table (it closes): ENOENT
// if there is none.
func (t *Table) Remove(cookie uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.sockets()
	i := slices.IndexFunc(old, func(o *Socket) bool { return o.Cookie == cookie })
	if i < 0 {
		return fmt.Errorf("remove socket cookie %d: %w", cookie, syscall.ENOENT)
	}
	old[i].closed.Store(true)
	t.publish(slices.Delete(slices.Clone(old), i, i+1))
	return nil
}

// Sockets returns the table's sockets in the order they were added.
func (t *Table) Sockets() []*Socket {
	if t == nil {
		return nil
	}
	return slices.Clone(t.sockets())
}

// Get returns the socket with cookie, or nil.
func (t *Table) Get(cookie uint64) *Socket {
	if t == nil {
		return nil
	}
	for _, s := range t.sockets() {
		if s.Cookie == cookie {
			return s
		}
	}
	return nil
}

func (t *Table) sockets() []*Socket {
	if p := t.snap.Load(); p != nil {
		return p.all
	}
	return nil
}

// snapshot is the table between two changes: its sockets in the order
// they were added, and by local port, which every lookup names.
type snapshot struct {
	all    []*Socket
	byPort map[uint16][]*Socket
}

func (t *Table) publish(all []*Socket) {
	sn := &snapshot{all: all, byPort: make(map[uint16][]*Socket)}
	for _, s := range all {
		p := s.Local.Port()
		sn.byPort[p] = append(sn.byPort[p], s)
	}
	t.snap.Store(sn)
}

// onPort returns the sockets bound to local port p, in the order they
// were added.
func (t *Table) onPort(p uint16) []*Socket {
	if sn := t.snap.Load(); sn != nil {
		return sn.byPort[p]
	}
	return nil
}
