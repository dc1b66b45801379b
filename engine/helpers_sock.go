package engine

import (
	"fmt"
	"syscall"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/sock"
)

// The socket helpers, against Options.Sockets. A socket a program gets
// (from a lookup, a sockmap, bpf_sk_fullsock ...) is its struct bpf_sock
// image mapped read-only for the rest of the run; one socket keeps one
// address while the run holds it, as the kernel's pointer does. The
// kernel's verifier tracks the references lookups take and refuses a
// program that can leak one or release what it does not hold; here a
// release of anything but a held reference fails the run, and the
// references a run still holds when it ends are dropped, as finish drops
// unsubmitted ring buffer records.

// sockRef is a socket the run holds a pointer to and how many references
// the program took on it (lookups take one, bpf_sk_release drops one).
type sockRef struct {
	addr    uint64
	tcpAddr uint64 // its struct bpf_tcp_sock, once bpf_tcp_sock asked
	s       *sock.Socket
	refs    int
}

// socketByCookie resolves a userspace sockmap Update's handle: the
// socket's cookie.
func (c *Collection) socketByCookie(cookie uint64) (*sock.Socket, error) {
	if s := c.opts.Sockets.Get(cookie); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("no socket with cookie %d in the engine's socket table: %w", cookie, syscall.EBADF)
}

// holdSocket returns s's address for the program, mapping it on first
// use, with one more reference if acquire.
func (x *Executor) holdSocket(m *vm.Machine, s *sock.Socket, acquire bool) (uint64, error) {
	var r *sockRef
	for i := range x.nsocks {
		if x.socks[i].s == s {
			r = &x.socks[i]
			break
		}
	}
	if r == nil {
		if x.nsocks == len(x.socks) {
			return 0, fmt.Errorf("socket %s: a run holds at most %d sockets: %w", s, len(x.socks), syscall.ENOSPC)
		}
		addr, err := m.MapDynamic(s.Image(), true)
		if err != nil {
			return 0, fmt.Errorf("socket %s: %w", s, err)
		}
		r = &x.socks[x.nsocks]
		*r = sockRef{addr: addr, s: s}
		x.nsocks++
	}
	if acquire {
		r.refs++
	}
	return r.addr, nil
}

