package thirdparty_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/kernel"
)

// driver steers an object's programs down their interesting paths: the
// maps set up as the object's own selftest does, and frames aimed at what
// the programs act on. next returns nil to let the random generator pick.
type driver struct {
	setup func(s *kerneldiff.Side) error
	next  func(s *kerneldiff.Side, prog string, rng *rand.Rand) []byte
	// weight multiplies the packets each program of the object gets.
	weight int
	// rewrites names the programs that must change some packets (the
	// kernel's output differs from the input), proof that the frames
	// reached the path that encapsulates, decapsulates or rewrites.
	rewrites func(prog string) bool
}

var drivers = map[string]driver{
	"test_tc_tunnel.o":     {next: tunnelFrame, weight: 4, rewrites: func(string) bool { return true }},
	"test_l4lb.o":          {setup: l4lbSetup, next: l4lbFrame, weight: 10, rewrites: func(string) bool { return true }},
	"test_l4lb_noinline.o": {setup: l4lbSetup, next: l4lbFrame, weight: 10, rewrites: func(string) bool { return true }},
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
