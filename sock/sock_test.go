package sock_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx/sock"
)

func tuple4(src, dst string) []byte {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	b := make([]byte, sock.TupleSize4)
	s4, d4 := s.Addr().As4(), d.Addr().As4()
	copy(b, s4[:])
	copy(b[4:], d4[:])
	binary.BigEndian.PutUint16(b[8:], s.Port())
	binary.BigEndian.PutUint16(b[10:], d.Port())
	return b
}

func tuple6(src, dst string) []byte {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	b := make([]byte, sock.TupleSize6)
	s6, d6 := s.Addr().As16(), d.Addr().As16()
	copy(b, s6[:])
	copy(b[16:], d6[:])
	binary.BigEndian.PutUint16(b[32:], s.Port())
	binary.BigEndian.PutUint16(b[34:], d.Port())
	return b
}

func mustAdd(t *testing.T, tb *sock.Table, s sock.Socket) *sock.Socket {
	t.Helper()
	n, err := tb.Add(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var ap = netip.MustParseAddrPort

// TestLookup covers what the kernel's lookup decides: an established
// socket before a listener, an exact address before the wildcard, a
// device-bound listener before an unbound one, AF_INET before a
// dual-stack AF_INET6 socket, IPV6_V6ONLY, connected UDP before bound,
// and the NULL answers (empty table, sizes, flags, netns ids).
func TestLookup(t *testing.T) {
	var nilTable *sock.Table
	if nilTable.Lookup(sock.ProtoTCP, tuple4("10.0.0.1:1", "10.0.0.2:80"), sock.CurrentNetns, 0, 1) != nil {
		t.Fatal("a nil table found a socket")
	}
	tb := &sock.Table{}
	dual := mustAdd(t, tb, sock.Socket{Family: sock.AFInet6, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("[::]:80")})
	wild4 := mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("0.0.0.0:80")})
	exact := mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("10.0.0.2:80")})
	bound := mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("0.0.0.0:81"), BoundIfindex: 5})
	est := mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateEstablished, Local: ap("10.0.0.2:80"), Remote: ap("10.0.0.1:1000")})
	v6only := mustAdd(t, tb, sock.Socket{Family: sock.AFInet6, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("[::]:82"), V6Only: true})
	udp := mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoUDP, State: sock.StateClose, Local: ap("0.0.0.0:53")})
	udpConn := mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoUDP, State: sock.StateEstablished, Local: ap("10.0.0.2:53"), Remote: ap("10.0.0.9:5353")})
	cur := uint64(sock.CurrentNetns)
	for _, c := range []struct {
		name  string
		proto uint8
		tuple []byte
		netns uint64
		flags uint64
		dif   uint32
		want  *sock.Socket
	}{
		{"established first", sock.ProtoTCP, tuple4("10.0.0.1:1000", "10.0.0.2:80"), cur, 0, 1, est},
		{"exact address", sock.ProtoTCP, tuple4("10.0.0.1:1001", "10.0.0.2:80"), cur, 0, 1, exact},
		{"AF_INET wildcard before dual-stack", sock.ProtoTCP, tuple4("10.0.0.1:1001", "10.0.0.3:80"), cur, 0, 1, wild4},
		{"dual-stack for IPv6", sock.ProtoTCP, tuple6("[fd00::1]:1", "[fd00::2]:80"), cur, 0, 1, dual},
		{"bound device matches", sock.ProtoTCP, tuple4("10.0.0.1:1", "10.0.0.3:81"), cur, 0, 5, bound},
		{"bound device misses", sock.ProtoTCP, tuple4("10.0.0.1:1", "10.0.0.3:81"), cur, 0, 1, nil},
		{"v6only misses IPv4", sock.ProtoTCP, tuple4("10.0.0.1:1", "10.0.0.3:82"), cur, 0, 1, nil},
		{"v6only takes IPv6", sock.ProtoTCP, tuple6("[fd00::1]:1", "[fd00::2]:82"), cur, 0, 1, v6only},
		{"64-bit current netns", sock.ProtoTCP, tuple4("10.0.0.1:1001", "10.0.0.2:80"), ^uint64(0), 0, 1, exact},
		{"other netns id", sock.ProtoTCP, tuple4("10.0.0.1:1001", "10.0.0.2:80"), 0, 0, 1, nil},
		{"flags", sock.ProtoTCP, tuple4("10.0.0.1:1001", "10.0.0.2:80"), cur, 1, 1, nil},
		{"tuple size", sock.ProtoTCP, tuple4("10.0.0.1:1001", "10.0.0.2:80")[:11], cur, 0, 1, nil},
		{"connected UDP", sock.ProtoUDP, tuple4("10.0.0.9:5353", "10.0.0.2:53"), cur, 0, 1, udpConn},
		{"bound UDP", sock.ProtoUDP, tuple4("10.0.0.8:5353", "10.0.0.2:53"), cur, 0, 1, udp},
		{"UDP is not TCP", sock.ProtoTCP, tuple4("10.0.0.8:5353", "10.0.0.2:53"), cur, 0, 1, nil},
	} {
		if got := tb.Lookup(c.proto, c.tuple, c.netns, c.flags, c.dif); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if err := tb.Remove(est.Cookie); err != nil {
		t.Fatal(err)
	}
	if !est.Closed() {
		t.Error("a removed socket is not closed")
	}
	if got := tb.Lookup(sock.ProtoTCP, tuple4("10.0.0.1:1000", "10.0.0.2:80"), cur, 0, 1); got != exact {
		t.Errorf("after the established socket closed: got %v, want the listener", got)
	}
	if err := tb.Remove(est.Cookie); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("second remove: %v, want ENOENT", err)
	}
}

