package kerneldiff_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/sock"
)

// The lookup probe's frame: byte 0 picks the helper (0 sk_lookup_tcp, 1
// sk_lookup_udp, 2 skc_lookup_tcp), byte 1 is the tuple size, netns_id at
// 8, flags at 16, the tuple at 24. What the lookup found goes to offset
// probeOut: the struct bpf_sock fields, then 1 if bpf_get_listener_sock
// returned the socket.
const (
	probeTuple   = 24
	probeOut     = 64
	probeTCPOut  = 88 // struct bpf_tcp_sock, from here in the output
	probeOutSize = probeTCPOut + sock.TCPImageSize
	probeLen     = probeOut + probeOutSize
)

// sockCommonFields are the struct bpf_sock fields a sock_common pointer
// (bpf_skc_lookup_tcp's) may read; fullOnlyFields need bpf_sk_fullsock.
var (
	sockCommonFields = []int16{sock.OffBoundDevIf, sock.OffFamily, sock.OffSrcIP4, sock.OffSrcIP6, sock.OffSrcIP6 + 4,
		sock.OffSrcIP6 + 8, sock.OffSrcIP6 + 12, sock.OffSrcPort, sock.OffDstPort, sock.OffDstIP4, sock.OffDstIP6,
		sock.OffDstIP6 + 4, sock.OffDstIP6 + 8, sock.OffDstIP6 + 12, sock.OffState}
	// rx_queue_mapping is left out: see kerneldiff.Mirror.
	fullOnlyFields = []int16{sock.OffType, sock.OffProtocol, sock.OffMark, sock.OffPriority}
	// tcpFields are the struct bpf_tcp_sock fields TCP_INFO tells (the
	// 4-byte ones; bytes_received and bytes_acked are tcpFields64).
	tcpFields = []int16{sock.OffSndCwnd, sock.OffRttMin, sock.OffSndSsthresh, sock.OffMssCache,
		sock.OffPacketsOut, sock.OffRetransOut, sock.OffTotalRetrans, sock.OffSegsIn, sock.OffDataSegsIn,
		sock.OffSegsOut, sock.OffDataSegsOut, sock.OffLostOut, sock.OffSackedOut, sock.OffDsackDups,
		sock.OffDelivered, sock.OffDeliveredCE, sock.OffIcskRetransmits}
	tcpFields64 = []int16{sock.OffBytesReceived, sock.OffBytesAcked}
)

