package thirdparty_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/sock"
)

// The drivers of the objects that use sockets: their frames are aimed at
// the sockets open in the kernel's namespace (kerneldiff.NSSockets), whose
// mirrors the engine's table holds.

// assignReusePort is test_assign_reuse's dest_port: the port whose SYNs
// and datagrams tc_main assigns to the socket in sk_map.
const assignReusePort = 4321

func assignReusePrepare(spec *ebpf.CollectionSpec) error {
	v := spec.Variables["dest_port"]
	if v == nil {
		return nil // the tc-only spec may have lost it with its map
	}
	return v.Set(uint16(assignReusePort))
}

// assignReuseSetup puts an established IPv4 socket in sk_map. The
// selftest puts its reuseport listener there, which 6.18 no longer takes
// (maps.SockMap).
func assignReuseSetup(s *kerneldiff.Side) error {
	return s.SetSocket("sk_map", make([]byte, 4), s.Sockets.Server4)
}

// assignReuseFrame is a SYN or a datagram to dest_port (or another port,
// or a non-SYN), over IPv4 or IPv6.
func assignReuseFrame(_ *kerneldiff.Side, _ string, rng *rand.Rand) []byte {
	v6 := rng.IntN(2) == 0
	src, dst := netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + rng.IntN(9))}), kerneldiff.Loopback4
	if v6 {
		src, dst = netip.MustParseAddr("fd00::7"), kerneldiff.Loopback6
	}
	port := uint16(assignReusePort)
	if rng.IntN(5) == 0 {
		port = uint16(rng.IntN(65536))
	}
	proto := uint8(sock.ProtoTCP)
	if rng.IntN(3) == 0 {
		proto = sock.ProtoUDP
	}
	return sockFrame(rng, proto, netip.AddrPortFrom(src, uint16(1024+rng.IntN(60000))), netip.AddrPortFrom(dst, port), rng.IntN(4) != 0, false)
}

// sockmapUpdateSetup puts an established TCP socket in src, which
// copy_sock_map copies into a sockmap and a sockhash, as the selftest's
// test_sockmap_update does.
func sockmapUpdateSetup(s *kerneldiff.Side) error {
	return s.SetSocket("src", make([]byte, 4), s.Sockets.Client4)
}

// towardSocket is a frame whose tuple finds a socket of the namespace (or
// just misses one: another port, the reverse direction): to a listener
// from anywhere on its family's loopback, or along an established
// connection in either direction.
func towardSocket(s *kerneldiff.Side, rng *rand.Rand, only4 bool, protos ...uint8) []byte {
	var cands []*kernel.Socket
	for _, k := range s.Sockets.All() {
		for _, p := range protos {
			if k.Protocol == p && (!only4 || k.Family == sock.AFInet || !k.V6Only) {
				cands = append(cands, k)
			}
		}
	}
	k := cands[rng.IntN(len(cands))]
	local, remote := k.Local, k.Remote
	if !remote.IsValid() {
		peer := kerneldiff.Loopback4
		if k.Family == sock.AFInet6 && !only4 && (k.V6Only || rng.IntN(2) == 0) {
			peer = kerneldiff.Loopback6
		}
		remote = netip.AddrPortFrom(peer, uint16(1024+rng.IntN(60000)))
	}
	if local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(remote.Addr(), local.Port())
	}
	local, remote = netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if only4 && (!local.Addr().Is4() || !remote.Addr().Is4()) {
		return nil
	}
	switch rng.IntN(6) {
	case 0:
		local = netip.AddrPortFrom(local.Addr(), local.Port()+1)
	case 1:
		local, remote = remote, local
	}
	syn := rng.IntN(2) == 0
	return sockFrame(rng, k.Protocol, remote, local, syn, syn && rng.IntN(4) != 0)
}

// vrfLookupFrame feeds vrf_socket_lookup's IPv4 TCP and UDP lookups.
func vrfLookupFrame(s *kerneldiff.Side, _ string, rng *rand.Rand) []byte {
	if rng.IntN(6) == 0 {
		return nil
	}
	return towardSocket(s, rng, true, sock.ProtoTCP, sock.ProtoUDP)
}

// syncookieFrame feeds test_tcp_check_syncookie_kern: SYNs (with an MSS
// option, as its gen_syncookie wants) and ACKs toward the listeners and
// along the connections.
func syncookieFrame(s *kerneldiff.Side, _ string, rng *rand.Rand) []byte {
	if rng.IntN(8) == 0 {
		return nil
	}
	return towardSocket(s, rng, false, sock.ProtoTCP)
}

// sockFrame is an Ethernet frame from src to dst: a TCP segment (a SYN,
// with an MSS option if mss, else an ACK) or a UDP datagram.
func sockFrame(rng *rand.Rand, proto uint8, src, dst netip.AddrPort, syn, mss bool) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var nl gopacket.NetworkLayer
	var ip gopacket.SerializableLayer
	if src.Addr().Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		l := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocol(proto), SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		nl, ip = l, l
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		l := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(proto), SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		nl, ip = l, l
	}
	payload := gopacket.Payload(make([]byte, rng.IntN(32)))
	if proto == sock.ProtoUDP {
		u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		u.SetNetworkLayerForChecksum(nl)
		return serialize(eth, ip, u, payload)
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: rng.Uint32(), Window: 65535, SYN: syn, ACK: !syn}
	if !syn {
		tcp.Ack = rng.Uint32()
	}
	if mss {
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: binary.BigEndian.AppendUint16(nil, 1460)}}
	}
	tcp.SetNetworkLayerForChecksum(nl)
	return serialize(eth, ip, tcp, payload)
}