// TestImage checks the struct bpf_sock image of an IPv6 listener and an
// IPv4 established socket, as the kernel's sockets read
// (kerneldiff.TestKernel_SocketLookups compares them with real ones).
func TestImage(t *testing.T) {
	tb := &sock.Table{}
	l := mustAdd(t, tb, sock.Socket{Family: sock.AFInet6, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("[::1]:8080"), BoundIfindex: 3, Mark: 7})
	img := l.Image()
	le := binary.LittleEndian
	for off, want := range map[int]uint32{sock.OffBoundDevIf: 3, sock.OffFamily: sock.AFInet6, sock.OffType: 1, sock.OffProtocol: sock.ProtoTCP,
		sock.OffMark: 7, sock.OffSrcPort: 8080, sock.OffState: sock.StateListen, sock.OffRxQueueMapping: 0xffffffff, sock.OffDstIP4: 0} {
		if got := le.Uint32(img[off:]); got != want {
			t.Errorf("listener offset %d: %#x, want %#x", off, got, want)
		}
	}
	if got := netip.AddrFrom4([4]byte(img[sock.OffSrcIP4:])); got != netip.MustParseAddr("127.0.0.6") {
		t.Errorf("src_ip4 of an IPv6 socket: %v, want LOOPBACK4_IPV6", got)
	}
	e := mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateEstablished, Local: ap("10.1.1.1:80"), Remote: ap("10.1.1.2:4000")})
	img = e.Image()
	if got := binary.BigEndian.Uint16(img[sock.OffDstPort:]); got != 4000 {
		t.Errorf("dst_port %d", got)
	}
	if got := netip.AddrFrom16([16]byte(img[sock.OffDstIP6:])); got != netip.MustParseAddr("::ffff:10.1.1.2") {
		t.Errorf("dst_ip6 of an established AF_INET socket: %v, want v4-mapped", got)
	}
}

func TestAdd_Errors(t *testing.T) {
	tb := &sock.Table{}
	l := sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("10.0.0.1:80")}
	mustAdd(t, tb, l)
	for _, c := range []struct {
		s    sock.Socket
		want error
	}{
		{l, syscall.EADDRINUSE},
		{sock.Socket{Family: 1, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("10.0.0.1:81")}, syscall.EAFNOSUPPORT},
		{sock.Socket{Family: sock.AFInet, Protocol: 1, State: sock.StateListen, Local: ap("10.0.0.1:81")}, syscall.EPROTONOSUPPORT},
		{sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("[::1]:81")}, syscall.EINVAL},
		{sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateEstablished, Local: ap("10.0.0.1:81")}, syscall.EINVAL},
		{sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: 2, Local: ap("10.0.0.1:81")}, syscall.EINVAL},
		{sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("10.0.0.1:82"), Cookie: 1}, syscall.EEXIST},
	} {
		if _, err := tb.Add(c.s); !errors.Is(err, c.want) {
			t.Errorf("add %+v: %v, want %v", c.s, err, c.want)
		}
	}
}

// TestLookup_NoAlloc: lookups run on the packet path.
func TestLookup_NoAlloc(t *testing.T) {
	tb := &sock.Table{}
	mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("0.0.0.0:80")})
	tu := tuple4("10.0.0.1:1", "10.0.0.2:80")
	if n := testing.AllocsPerRun(100, func() { tb.Lookup(sock.ProtoTCP, tu, sock.CurrentNetns, 0, 1) }); n != 0 {
		t.Errorf("%v allocations per lookup", n)
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want sock.Socket
		bad  bool
	}{
		{in: "tcp listen 10.0.0.1:80", want: sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("10.0.0.1:80")}},
		{in: "tcp listen [::]:443 v6only dev=3 cookie=9", want: sock.Socket{Family: sock.AFInet6, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("[::]:443"), V6Only: true, BoundIfindex: 3, Cookie: 9}},
		{in: "tcp 10.0.0.1:80 10.0.0.2:4000 mark=0x10", want: sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateEstablished, Local: ap("10.0.0.1:80"), Remote: ap("10.0.0.2:4000"), Mark: 16}},
		{in: "udp 0.0.0.0:53", want: sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoUDP, State: sock.StateClose, Local: ap("0.0.0.0:53")}},
		{in: "udp 10.0.0.1:53 10.0.0.9:5353", want: sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoUDP, State: sock.StateEstablished, Local: ap("10.0.0.1:53"), Remote: ap("10.0.0.9:5353")}},
		{in: "tcp 10.0.0.1:80", bad: true},
		{in: "udp listen 10.0.0.1:80", bad: true},
		{in: "sctp 10.0.0.1:80", bad: true},
		{in: "tcp listen 10.0.0.1:80 color=red", bad: true},
	} {
		got, err := sock.Parse(c.in)
		if c.bad {
			if !errors.Is(err, syscall.EINVAL) {
				t.Errorf("%q: %v, want EINVAL", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// TestTable_Concurrent: lookups run while sockets come and go (-race).
func TestTable_Concurrent(t *testing.T) {
	tb := &sock.Table{}
	mustAdd(t, tb, sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen, Local: ap("0.0.0.0:80")})
	tu := tuple4("10.0.0.1:1", "10.0.0.2:80")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 500 {
			s, err := tb.Add(sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen,
				Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), 80), BoundIfindex: uint32(2 + i%3)})
			if err != nil {
				t.Error(err)
				return
			}
			if err := tb.Remove(s.Cookie); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		s := tb.Lookup(sock.ProtoTCP, tu, sock.CurrentNetns, 0, 1)
		if s == nil || s.Image()[sock.OffState] != sock.StateListen {
			t.Fatalf("lookup during changes: %v", s)
		}
	}
}
