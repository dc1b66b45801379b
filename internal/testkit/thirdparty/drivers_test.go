package thirdparty_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/kernel"
)

// driver steers an object's programs down their interesting paths: the
// maps set up as the object's own selftest does, and frames aimed at what
// the programs act on. next returns nil to let the random generator pick.
type driver struct {
	// prepare sets the object's load-time constants (.rodata), as its
	// selftest's skeleton does, on both the kernel's and the engine's spec.
	prepare func(spec *ebpf.CollectionSpec) error
	setup   func(s *kerneldiff.Side) error
	next    func(s *kerneldiff.Side, prog string, rng *rand.Rand) []byte
	// weight multiplies the packets each program of the object gets.
	weight int
	// rewrites names the programs that must change some packets (the
	// kernel's output differs from the input), proof that the frames
	// reached the path that encapsulates, decapsulates or rewrites.
	rewrites func(prog string) bool
	// took tells, after a packet both sides agreed on, whether the
	// kernel's run took the path the driver aims at (for programs whose
	// proof is in a map, not the packet); each program must take it once.
	took func(s *kerneldiff.Side, spec *ebpf.CollectionSpec, prog string) (bool, error)
}

var drivers = map[string]driver{
	"test_tc_tunnel.o":     {next: tunnelFrame, weight: 4, rewrites: func(string) bool { return true }},
	"test_l4lb.o":          {setup: l4lbSetup, next: l4lbFrame, weight: 10, rewrites: func(string) bool { return true }},
	"test_l4lb_noinline.o": {setup: l4lbSetup, next: l4lbFrame, weight: 10, rewrites: func(string) bool { return true }},
	"test_cls_redirect.o":  {prepare: clsRedirectPrepare, next: clsRedirectFrame, weight: 10, rewrites: func(string) bool { return true }},
	"test_tc_neigh.o":      {prepare: neighPrepare, next: neighFrame, weight: 2, rewrites: func(p string) bool { return p != "tc_chk" }},
	"test_tc_neigh_fib.o":  {prepare: neighPrepare, next: neighFrame, weight: 2},
	"crypto_sanity.o":      {prepare: cryptoSanityPrepare, setup: cryptoSetup("skb_crypto_setup"), next: cryptoSanityFrame, weight: 2, took: cryptoTook},
	"crypto_bench.o":       {prepare: cryptoBenchPrepare, setup: cryptoSetup("crypto_setup"), next: cryptoBenchFrame, weight: 2, took: cryptoTook},
	// The socket selftests, against the namespace's sockets.
	"test_assign_reuse.o":             {prepare: assignReusePrepare, setup: assignReuseSetup, next: assignReuseFrame, weight: 2},
	"test_sockmap_update.o":           {setup: sockmapUpdateSetup},
	"vrf_socket_lookup.o":             {next: vrfLookupFrame, weight: 2},
	"test_tcp_check_syncookie_kern.o": {next: syncookieFrame, weight: 2},
}

// tunnelPort is cfg_port of test_tc_tunnel.c: the encap programs
// encapsulate TCP to this port and pass everything else.
const tunnelPort = 8000

// tcpTo is a TCP flow to port (sometimes another one) over IPv4 or IPv6.
func tcpTo(rng *rand.Rand, v6 bool, port uint16) flow {
	f := flow{v6: v6, proto: layers.IPProtocolTCP, sport: uint16(1024 + rng.IntN(60000)), dport: port,
		payload: rng.IntN(1400), syn: rng.IntN(5) == 0}
	if rng.IntN(8) == 0 {
		f.dport = uint16(rng.IntN(65536))
	}
	if rng.IntN(6) == 0 {
		f.payload = rng.IntN(16)
	}
	if v6 {
		f.src, f.dst = ip6(rng), ip6(rng)
	} else {
		f.src, f.dst = ip4(rng), ip4(rng)
	}
	return f
}