// lookupProbe is a tc program running one socket lookup as its frame
// says and writing what it found into the frame: 1 if found, 0 if not.
func lookupProbe() *ebpf.CollectionSpec {
	const buf, out = -64, -64 - probeOutSize // stack: the frame's first 64 bytes, the output
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Reg(asm.R3, asm.R10), asm.Add.Imm(asm.R3, buf), asm.Mov.Imm(asm.R4, 64),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "miss"),
		asm.LoadMem(asm.R3, asm.R10, buf+1, asm.Byte),
		asm.JGT.Imm(asm.R3, 64-probeTuple, "miss"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R10), asm.Add.Imm(asm.R2, buf+probeTuple),
		asm.LoadMem(asm.R4, asm.R10, buf+8, asm.DWord),
		asm.LoadMem(asm.R5, asm.R10, buf+16, asm.DWord),
		asm.LoadMem(asm.R0, asm.R10, buf, asm.Byte),
		asm.JEq.Imm(asm.R0, 1, "udp"),
		asm.JEq.Imm(asm.R0, 2, "skc"),
		asm.FnSkLookupTcp.Call(),
		asm.Ja.Label("found"),
		asm.FnSkLookupUdp.Call().WithSymbol("udp"),
		asm.Ja.Label("found"),
		asm.FnSkcLookupTcp.Call().WithSymbol("skc"),
		asm.JEq.Imm(asm.R0, 0, "miss").WithSymbol("found"),
		asm.Mov.Reg(asm.R7, asm.R0),
	}
	for off := 0; off < probeOutSize; off += 4 {
		ins = append(ins, asm.StoreImm(asm.R10, int16(out+off), 0, asm.Word))
	}
	// The fields are read through bpf_sk_fullsock's pointer: one load
	// instruction may not serve both a socket and a sock_common pointer.
	ins = append(ins,
		asm.Mov.Reg(asm.R1, asm.R7), asm.FnSkFullsock.Call(),
		asm.JEq.Imm(asm.R0, 0, "listener"),
	)
	for _, f := range append(sockCommonFields, fullOnlyFields...) {
		ins = append(ins, asm.LoadMem(asm.R1, asm.R0, f, asm.Word), asm.StoreMem(asm.R10, out+f, asm.R1, asm.Word))
	}
	ins = append(ins,
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("listener"), asm.FnGetListenerSock.Call(),
		asm.JEq.Imm(asm.R0, 0, "tcp"),
		asm.StoreImm(asm.R10, out+sock.ImageSize, 1, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("tcp"), asm.FnTcpSock.Call(),
		asm.JEq.Imm(asm.R0, 0, "store"),
	)
	for _, f := range tcpFields {
		ins = append(ins, asm.LoadMem(asm.R1, asm.R0, f, asm.Word), asm.StoreMem(asm.R10, out+probeTCPOut+f, asm.R1, asm.Word))
	}
	for _, f := range tcpFields64 {
		ins = append(ins, asm.LoadMem(asm.R1, asm.R0, f, asm.DWord), asm.StoreMem(asm.R10, out+probeTCPOut+f, asm.R1, asm.DWord))
	}
	ins = append(ins,
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("store"), asm.Mov.Imm(asm.R2, probeOut),
		asm.Mov.Reg(asm.R3, asm.R10), asm.Add.Imm(asm.R3, out), asm.Mov.Imm(asm.R4, probeOutSize), asm.Mov.Imm(asm.R5, 0),
		asm.FnSkbStoreBytes.Call(),
		asm.Mov.Reg(asm.R1, asm.R7), asm.FnSkRelease.Call(),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("miss"),
		asm.Return(),
	)
	return &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"lookup": {Name: "lookup", Type: ebpf.SchedCLS, License: "GPL", Instructions: ins},
	}, Maps: map[string]*ebpf.MapSpec{}}
}

// lookupFrame is a probe frame asking helper for tuple (the source is the
// socket's remote end) with netns_id and flags.
func lookupFrame(helper byte, src, dst netip.AddrPort, netns, flags uint64, size int) []byte {
	f := make([]byte, probeLen)
	f[0] = helper
	binary.LittleEndian.PutUint64(f[8:], netns)
	binary.LittleEndian.PutUint64(f[16:], flags)
	t := f[probeTuple:]
	if src.Addr().Is4() && dst.Addr().Is4() {
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(t, s4[:])
		copy(t[4:], d4[:])
		binary.BigEndian.PutUint16(t[8:], src.Port())
		binary.BigEndian.PutUint16(t[10:], dst.Port())
		f[1] = sock.TupleSize4
	} else {
		s6, d6 := src.Addr().As16(), dst.Addr().As16()
		copy(t, s6[:])
		copy(t[16:], d6[:])
		binary.BigEndian.PutUint16(t[32:], src.Port())
		binary.BigEndian.PutUint16(t[34:], dst.Port())
		f[1] = sock.TupleSize6
	}
	if size >= 0 {
		f[1] = byte(size)
	}
	// Not an IP frame: BPF_PROG_TEST_RUN takes any ethertype.
	f[12], f[13] = 0x88, 0xb5
	return f
}

