package sock

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// Parse reads a socket from its one-line form, as tcx test-run's
// --socket takes it:
//
//	tcp listen 10.0.0.1:80          a TCP listener
//	tcp 10.0.0.1:80 10.0.0.2:40000  an established TCP socket (local, peer)
//	udp 0.0.0.0:53                  a bound UDP socket
//	udp 10.0.0.1:53 10.0.0.9:5353   a connected one
//
// followed by any of v6only, dev=IFINDEX, mark=N, priority=N and
// cookie=N. An IPv6 address (v4-mapped too) makes an AF_INET6 socket.
func Parse(line string) (Socket, error) {
	bad := func(why string) (Socket, error) {
		return Socket{}, fmt.Errorf("socket %q: %s: %w", line, why, syscall.EINVAL)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return bad("want PROTO [listen] LOCAL [PEER] [OPTION...]")
	}
	var s Socket
	switch f[0] {
	case "tcp":
		s.Protocol, s.State = ProtoTCP, StateEstablished
	case "udp":
		s.Protocol, s.State = ProtoUDP, StateClose
	default:
		return bad("the protocol is tcp or udp")
	}
	f = f[1:]
	if f[0] == "listen" {
		if s.Protocol != ProtoTCP {
			return bad("only TCP sockets listen")
		}
		s.State, f = StateListen, f[1:]
	}
	var addrs []netip.AddrPort
	for _, w := range f {
		k, v, opt := strings.Cut(w, "=")
		if !opt && w != "v6only" {
			a, err := netip.ParseAddrPort(w)
			if err != nil {
				return bad(err.Error())
			}
			addrs = append(addrs, a)
			continue
		}
		var n uint64
		if opt {
			var err error
			if n, err = strconv.ParseUint(v, 0, 64); err != nil {
				return bad(fmt.Sprintf("%s: %v", k, err))
			}
		}
		switch {
		case w == "v6only":
			s.V6Only = true
		case k == "dev" && n <= 1<<32-1:
			s.BoundIfindex = uint32(n)
		case k == "mark" && n <= 1<<32-1:
			s.Mark = uint32(n)
		case k == "priority" && n <= 1<<32-1:
			s.Priority = uint32(n)
		case k == "cookie":
			s.Cookie = n
		default:
			return bad(fmt.Sprintf("option %q", w))
		}
	}
	switch len(addrs) {
	case 1:
		if s.Protocol == ProtoTCP && s.State != StateListen {
			return bad("an established TCP socket has a local address and a peer (or say listen)")
		}
	case 2:
		if s.State == StateListen {
			return bad("a listener has no peer")
		}
		s.Remote = addrs[1]
		if s.Protocol == ProtoUDP {
			s.State = StateEstablished
		}
	default:
		return bad("want one or two addresses")
	}
	s.Local = addrs[0]
	s.Family = AFInet
	if s.Local.Addr().Is6() {
		s.Family = AFInet6
	}
	return s, nil
}