// tunnelFrame feeds test_tc_tunnel's programs as test_tc_tunnel.sh does:
// TCP to port 8000 for the encap_* programs (IPv4 inner for most, IPv6
// for the ip6* and sit ones), and for decap the kernel's own output of a
// random encap program, so that every tunnel type is taken apart again.
func tunnelFrame(s *kerneldiff.Side, prog string, rng *rand.Rand) []byte {
	if rng.IntN(5) == 0 {
		return nil
	}
	if !strings.HasPrefix(prog, "decap") {
		v6 := tunnelInnerV6(prog)
		if rng.IntN(6) == 0 {
			v6 = !v6
		}
		return tcpTo(rng, v6, tunnelPort).frame(rng)
	}
	var encaps []string
	for _, p := range s.Kern.Programs() {
		if strings.Contains(p, "encap_") {
			encaps = append(encaps, p)
		}
	}
	if len(encaps) == 0 {
		return nil
	}
	enc := encaps[rng.IntN(len(encaps))]
	in := tcpTo(rng, tunnelInnerV6(enc), tunnelPort).frame(rng)
	out, err := s.Kern.Run(enc, kernel.RunInput{Data: in})
	if err != nil || out.Retval != 0 {
		return in
	}
	return out.Data
}

// tunnelInnerV6 tells an encap program (__encap_<outer><type>_<l2>) that
// carries IPv6: the ip6* ones but ip6-in-... ipip6 (IPv4 in IPv6), and sit
// (IPv6 in IPv4).
func tunnelInnerV6(prog string) bool {
	return (strings.Contains(prog, "ip6") && !strings.Contains(prog, "ipip6")) || strings.Contains(prog, "sit")
}

// The load balancer's configuration (test_l4lb.c, prog_tests/l4lb_all.c):
// three VIPs, a consistent-hash ring of CH_RINGS_SIZE (24) slots over five
// reals (two of them IPv6), the tunnel interfaces in ctl_array.
var (
	l4lbVIPs = []struct {
		addr          string
		port          uint16
		proto         layers.IPProtocol
		flags, vipNum uint32
	}{
		{"10.0.0.10", 80, layers.IPProtocolTCP, 0, 1},
		{"10.0.0.11", 0, layers.IPProtocolUDP, 1 /* F_HASH_NO_SRC_PORT */, 2},
		{"fd00::10", 443, layers.IPProtocolTCP, 0, 3},
		{"fd00::11", 0, layers.IPProtocolUDP, 0, 4},
		{"0.0.0.0", 0, layers.IPProtocolTCP, 0, 5}, // l4lb_all.c's own: {.protocol = 6}, VIP_NUM
	}
	l4lbReals = []string{"192.168.1.1", "192.168.1.2", "fd01::1", "192.168.1.3", "fd01::2"}
)

func l4lbSetup(s *kerneldiff.Side) error {
	for _, v := range l4lbVIPs {
		key := make([]byte, 24) // struct vip: daddr[16], dport, family, protocol
		ip := net.ParseIP(v.addr)
		if ip4 := ip.To4(); ip4 != nil {
			copy(key, ip4)
		} else {
			copy(key, ip)
		}
		binary.BigEndian.PutUint16(key[16:], v.port)
		key[20] = byte(v.proto)
		val := make([]byte, 8) // struct vip_meta
		binary.LittleEndian.PutUint32(val, v.flags)
		binary.LittleEndian.PutUint32(val[4:], v.vipNum)
		if err := s.SetMap("vip_map", key, val); err != nil {
			return err
		}
	}
	for i := range uint32(24) {
		key, val := binary.LittleEndian.AppendUint32(nil, i), binary.LittleEndian.AppendUint32(nil, i%uint32(len(l4lbReals)))
		if err := s.SetMap("ch_rings", key, val); err != nil {
			return err
		}
	}
	for i, r := range l4lbReals {
		val := make([]byte, 20) // struct real_definition: dst/dstv6, flags
		ip := net.ParseIP(r)
		if ip4 := ip.To4(); ip4 != nil {
			copy(val, ip4)
		} else {
			copy(val, ip)
			val[16] = 1 // F_IPV6
		}
		if err := s.SetMap("reals", binary.LittleEndian.AppendUint32(nil, uint32(i)), val); err != nil {
			return err
		}
	}
	for pos, ifindex := range map[uint32]uint64{1: 1, 2: 1} { // v4_intf_pos, v6_intf_pos
		if err := s.SetMap("ctl_array", binary.LittleEndian.AppendUint32(nil, pos), binary.LittleEndian.AppendUint64(nil, ifindex)); err != nil {
			return err
		}
	}
	return nil
}

