package chaindiff

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/tcxgo/tcx"
)

// Device is one end of a veth pair in a topology.
type Device struct {
	Name    string
	NS      int // which namespace (0 or 1)
	Ifindex int // expected ifindex in its namespace
	Addr    [6]byte
}

// Topology is a set of veth pairs in one or two namespaces. Pairs[i] joins
// Devs[Pairs[i][0]] (created with its peer) and Devs[Pairs[i][1]].
type Topology struct {
	Name  string
	NS    int // number of namespaces
	Devs  []Device
	Pairs [][2]int
}

func mac(last byte) [6]byte { return [6]byte{0x02, 0xc5, 0, 0, 0, last} }

// Topologies: a veth pair A <-> B in one namespace (lo 1, B 2, A 3); and
// A <-> B across two namespaces (A 2 in the first, B 2 in the second) plus
// C <-> D in the first (D 3, C 4), so redirects can cross into the other
// namespace by the pair (scrubbed) or by bpf_redirect_peer.
func Topologies() []Topology {
	return []Topology{
		{Name: "one netns", NS: 1, Devs: []Device{
			{"A", 0, 3, mac(0xa)}, {"B", 0, 2, mac(0xb)},
		}, Pairs: [][2]int{{0, 1}}},
		{Name: "two netns", NS: 2, Devs: []Device{
			{"A", 0, 2, mac(0xa)}, {"B", 1, 2, mac(0xb)}, {"C", 0, 4, mac(0xc)}, {"D", 0, 3, mac(0xd)},
		}, Pairs: [][2]int{{0, 1}, {2, 3}}},
	}
}

// Targets are the ifindexes generated redirects aim at: loopback, the
// veth ends of either topology, and one that exists nowhere.
var Targets = []uint32{1, 2, 3, 4, 99}

// Hook is a device's hook in a topology.
type Hook struct {
	Dev int // index into Topology.Devs
	Dir tcx.Direction
}

// Chain is the programs (variant indexes) attached to one hook, in order.
type Chain struct {
	Hook  Hook
	Progs []int
}

// Config is one experiment: a topology with chains on some of its hooks
// and maybe a classic tc filter (clsact, one direct-action cls_bpf filter
// with classid 0) on one hook, which runs after that hook's tcx chain
// returns TCX_NEXT (or on a hook without a chain).
type Config struct {
	Topo    int
	Chains  []Chain
	Classic *Chain // Progs holds one variant
}

// NewConfig picks 2..4 hooks of topology topo and a chain of 2..8
// distinct variants for each. A variant that returns TC_ACT_REDIRECT
// without a helper call (VerdictFire) only follows a setter in its chain:
// without one the kernel's redirect target is undefined.
func NewConfig(rng *rand.Rand, topo int, t Topology, vs []Variant) Config {
	var hooks []Hook
	for d := range t.Devs {
		hooks = append(hooks, Hook{d, tcx.Ingress}, Hook{d, tcx.Egress})
	}
	rng.Shuffle(len(hooks), func(i, j int) { hooks[i], hooks[j] = hooks[j], hooks[i] })
	c := Config{Topo: topo}
	for _, h := range hooks[:2+rng.IntN(min(3, len(hooks)-1))] {
		n := 2 + rng.IntN(7)
		var progs []int
		setter := false
		for _, i := range rng.Perm(len(vs)) {
			if len(progs) == n {
				break
			}
			switch vs[i].Verdict {
			case VerdictFire:
				if !setter {
					continue
				}
			case VerdictSetter:
				setter = true
			}
			progs = append(progs, i)
		}
		c.Chains = append(c.Chains, Chain{Hook: h, Progs: progs})
	}
	if rng.IntN(3) == 0 {
		for {
			v := rng.IntN(len(vs))
			if vs[v].Verdict != VerdictFire && vs[v].Verdict != VerdictSetter {
				c.Classic = &Chain{Hook: hooks[rng.IntN(len(hooks))], Progs: []int{v}}
				break
			}
		}
	}
	return c
}

// Frame is one test frame and the device it is sent from.
type Frame struct {
	Dev   int // index into Topology.Devs
	Bytes []byte
	Seq   uint32 // 24 bits, in the tail
}

// Frame tail: slot (u32 little endian), TTL (redirects left), sequence
// (24 bits big endian).
const tailLen = 8

// InitialTTL is how many redirects a frame may take.
const InitialTTL = 3

// Ethertypes of generated frames.
const (
	etherTest = 0x88b5 // IEEE local experimental
	etherIPv4 = 0x0800
	etherVLAN = 0x8100
)

// NewFrame builds a random frame from a device of t: 60..300 bytes,
// plain (ethertype 0x88b5), 802.1Q-tagged or IPv4/UDP, to one of the
// topology's addresses, broadcast, multicast or another host.
func NewFrame(rng *rand.Rand, t Topology, seq uint32, slot int) Frame {
	f := Frame{Dev: rng.IntN(len(t.Devs)), Seq: seq & 0xffffff}
	n := 60 + rng.IntN(241)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	switch rng.IntN(5) {
	case 0:
		copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	case 1:
		copy(b, []byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01})
	case 2:
		b[0] &^= 1 // some other host
	default:
		a := t.Devs[rng.IntN(len(t.Devs))].Addr
		copy(b, a[:])
	}
	src := t.Devs[f.Dev].Addr
	copy(b[6:], src[:])
	be := binary.BigEndian
	switch rng.IntN(4) {
	case 0:
		be.PutUint16(b[12:], etherVLAN)
		be.PutUint16(b[14:], uint16(1+rng.IntN(0xffe))|uint16(rng.IntN(8))<<13)
		be.PutUint16(b[16:], etherTest)
	case 1:
		be.PutUint16(b[12:], etherIPv4)
		ip := b[14:34]
		ip[0], ip[1] = 0x45, byte(rng.IntN(4)) // ECN bits random
		be.PutUint16(ip[2:], uint16(n-14))
		be.PutUint16(ip[6:], 0x4000)
		ip[8], ip[9] = 64, 17
		copy(ip[12:], []byte{192, 0, 2, 1})
		copy(ip[16:], []byte{198, 51, 100, byte(rng.IntN(256))})
		ip[10], ip[11] = 0, 0
		be.PutUint16(ip[10:], ipChecksum(ip))
		be.PutUint16(b[38:], uint16(n-34)) // UDP length
		be.PutUint16(b[40:], 0)            // no UDP checksum
	default:
		be.PutUint16(b[12:], etherTest)
	}
	tail := b[n-tailLen:]
	binary.LittleEndian.PutUint32(tail, uint32(slot))
	tail[4] = InitialTTL
	tail[5], tail[6], tail[7] = byte(f.Seq>>16), byte(f.Seq>>8), byte(f.Seq)
	f.Bytes = b
	return f
}

// FrameSeq reads the sequence number from a frame's tail.
func FrameSeq(b []byte) (uint32, bool) {
	if len(b) < tailLen {
		return 0, false
	}
	t := b[len(b)-3:]
	return uint32(t[0])<<16 | uint32(t[1])<<8 | uint32(t[2]), true
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