// socketArg resolves a socket pointer argument; the verifier lets only
// pointers a helper returned through, so anything else fails the run.
func (x *Executor) socketArg(addr uint64) (*sockRef, error) {
	for i := range x.nsocks {
		if r := &x.socks[i]; r.s != nil && (r.addr == addr || r.tcpAddr != 0 && r.tcpAddr == addr) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("socket pointer %#x: not a socket the run holds (released, or never returned by a helper): %w", addr, syscall.EINVAL)
}

// dropSockets forgets the run's sockets (finish).
func (x *Executor) dropSockets() {
	for i := range x.nsocks {
		x.socks[i] = sockRef{}
	}
	x.nsocks = 0
}

func skLookupTCP(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	return skLookup(m, sock.ProtoTCP, r2, r3, r4, r5)
}

func skLookupUDP(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
	return skLookup(m, sock.ProtoUDP, r2, r3, r4, r5)
}

// skLookup is bpf_sk_lookup_tcp/udp and bpf_skc_lookup_tcp (the table
// holds only full sockets, so the two TCP lookups agree): the socket with a
// reference, or NULL. The tuple is read whatever its size, so a program
// passing memory it does not own faults as the verifier would refuse it.
func skLookup(m *vm.Machine, proto uint8, r2, r3, r4, r5 uint64) (uint64, error) {
	x, p := packet(m)
	tuple, err := memArg(m, r2, r3, false)
	if err != nil {
		return 0, err
	}
	var dif uint32
	if p != nil { // nil in a timer callback, which has no skb
		dif = p.Ifindex
	}
	s := x.coll.opts.Sockets.Lookup(proto, tuple, r4, r5, dif)
	if s == nil {
		return 0, nil
	}
	return x.holdSocket(m, s, true)
}

// skRelease is bpf_sk_release.
func skRelease(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	x := executor(m)
	r, err := x.socketArg(r1)
	if err != nil {
		return 0, fmt.Errorf("bpf_sk_release: %w", err)
	}
	if r.refs == 0 {
		return 0, fmt.Errorf("bpf_sk_release: socket %s at %#x: no reference held (the verifier refuses a release of an unreferenced pointer): %w", r.s, r1, syscall.EINVAL)
	}
	r.refs--
	if r.refs == 0 {
		// Every pointer derived from the reference dies with it.
		if err := m.UnmapDynamic(r.addr); err != nil {
			return 0, err
		}
		if r.tcpAddr != 0 {
			if err := m.UnmapDynamic(r.tcpAddr); err != nil {
				return 0, err
			}
		}
		r.s = nil
	}
	return 0, nil
}

// skFullsock is bpf_sk_fullsock: every socket of the table is a full one.
func skFullsock(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	r, err := executor(m).socketArg(r1)
	if err != nil {
		return 0, fmt.Errorf("bpf_sk_fullsock: %w", err)
	}
	return r.addr, nil
}

// getNetnsCookie is bpf_get_netns_cookie(ctx): the cookie of the
// namespace of the packet (Options.Sockets.NetnsCookie), of the initial
// namespace for a NULL context; 0 where the table does not say.
func getNetnsCookie(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	t := executor(m).coll.opts.Sockets
	switch {
	case t == nil:
		return 0, nil
	case r1 == 0:
		return t.InitNetnsCookie, nil
	}
	return t.NetnsCookie, nil
}

// tcpSock is bpf_tcp_sock: the socket's struct bpf_tcp_sock if it is a
// TCP socket, else NULL. The kernel returns the socket's own address (the
// verifier rewrites the loads); here it is a second read-only region, held
// and released with the socket.
func tcpSock(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	r, err := executor(m).socketArg(r1)
	if err != nil {
		return 0, fmt.Errorf("bpf_tcp_sock: %w", err)
	}
	img := r.s.TCPImage()
	if img == nil {
		return 0, nil
	}
	if r.tcpAddr == 0 {
		addr, err := m.MapDynamic(img, true)
		if err != nil {
			return 0, fmt.Errorf("bpf_tcp_sock: socket %s: %w", r.s, err)
		}
		r.tcpAddr = addr
	}
	return r.tcpAddr, nil
}

// getListenerSock is bpf_get_listener_sock: the socket if it is a TCP
// listener (which the kernel frees by RCU), else NULL.
func getListenerSock(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	r, err := executor(m).socketArg(r1)
	if err != nil {
		return 0, fmt.Errorf("bpf_get_listener_sock: %w", err)
	}
	if r.s.Protocol == sock.ProtoTCP && r.s.State == sock.StateListen {
		return r.addr, nil
	}
	return 0, nil
}

// skAssign is bpf_sk_assign(skb, sk, flags): at tc ingress only, the
// packet takes the socket (skb->sk), which the test-run output and the
// packet's hops show as its cookie. BPF_PROG_TEST_RUN's skb is not at
// ingress, so there the answer is -EOPNOTSUPP.
func skAssign(m *vm.Machine, _, r2, r3, _, _ uint64) (uint64, error) {
	x, p := packet(m)
	if r2 == 0 || r3 != 0 {
		return errno(linuxerr.EINVAL), nil
	}
	r, err := x.socketArg(r2)
	if err != nil {
		return 0, fmt.Errorf("bpf_sk_assign: %w", err)
	}
	if p == nil || !p.AtIngress {
		return errno(linuxerr.EOPNOTSUPP), nil
	}
	if !r.s.Hashed() {
		return errno(linuxerr.EOPNOTSUPP), nil
	}
	p.Sock = r.s.Cookie
	return 0, nil
}

// syncookieArgs reads the IP and TCP headers of the syncookie helpers.
func syncookieArgs(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (*sockRef, []byte, []byte, error) {
	r, err := executor(m).socketArg(r1)
	if err != nil {
		return nil, nil, nil, err
	}
	iph, err := memArg(m, r2, r3, false)
	if err != nil {
		return nil, nil, nil, err
	}
	th, err := memArg(m, r4, r5, false)
	if err != nil {
		return nil, nil, nil, err
	}
	return r, iph, th, nil
}

// TCP header flag bits of byte 13.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

const (
	tcpHdrLen  = 20
	ipv4HdrLen = 20
	ipv6HdrLen = 40
)

// listenerCheck is the syncookie helpers' common start: a TCP listener.
func listenerCheck(s *sock.Socket) bool {
	return s.State == sock.StateListen && s.Protocol == sock.ProtoTCP
}

// tcpCheckSyncookie is bpf_tcp_check_syncookie in a namespace with
// net.ipv4.tcp_syncookies at its default (1): a listener whose SYN queue
// never overflowed takes no cookies, so a well-formed ACK answers -ENOENT
// after the kernel's checks, in its order.
func tcpCheckSyncookie(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	r, _, th, err := syncookieArgs(m, r1, r2, r3, r4, r5)
	if err != nil {
		return 0, fmt.Errorf("bpf_tcp_check_syncookie: %w", err)
	}
	switch {
	case uint32(r5) < tcpHdrLen, !listenerCheck(r.s):
		return errno(linuxerr.EINVAL), nil
	case th[13]&tcpACK == 0 || th[13]&(tcpRST|tcpSYN) != 0:
		return errno(linuxerr.ENOENT), nil
	case uint32(r3) < ipv4HdrLen:
		return errno(linuxerr.EINVAL), nil
	}
	return errno(linuxerr.ENOENT), nil // tcp_synq_no_recent_overflow
}

// tcpGenSyncookie is bpf_tcp_gen_syncookie with tcp_syncookies at 1: the
// kernel makes a cookie only when the listener's accept queue is full
// (tcp_get_syncookie_mss), which a table socket never is, so a valid SYN
// answers -ENOENT after the kernel's checks, in its order.
func tcpGenSyncookie(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	r, iph, th, err := syncookieArgs(m, r1, r2, r3, r4, r5)
	if err != nil {
		return 0, fmt.Errorf("bpf_tcp_gen_syncookie: %w", err)
	}
	if uint32(r5) < tcpHdrLen || uint32(r5) != uint32(th[12]>>4)*4 || !listenerCheck(r.s) {
		return errno(linuxerr.EINVAL), nil
	}
	if th[13]&tcpSYN == 0 || th[13]&(tcpACK|tcpFIN|tcpRST) != 0 || uint32(r3) < ipv4HdrLen {
		return errno(linuxerr.EINVAL), nil
	}
	switch iph[0] >> 4 {
	case 4:
		if r.s.Family == sock.AFInet6 && r.s.V6Only {
			return errno(linuxerr.EINVAL), nil
		}
	case 6:
		if uint32(r3) < ipv6HdrLen || r.s.Family != sock.AFInet6 {
			return errno(linuxerr.EINVAL), nil
		}
	default:
		return errno(linuxerr.EPROTONOSUPPORT), nil
	}
	return errno(linuxerr.ENOENT), nil
}

// sockMapArg is the sockmap or sockhash a map helper names, or nil.
func sockMapArg(m *vm.Machine, handle uint64) (*mapEntry, *maps.SockMap) {
	x := executor(m)
	e, err := x.mapArg(handle)
	if err != nil {
		return nil, nil
	}
	sm, _ := e.m.(*maps.SockMap)
	return e, sm
}

// lookupSockMap is bpf_map_lookup_elem on a sockmap or sockhash: the
// socket with a reference the program must release, or NULL.
func (x *Executor) lookupSockMap(m *vm.Machine, e *mapEntry, sm *maps.SockMap, keyAddr uint64) (uint64, error) {
	key, err := m.Mem(keyAddr, uint64(e.keySize), false)
	if err != nil {
		return 0, err
	}
	s := sm.LookupSocket(key)
	if s == nil {
		return 0, nil
	}
	return x.holdSocket(m, s, true)
}

// updateSockMap is bpf_map_update_elem on a sockmap or sockhash: the value
// is a socket pointer, not memory.
func (x *Executor) updateSockMap(m *vm.Machine, e *mapEntry, sm *maps.SockMap, keyAddr, sk, flags uint64) (uint64, error) {
	key, err := m.Mem(keyAddr, uint64(e.keySize), false)
	if err != nil {
		return 0, err
	}
	r, err := x.socketArg(sk)
	if err != nil {
		return 0, fmt.Errorf("update of %s %q: %w", e.m.Info().Type, e.name, err)
	}
	return ret(sm.UpdateSocketElem(key, r.s, flags)), nil
}

func deleteSockMap(m *vm.Machine, e *mapEntry, sm *maps.SockMap, keyAddr uint64) (uint64, error) {
	key, err := m.Mem(keyAddr, uint64(e.keySize), false)
	if err != nil {
		return 0, err
	}
	return ret(sm.DeleteSocketElem(key)), nil
}