// selftestPktV4 and selftestPktV6 are pkt_v4 and pkt_v6 of the selftests'
// network_helpers.c: all-zero Ethernet and IP addresses and ports, TCP
// with doff 5 and urg_ptr 123, the IP length field MAGIC_BYTES (123).
var (
	selftestPktV4 = []byte{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00, // ethhdr
		0x45, 0, 0, 123, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // iphdr
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 123, // tcphdr
	}
	selftestPktV6 = append(append([]byte{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd, // ethhdr
		0, 0, 0, 0, 0, 123, 6, 0, // ipv6hdr: version 0 as in the selftest, payload_len, nexthdr, hop_limit
	}, make([]byte, 32)...), // saddr, daddr
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 123) // tcphdr
)

// l4lbFrame aims mostly at the VIPs (right and wrong port and protocol,
// fragments, VLAN tags the program does not parse), the rest random.
func l4lbFrame(_ *kerneldiff.Side, _ string, rng *rand.Rand) []byte {
	switch rng.IntN(6) {
	case 0:
		return nil
	case 1:
		// The selftest's own packets, the only ones test_l4lb_noinline
		// forwards (it checks their jhash), with a random payload after.
		base := selftestPktV4
		if rng.IntN(2) == 0 {
			base = selftestPktV6
		}
		return append(slices.Clone(base), make([]byte, rng.IntN(64))...)
	}
	v := l4lbVIPs[rng.IntN(len(l4lbVIPs))]
	dst := net.ParseIP(v.addr)
	v6 := dst.To4() == nil
	f := flow{v6: v6, proto: v.proto, sport: uint16(1024 + rng.IntN(60000)), dport: v.port, payload: rng.IntN(1200), syn: rng.IntN(3) == 0}
	if f.dport == 0 {
		f.dport = uint16(rng.IntN(65536))
	}
	if v6 {
		f.src, f.dst = ip6(rng), dst
	} else {
		f.src, f.dst = ip4(rng), dst.To4()
	}
	switch rng.IntN(12) {
	case 0:
		f.dport++
	case 1:
		f.proto = layers.IPProtocolUDP + layers.IPProtocolTCP - f.proto
	case 2:
		f.frag = !v6
	case 3:
		f.vlan = true
	}
	return f.frame(rng)
}

// cls_redirect's configuration (prog_tests/cls_redirect.c): GUE over UDP
// to 127.0.0.1:1234.
var (
	clsRedirectIP   = net.IPv4(127, 0, 0, 1).To4()
	clsRedirectPort = uint16(1234)
)