// TestKernel_SocketLookups compares bpf_sk_lookup_tcp/udp and
// bpf_skc_lookup_tcp, with the struct bpf_sock fields of what they find,
// bpf_sk_fullsock, bpf_get_listener_sock, the struct bpf_tcp_sock fields
// TCP_INFO tells (bpf_tcp_sock) and bpf_sk_release, between a
// kernel namespace with listening, established and UDP sockets and the
// engine with the same sockets in its table: tuples of every socket in
// both directions, with another port or address, as IPv4-mapped IPv6,
// with other sizes, flags and netns ids. Lookups that find and that miss
// must both occur.
func TestKernel_SocketLookups(t *testing.T) {
	kerneltest.RequireKernel(t)
	kerneldiff.PinCPU0(t)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	socks, err := kerneldiff.OpenSockets(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { socks.Close() })
	spec := lookupProbe()
	kern, err := kernel.NewTestRunner(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kern.Close() })
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Sockets: socks.Table})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Close() })
	s, err := kerneldiff.NewSide(kern, coll)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.NS = ns
	rng := rand.New(rand.NewPCG(9, 9))
	const cur = sock.CurrentNetns
	var frames [][]byte
	for _, k := range socks.All() {
		local, remote := k.Local, k.Remote
		if !remote.IsValid() {
			// Anyone may send to a listener or an unconnected UDP socket.
			peer := kerneldiff.Loopback4
			if k.Family == sock.AFInet6 && (k.V6Only || rng.IntN(2) == 0) {
				peer = kerneldiff.Loopback6
			}
			remote = netip.AddrPortFrom(peer, uint16(1024+rng.IntN(60000)))
		}
		if local.Addr().IsUnspecified() {
			local = netip.AddrPortFrom(remote.Addr(), local.Port())
		}
		helpers := []byte{0, 2}
		if k.Protocol == sock.ProtoUDP {
			helpers = []byte{1}
		}
		for _, h := range helpers {
			frames = append(frames,
				lookupFrame(h, remote, local, cur, 0, -1),
				lookupFrame(h, remote, local, ^uint64(0), 0, -1),
				lookupFrame(h, local, remote, cur, 0, -1),
				lookupFrame(h, remote, netip.AddrPortFrom(local.Addr(), local.Port()+1), cur, 0, -1),
				lookupFrame(h, remote, local, 0, 0, -1),
				lookupFrame(h, remote, local, 1<<31, 0, -1),
				lookupFrame(h, remote, local, cur, 1, -1),
				lookupFrame(h, remote, local, cur, 0, 13),
				lookupFrame(1-h%2, remote, local, cur, 0, -1),
			)
			if remote.Addr().Is4() {
				m := func(a netip.AddrPort) netip.AddrPort {
					return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
				}
				frames = append(frames, lookupFrame(h, m(remote), m(local), cur, 0, -1))
			}
		}
	}
	found := map[bool]int{}
	for i, frame := range frames {
		d, err := s.Compare("lookup", frame, nil, map[uint32]int{})
		if err != nil {
			t.Fatal(err)
		}
		if d != "" {
			t.Fatalf("divergence at frame %d: %s\nframe % x", i, d, frame)
		}
		rv, _, _, err := s.X.TestRun(coll.Programs["lookup"], frame, nil)
		if err != nil {
			t.Fatal(err)
		}
		found[rv == 1]++
	}
	t.Logf("socket lookups: %d sockets, %d lookups (%d found, %d missed), 0 divergences", len(socks.All()), len(frames), found[true], found[false])
	if found[true] < len(socks.All()) || found[false] == 0 {
		t.Errorf("lookups found %d and missed %d; want every socket found and some misses", found[true], found[false])
	}
}

// TestKernel_NetnsCookie: bpf_get_netns_cookie(skb) answers the cookie of
// the namespace the packet is in, the one SO_NETNS_COOKIE reports for the
// namespace's sockets, which the mirrored table carries.
func TestKernel_NetnsCookie(t *testing.T) {
	kerneltest.RequireKernel(t)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	socks, err := kerneldiff.OpenSockets(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { socks.Close() })
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), asm.FnGetNetnsCookie.Call(), asm.StoreMem(asm.R10, -8, asm.R0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Imm(asm.R2, 0), asm.Mov.Reg(asm.R3, asm.R10), asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 8), asm.Mov.Imm(asm.R5, 0), asm.FnSkbStoreBytes.Call(),
		asm.Mov.Imm(asm.R0, 0), asm.Return(),
	}
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"cookie": {Name: "cookie", Type: ebpf.SchedCLS, License: "GPL", Instructions: ins}}, Maps: map[string]*ebpf.MapSpec{}}
	kern, err := kernel.NewTestRunner(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kern.Close() })
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Sockets: socks.Table})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Close() })
	s, err := kerneldiff.NewSide(kern, coll)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.NS = ns
	d, err := s.Compare("cookie", make([]byte, 64), nil, map[uint32]int{})
	if err != nil || d != "" {
		t.Fatalf("%v %s", err, d)
	}
	if socks.Table.NetnsCookie == 0 {
		t.Fatal("no netns cookie mirrored")
	}
	t.Logf("netns cookie %d, the same on both sides", socks.Table.NetnsCookie)
}
