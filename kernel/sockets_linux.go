package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket is a socket a test opened in a namespace (NetNS.Listen,
// NetNS.Connect): what the BPF socket helpers see of it, and its fd for a
// sockmap update.
type Socket struct {
	Family        uint16 // AF_INET or AF_INET6
	Protocol      uint8  // IPPROTO_TCP or IPPROTO_UDP
	Listening     bool   // a TCP listener
	Accepted      bool   // the listener's end of a connection (Connect's server)
	V6Only        bool   // IPV6_V6ONLY
	Local, Remote netip.AddrPort
	Cookie        uint64 // SO_COOKIE
	NetnsCookie   uint64 // SO_NETNS_COOKIE: its namespace's cookie
	FD            int    // valid until Close
	// TCP is what TCP_INFO said of a TCP socket when it was opened.
	TCP *TCPInfo

	c interface{ Close() error }
}

// TCPInfo is the part of a TCP socket's struct tcp_info (TCP_INFO) that
// struct bpf_tcp_sock also shows.
type TCPInfo struct {
	State, Retransmits                               uint8
	SndMss, Unacked, Sacked, Lost, Retrans           uint32
	SndSsthresh, SndCwnd, TotalRetrans               uint32
	BytesAcked, BytesReceived                        uint64
	SegsOut, SegsIn, MinRtt, DataSegsIn, DataSegsOut uint32
	Delivered, DeliveredCE, DsackDups                uint32
}

// Close closes the socket.
func (s *Socket) Close() error { return s.c.Close() }

// Listen opens a socket in the namespace: network "tcp4", "tcp6" or "tcp"
// (a dual-stack AF_INET6 socket for a wildcard address) makes a TCP
// listener, "udp4", "udp6" or "udp" a bound UDP socket; address is
// host:port (port 0 picks one).
func (ns *NetNS) Listen(network, address string) (*Socket, error) {
	var s *Socket
	err := ns.Do(func() error {
		var (
			c   syscall.Conn
			cl  interface{ Close() error }
			err error
		)
		switch network {
		case "tcp", "tcp4", "tcp6":
			var l net.Listener
			l, err = net.Listen(network, address)
			if err == nil {
				c, cl = l.(*net.TCPListener), l
			}
		case "udp", "udp4", "udp6":
			var pc net.PacketConn
			pc, err = net.ListenPacket(network, address)
			if err == nil {
				c, cl = pc.(*net.UDPConn), pc
			}
		default:
			return fmt.Errorf("network %q: %w", network, unix.EINVAL)
		}
		if err != nil {
			return err
		}
		s, err = describe(c, cl)
		if err != nil {
			cl.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns listen %s %s: %w", network, address, err)
	}
	return s, nil
}

// Connect opens a TCP connection to the listener l in the namespace and
// returns both established ends: the client's and the one the listener
// accepted.
func (ns *NetNS) Connect(l *Socket) (client, server *Socket, err error) {
	err = ns.Do(func() error {
		tl, ok := l.c.(*net.TCPListener)
		if !ok {
			return fmt.Errorf("not a TCP listener: %w", unix.EINVAL)
		}
		network := "tcp4"
		if l.Family == unix.AF_INET6 {
			network = "tcp6"
		}
		dst := l.Local
		if dst.Addr().IsUnspecified() {
			dst = netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port())
			if network == "tcp4" {
				dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port())
			}
		}
		cc, err := net.Dial(network, dst.String())
		if err != nil {
			return err
		}
		sc, err := tl.Accept()
		if err != nil {
			cc.Close()
			return err
		}
		if client, err = describe(cc.(*net.TCPConn), cc); err == nil {
			server, err = describe(sc.(*net.TCPConn), sc)
		}
		if server != nil {
			server.Accepted = true
		}
		if err != nil {
			cc.Close()
			sc.Close()
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("netns connect to %s: %w", l.Local, err)
	}
	return client, server, nil
}

// describe reads a socket's family, addresses, cookie and options.
func describe(c syscall.Conn, cl interface{ Close() error }) (*Socket, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &Socket{c: cl}
	var serr error
	err = rc.Control(func(fd uintptr) {
		s.FD = int(fd)
		get := func(level, opt int) int {
			v, err := unix.GetsockoptInt(int(fd), level, opt)
			serr = errors.Join(serr, err)
			return v
		}
		s.Family = uint16(get(unix.SOL_SOCKET, unix.SO_DOMAIN))
		s.Protocol = uint8(get(unix.SOL_SOCKET, unix.SO_PROTOCOL))
		s.Listening = get(unix.SOL_SOCKET, unix.SO_ACCEPTCONN) != 0
		if s.Family == unix.AF_INET6 {
			s.V6Only = get(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) != 0
		}
		cookie, err := unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
		serr = errors.Join(serr, err)
		s.Cookie = cookie
		nc, err := unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		serr = errors.Join(serr, err)
		s.NetnsCookie = nc
		local, err := unix.Getsockname(int(fd))
		serr = errors.Join(serr, err)
		s.Local = sockaddr(local)
		if remote, err := unix.Getpeername(int(fd)); err == nil {
			s.Remote = sockaddr(remote)
		}
		if s.Protocol == unix.IPPROTO_TCP {
			ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			serr = errors.Join(serr, err)
			if ti != nil {
				s.TCP = &TCPInfo{State: ti.State, Retransmits: ti.Retransmits, SndMss: ti.Snd_mss, Unacked: ti.Unacked,
					Sacked: ti.Sacked, Lost: ti.Lost, Retrans: ti.Retrans, SndSsthresh: ti.Snd_ssthresh, SndCwnd: ti.Snd_cwnd,
					TotalRetrans: ti.Total_retrans, BytesAcked: ti.Bytes_acked, BytesReceived: ti.Bytes_received,
					SegsOut: ti.Segs_out, SegsIn: ti.Segs_in, MinRtt: ti.Min_rtt, DataSegsIn: ti.Data_segs_in,
					DataSegsOut: ti.Data_segs_out, Delivered: ti.Delivered, DeliveredCE: ti.Delivered_ce, DsackDups: ti.Dsack_dups}
			}
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return nil, err
	}
	return s, nil
}

func sockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}
