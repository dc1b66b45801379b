package kerneldiff

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/sock"
)

// NSSockets are real sockets open in a kernel namespace and the same
// sockets in an engine socket table (same addresses, ports, options and
// cookies), so that lookups, sockmaps and the programs reading them can be
// compared.
type NSSockets struct {
	Table *sock.Table
	// TCP4, TCP6 and Dual listen on 127.0.0.1, [::1] (IPV6_V6ONLY) and
	// the dual-stack wildcard; Client4/Server4 and Client6/Server6 are
	// the two ends of an established connection to TCP4 and TCP6; UDP4
	// and UDP6 are bound to 127.0.0.1 and [::1].
	TCP4, TCP6, Dual, Client4, Server4, Client6, Server6, UDP4, UDP6 *kernel.Socket
	all                                                              []*kernel.Socket
}

// OpenSockets opens the sockets of NSSockets in ns and mirrors them.
func OpenSockets(ns *kernel.NetNS) (*NSSockets, error) {
	s := &NSSockets{Table: &sock.Table{}}
	var err error
	listen := func(network, addr string) *kernel.Socket {
		if err != nil {
			return nil
		}
		var k *kernel.Socket
		k, err = ns.Listen(network, addr)
		if err == nil {
			err = s.add(k)
		}
		return k
	}
	s.TCP4 = listen("tcp4", "127.0.0.1:0")
	s.TCP6 = listen("tcp6", "[::1]:0")
	s.Dual = listen("tcp", ":0")
	s.UDP4 = listen("udp4", "127.0.0.1:0")
	s.UDP6 = listen("udp6", "[::1]:0")
	connect := func(l *kernel.Socket) (c, sv *kernel.Socket) {
		if err != nil {
			return nil, nil
		}
		c, sv, err = ns.Connect(l)
		if err == nil {
			err = errors.Join(s.add(c), s.add(sv))
		}
		return c, sv
	}
	if s.TCP4 != nil {
		s.Table.NetnsCookie = s.TCP4.NetnsCookie
	}
	s.Client4, s.Server4 = connect(s.TCP4)
	s.Client6, s.Server6 = connect(s.TCP6)
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *NSSockets) add(k *kernel.Socket) error {
	s.all = append(s.all, k)
	_, err := s.Table.Add(Mirror(k))
	return err
}

// Mirror is the engine's description of a kernel socket, its TCP state
// from TCP_INFO (which lacks the sequence numbers, srtt_us unrounded, the
// ECN flags and the rate sample). The receive
// queue stays unrecorded: whether the accepting side of a connection over
// lo records queue 0 depends on when the handshake's last ACK lands, so
// the kernel's rx_queue_mapping is not reproducible there.
func Mirror(k *kernel.Socket) sock.Socket {
	m := sock.Socket{Family: k.Family, Protocol: k.Protocol, Local: k.Local, V6Only: k.V6Only, Cookie: k.Cookie, Accepted: k.Accepted}
	// A listener's TCP_INFO leaves most counters out; it is as
	// tcp_init_sock left it, the zero sock.TCPState.
	if t := k.TCP; t != nil && !k.Listening {
		m.TCP = sock.TCPState{SndCwnd: t.SndCwnd, RttMin: t.MinRtt, SndSsthresh: t.SndSsthresh, MssCache: t.SndMss,
			RetransOut: t.Retrans, TotalRetrans: t.TotalRetrans, SegsIn: t.SegsIn, DataSegsIn: t.DataSegsIn,
			SegsOut: t.SegsOut, DataSegsOut: t.DataSegsOut, LostOut: t.Lost, BytesReceived: t.BytesReceived,
			BytesAcked: t.BytesAcked, DsackDups: t.DsackDups, Delivered: t.Delivered, DeliveredCE: t.DeliveredCE,
			IcskRetransmits: uint32(t.Retransmits), PacketsOut: t.Unacked, SackedOut: t.Sacked}
	}
	switch {
	case k.Listening:
		m.State = sock.StateListen
	case k.Remote.IsValid() && k.Remote.Port() != 0:
		m.State, m.Remote = sock.StateEstablished, k.Remote
	default:
		m.State = sock.StateClose
	}
	return m
}

// All lists the sockets in the order they were opened.
func (s *NSSockets) All() []*kernel.Socket { return s.all }

// Close closes the kernel's sockets.
func (s *NSSockets) Close() error {
	var errs []error
	for _, k := range s.all {
		errs = append(errs, k.Close())
	}
	return errors.Join(errs...)
}

// SetSocket puts k under key in the sockmap or sockhash name on both
// sides: its fd for the kernel, its mirror for the engine.
func (s *Side) SetSocket(name string, key []byte, k *kernel.Socket) error {
	m, ok := s.Coll.Maps[name].(*maps.SockMap)
	if !ok {
		return fmt.Errorf("set socket in %s: not a sockmap in the engine: %w", name, syscall.EINVAL)
	}
	if s.Sockets == nil {
		return fmt.Errorf("set socket in %s: the side has no sockets: %w", name, syscall.EINVAL)
	}
	fd := make([]byte, m.Info().ValueSize)
	fd[0], fd[1], fd[2], fd[3] = byte(k.FD), byte(k.FD>>8), byte(k.FD>>16), byte(k.FD>>24)
	if err := s.Kern.SetMap(name, key, fd); err != nil {
		return err
	}
	sk := s.Sockets.Table.Get(k.Cookie)
	if sk == nil {
		return fmt.Errorf("set socket in %s: cookie %d not mirrored: %w", name, k.Cookie, syscall.ENOENT)
	}
	return m.SetSocket(key, sk, 0)
}

// Loopback4 and Loopback6 are the addresses the sockets are bound to.
var (
	Loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	Loopback6 = netip.IPv6Loopback()
)