func clsRedirectPrepare(spec *ebpf.CollectionSpec) error {
	ip, port := binary.NativeEndian.Uint32(clsRedirectIP), binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, clsRedirectPort))
	for name, v := range map[string]any{"ENCAPSULATION_IP": ip, "ENCAPSULATION_PORT": port} {
		vs := spec.Variables[name]
		if vs == nil {
			return fmt.Errorf("no variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// clsRedirectFrame builds what cls_redirect forwards or accepts: IPv4/UDP
// to the encapsulation address and port, a GUE header and the unigue
// extension with 0-2 next hops (next_hop index, forward_syn and
// last_hop_gre drawn), then an inner IPv4 or IPv6 packet: TCP SYN or ACK
// (no socket matches: the socket table is empty on both sides), UDP or an
// ICMP echo. Some are malformed or aimed elsewhere.
func clsRedirectFrame(_ *kerneldiff.Side, _ string, rng *rand.Rand) []byte {
	if rng.IntN(8) == 0 {
		return nil
	}
	hops := rng.IntN(3)
	nextHop := 0
	if hops > 0 && rng.IntN(3) == 0 {
		nextHop = rng.IntN(hops + 1)
	}
	gue := []byte{byte(1 + hops), 4 /* IPPROTO_IPIP */, 0, 0}
	v6 := rng.IntN(3) == 0
	if v6 {
		gue[1] = 41 // IPPROTO_IPV6
	}
	unigue := []byte{byte(rng.IntN(2))<<2 | byte(rng.IntN(2))<<3, 0, byte(nextHop), byte(hops)}
	switch rng.IntN(16) {
	case 0:
		gue[0]++ // hlen disagrees with hop_count
	case 1:
		unigue[0] |= 0x10 // version 1
	case 2:
		gue[1] = 17
	}
	payload := append(gue, unigue...)
	for range hops {
		payload = append(payload, 10, 9, 0, byte(1+rng.IntN(250)))
	}
	payload = append(payload, clsRedirectInner(rng, v6)...)

	dst, port := clsRedirectIP, clsRedirectPort
	if rng.IntN(10) == 0 {
		dst = ip4(rng)
	}
	if rng.IntN(10) == 0 {
		port++
	}
	ipv4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ip4(rng), DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + rng.IntN(60000)), DstPort: layers.UDPPort(port)}
	udp.SetNetworkLayerForChecksum(ipv4)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	return serialize(eth, ipv4, udp, gopacket.Payload(payload))
}

// clsRedirectInner is the encapsulated packet.
func clsRedirectInner(rng *rand.Rand, v6 bool) []byte {
	var ip gopacket.NetworkLayer
	var first gopacket.SerializableLayer
	proto := []layers.IPProtocol{layers.IPProtocolTCP, layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv4}[rng.IntN(4)]
	if v6 && proto == layers.IPProtocolICMPv4 {
		proto = layers.IPProtocolICMPv6
	}
	if v6 {
		l := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: ip6(rng), DstIP: ip6(rng)}
		ip, first = l, l
	} else {
		l := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: ip4(rng), DstIP: ip4(rng)}
		ip, first = l, l
	}
	ls := []gopacket.SerializableLayer{first}
	switch proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(1024 + rng.IntN(60000)), DstPort: 80, Seq: rng.Uint32(), SYN: rng.IntN(2) == 0, Window: 1024}
		tcp.ACK = !tcp.SYN
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case layers.IPProtocolUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + rng.IntN(60000)), DstPort: 53}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	case layers.IPProtocolICMPv4:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1})
	case layers.IPProtocolICMPv6:
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
		icmp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, icmp, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1})
	}
	ls = append(ls, gopacket.Payload(make([]byte, rng.IntN(200))))
	return serialize(ls...)
}

// serialize is gopacket's SerializeLayers with lengths and checksums fixed.
func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(err) // the layers here always serialise
	}
	return buf.Bytes()
}

// The two endpoints of test_tc_neigh.sh/tc_redirect.c: tc_dst redirects
// what is addressed to the source endpoint, tc_src what goes to the
// destination, to IFINDEX_SRC and IFINDEX_DST after zeroing the MACs.
var neighAddrs = []string{"172.16.1.100", "172.16.2.100", "::1:dead:beef:cafe", "::2:dead:beef:cafe"}

func neighPrepare(spec *ebpf.CollectionSpec) error {
	for name, ifindex := range map[string]uint32{"IFINDEX_SRC": 2, "IFINDEX_DST": 3} {
		if v := spec.Variables[name]; v != nil {
			if err := v.Set(ifindex); err != nil {
				return fmt.Errorf("set %s: %w", name, err)
			}
		}
	}
	return nil
}

func neighFrame(_ *kerneldiff.Side, _ string, rng *rand.Rand) []byte {
	if rng.IntN(5) == 0 {
		return nil
	}
	dst := net.ParseIP(neighAddrs[rng.IntN(len(neighAddrs))])
	f := tcpTo(rng, dst.To4() == nil, 80)
	if f.v6 {
		f.dst = dst
	} else {
		f.dst = dst.To4()
	}
	if rng.IntN(3) == 0 {
		f.proto = layers.IPProtocolUDP
	}
	return f.frame(rng)
}
