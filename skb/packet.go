package skb

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Packet types, sk_buff.pkt_type (include/uapi/linux/if_packet.h).
const (
	PacketHost      = 0
	PacketBroadcast = 1
	PacketMulticast = 2
	PacketOtherHost = 3
	PacketOutgoing  = 4
	PacketLoopback  = 5
)

// Ethertypes the helpers interpret (include/uapi/linux/if_ether.h).
const (
	EthPIP     = 0x0800
	EthPIPv6   = 0x86dd
	EthP8021Q  = 0x8100
	EthP8021AD = 0x88a8
	EthPTEB    = 0x6558
	EthP8023   = 0x0001
	EthP8022   = 0x0004
)

// Sizes from the kernel's headers and its x86-64 build.
const (
	EthHLen   = 14 // ETH_HLEN
	VlanHLen  = 4  // VLAN_HLEN
	IPv4HLen  = 20 // sizeof(struct iphdr)
	IPv6HLen  = 40 // sizeof(struct ipv6hdr)
	ethTLen   = 2  // ETH_TLEN
	macAddrsN = 12 // 2 * ETH_ALEN

	// MaxLen is BPF_SKB_MAX_LEN, SKB_MAX_ALLOC on x86-64 with 4 KiB pages
	// ((PAGE_SIZE << 2) - SKB_DATA_ALIGN(sizeof(struct skb_shared_info))):
	// the longest packet change_tail, change_head and adjust_room may create.
	MaxLen = 16064

	// MaxFrame is the longest frame Reset accepts.
	MaxFrame = 65535

	// DefaultHeadroom and DefaultTailroom are the spare bytes Reset keeps on
	// each side of the frame, so that VLAN pushes, NAT64, tunnel encaps and
	// small tail growth never reallocate.
	DefaultHeadroom = 256
	DefaultTailroom = 256
)

// CsumState is sk_buff.ip_summed.
type CsumState uint8

const (
	ChecksumNone        CsumState = 0 // CHECKSUM_NONE
	ChecksumUnnecessary CsumState = 1 // CHECKSUM_UNNECESSARY
	ChecksumComplete    CsumState = 2 // CHECKSUM_COMPLETE
	ChecksumPartial     CsumState = 3 // CHECKSUM_PARTIAL
)

// Device is the net_device a packet arrives on, as far as eth_type_trans and
// the tc context look at it.
type Device struct {
	Ifindex   uint32
	Addr      [6]byte // dev->dev_addr
	Broadcast [6]byte // dev->broadcast
	// MTU is dev->mtu; 0 means ETH_DATA_LEN (1500), an Ethernet device's
	// default. bpf_check_mtu reads it.
	MTU uint32
}

// LoopbackMTU is the loopback device's MTU (64 KiB since Linux 4.17).
const LoopbackMTU = 65536

// Loopback returns the loopback device of a network namespace, where
// BPF_PROG_TEST_RUN builds its skb: ifindex 1, all-zero addresses (so a
// frame to ff:ff:ff:ff:ff:ff is PACKET_MULTICAST, not PACKET_BROADCAST) and
// a 64 KiB MTU.
func Loopback() Device { return Device{Ifindex: 1, MTU: LoopbackMTU} }

// mtu is dev->mtu.
func (d *Device) mtu() uint32 {
	if d.MTU == 0 {
		return 1500
	}
	return d.MTU
}

// Packet is one sk_buff as a tc program sees it: a linear buffer with head-
// and tailroom plus the metadata fields behind struct __sk_buff and the skb
// helpers. The exported fields are the sk_buff fields of the same meaning
// (ethertypes in host byte order); layout lives behind methods because
// helpers move it. Build one with New or Reset; a Packet is not safe for
// concurrent use.
//
// Each helper method mirrors one BPF helper. It takes the arguments as the
// kernel function receives them (the program's registers cut to the C
// parameter types; a __be16 argument such as a protocol is the value the
// program passes, bpf_htons(ETH_P_IPV6) = 0xdd86 on x86) and memory
// arguments as slices, and returns what the helper returns: 0, a value or
// a negative Linux errno (Linux's numbers on every host OS), including the
// kernel-internal -ENOTSUPP (-524). Go API errors (Reset, ResetTestRun)
// wrap the host's syscall.Errno instead. After
// a helper that changes the layout (stores, csum replaces, change_*,
// adjust_room, vlan_*, pull_data, clone_redirect) a caller must take Data
// and the context pointers afresh, as the kernel invalidates packet
// pointers there.
type Packet struct {
	buf []byte
	// Offsets into buf: data..tail is the packet, the headers are where the
	// kernel's mac_header, network_header and transport_header point.
	data, tail              int
	mac, network, transport int
	transportSet            bool
	macLen                  int // sk_buff.mac_len
	// kHead is where the equivalent kernel skb's head would be, so that
	// data-kHead is its skb_headroom; see cow.
	kHead      int
	csumStart  int // CHECKSUM_PARTIAL: csum_start as a buf offset
	csumOffset int // CHECKSUM_PARTIAL: csum_offset

	PktType        uint8  // pkt_type
	Mark           uint32 // mark
	Priority       uint32 // priority
	QueueMapping   uint16 // queue_mapping
	Protocol       uint16 // protocol, host byte order
	VlanPresent    bool   // a hardware-accelerated VLAN tag is held in metadata
	VlanTCI        uint16 // vlan_tci
	VlanProto      uint16 // vlan_proto, host byte order
	IngressIfindex uint32 // skb_iif
	Ifindex        uint32 // skb->dev->ifindex
	TCIndex        uint16 // tc_index
	CB             [20]byte
	Hash           uint32 // hash
	SWHash         bool   // sw_hash
	L4Hash         bool   // l4_hash
	TCClassid      uint16 // qdisc_skb_cb.tc_classid
	NapiID         uint32 // napi_id
	Tstamp         uint64 // tstamp
	TstampType     uint8  // tstamp_type
	WireLen        uint32 // qdisc_skb_cb.pkt_len, __sk_buff.wire_len
	GSOSegs        uint16 // skb_shinfo()->gso_segs
	GSOSize        uint16 // skb_shinfo()->gso_size
	GSOType        uint32 // skb_shinfo()->gso_type
	HWTstamp       uint64 // skb_shinfo()->hwtstamps.hwtstamp
	IPSummed       CsumState
	Csum           uint32 // csum, meaningful with ChecksumComplete
	ChecksumLevel  uint8  // csum_level, meaningful with ChecksumUnnecessary
	Encapsulation  bool   // encapsulation
	InnerProtocol  uint16 // inner_protocol, host byte order
	// AtIngress is tc_at_ingress: the packet runs on a tc ingress hook. It
	// decides whether VLAN helpers fix up a CHECKSUM_COMPLETE sum for the MAC
	// header (bpf_push_mac_rcsum). BPF_PROG_TEST_RUN leaves it false.
	AtIngress bool
	// Sock is the cookie of the socket bpf_sk_assign gave the packet
	// (skb->sk with the sock_pfree destructor), 0 for none: the socket
	// the receive path delivers it to.
	Sock uint64
	// HashSeed keys GetHashRecalc's flow hash (the kernel's hashrnd).
	// Reset keeps it.
	HashSeed uint32

	// Quirks selects the behaviours of older kernels where the helpers
	// changed between releases (QuirksFor); zero follows the newest kernel
	// the model was compared with. Reset keeps it.
	Quirks Quirks

	// OnClone, if set, is called by CloneRedirect with the packet as it is
	// at the time of the call; its result becomes the helper's return value.
	// Reset keeps it.
	OnClone func(p *Packet, ifindex uint32, flags uint64) int64

	tun        tunnelState // the metadata dst's tunnel info (skb_tunnel_info)
	ctxGSOSize uint32      // test_run echoes ctx_in's gso_size in ctx_out
	redir      uint64      // the pending redirect (RedirectWord)
	nexthop    [20]byte    // its bpf_redir_neigh, with redirectNexthopBit
	clones     [maxClones]CloneEvent
	nclones    int
	dropped    int
}

// New returns a packet holding a copy of frame as received on dev; see Reset.
func New(frame []byte, dev Device) (*Packet, error) {
	p := &Packet{}
	if err := p.Reset(frame, dev); err != nil {
		return nil, err
	}
	return p, nil
}

// Reset makes p a fresh packet holding a copy of frame as received on dev,
// reusing p's buffer: no allocation once the buffer has grown to the largest
// frame plus DefaultHeadroom and DefaultTailroom. It builds the skb the way
// BPF_PROG_TEST_RUN does for SCHED_CLS with an all-zero ctx_in: eth_type_trans
// sets protocol and pkt_type, the network header follows the Ethernet header,
// data points back at the MAC header, no transport header, mac_len 0,
// CHECKSUM_NONE, wire_len = len. Frames shorter than ETH_HLEN or longer than
// MaxFrame fail with EINVAL; use ResetTestRun for test_run's exact limits.
func (p *Packet) Reset(frame []byte, dev Device) error {
	if len(frame) < EthHLen || len(frame) > MaxFrame {
		return fmt.Errorf("reset: frame of %d bytes: %w", len(frame), syscall.EINVAL)
	}
	p.reset(frame, dev)
	p.WireLen = uint32(len(frame))
	return nil
}

func (p *Packet) reset(frame []byte, dev Device) {
	need := DefaultHeadroom + len(frame) + DefaultTailroom
	if cap(p.buf) < need {
		p.buf = make([]byte, need)
	}
	p.buf = p.buf[:cap(p.buf)]
	*p = Packet{buf: p.buf, OnClone: p.OnClone, HashSeed: p.HashSeed, Quirks: p.Quirks}

	p.data = DefaultHeadroom
	p.tail = p.data + copy(p.buf[p.data:], frame)
	p.mac = p.data
	p.network = p.data + EthHLen
	p.kHead = p.data - kernelHeadroom
	p.Ifindex = dev.Ifindex
	p.PktType, p.Protocol = ethTypeTrans(frame, &dev)
	// test_run's buffer is zeroed past the frame, and some helpers peek
	// there (vlan_set_encap_proto, bpf_skb_generic_push).
	clear(p.buf[p.tail : p.tail+DefaultTailroom])
}

// ethTypeTrans is eth_type_trans for a device without DSA tagging.
func ethTypeTrans(frame []byte, dev *Device) (pktType uint8, proto uint16) {
	dst := frame[0:6]
	if [6]byte(dst) != dev.Addr {
		switch {
		case dst[0]&1 == 0:
			pktType = PacketOtherHost
		case [6]byte(dst) == dev.Broadcast:
			pktType = PacketBroadcast
		default:
			pktType = PacketMulticast
		}
	}
	proto = binary.BigEndian.Uint16(frame[12:])
	if proto >= 0x0600 { // eth_proto_is_802_3
		return pktType, proto
	}
	// Novell raw IPX over 802.3 starts its payload with 0xFFFF.
	if len(frame) >= EthHLen+2 && frame[14] == 0xff && frame[15] == 0xff {
		return pktType, EthP8023
	}
	return pktType, EthP8022
}

// Data returns the packet bytes, skb->data up to the tail. The slice aliases
// the packet and is invalidated by any helper that changes the layout.
func (p *Packet) Data() []byte { return p.buf[p.data:p.tail:p.tail] }

// Len is skb->len.
func (p *Packet) Len() int { return p.tail - p.data }

// Headroom is skb_headroom: bytes available before data without reallocating.
func (p *Packet) Headroom() int { return p.data }

// Tailroom is skb_tailroom.
func (p *Packet) Tailroom() int { return len(p.buf) - p.tail }

// MACOffset is skb_mac_offset: the MAC header relative to data.
func (p *Packet) MACOffset() int { return p.mac - p.data }

// NetworkOffset is skb_network_offset: the network header relative to data.
func (p *Packet) NetworkOffset() int { return p.network - p.data }

// TransportOffset is skb_transport_offset, or -1 while no transport header
// is set.
func (p *Packet) TransportOffset() int {
	if !p.transportSet {
		return -1
	}
	return p.transport - p.data
}

// MACLen is sk_buff.mac_len.
func (p *Packet) MACLen() int { return p.macLen }

// macHeaderLen is skb_mac_header_len: network_header - mac_header.
func (p *Packet) macHeaderLen() int { return p.network - p.mac }

// Pointers returns what bpf_compute_data_pointers publishes when the
// packet's bytes (Data) are mapped at virtual address base: data_meta, data
// and data_end. There is never XDP metadata, so data_meta equals data.
func (p *Packet) Pointers(base uint32) (meta, data, end uint32) {
	return base, base, base + uint32(p.Len())
}

// reserve makes sure head bytes of headroom and tail bytes of tailroom exist,
// moving the packet into a larger buffer if needed (the kernel can fail with
// ENOMEM here, this cannot).
func (p *Packet) reserve(head, tail int) {
	if p.data >= head && len(p.buf)-p.tail >= tail {
		return
	}
	newHead := max(head, DefaultHeadroom)
	newTail := max(tail, DefaultTailroom)
	nb := make([]byte, newHead+p.Len()+newTail)
	copy(nb[newHead:], p.buf[p.data:p.tail])
	d := newHead - p.data
	p.buf = nb
	p.data += d
	p.tail += d
	p.mac += d
	p.network += d
	p.transport += d
	p.csumStart += d
	p.kHead += d
}

// kernelHeadroom is the headroom of test_run's skb when the program starts
// (NET_SKB_PAD + NET_IP_ALIGN on x86-64); netSKBPad is the alignment of
// headroom growth.
const (
	kernelHeadroom = 64
	netSKBPad      = 64
)

// cow is skb_cow/skb_cow_head: make sure h bytes of headroom exist. It also
// tracks when the kernel would reallocate the head (pskb_expand_head grows
// the headroom by a multiple of NET_SKB_PAD): the reallocation shifts every
// header offset, an unset transport header (~0) included, which then
// becomes set one byte before the old head. change_tail's lower bound sees
// that, so it is reproduced.
func (p *Packet) cow(h int) {
	if headroom := p.data - p.kHead; h > headroom {
		nhead := (h - headroom + netSKBPad - 1) &^ (netSKBPad - 1)
		if !p.transportSet {
			p.transport, p.transportSet = p.kHead-1, true
		}
		p.kHead -= nhead
	}
	p.reserve(h, 0)
}

// SetChecksumPartial puts the packet into CHECKSUM_PARTIAL with csum_start
// at start bytes after data and csum_offset off, as a packet handed over
// for transmit offload would be.
func (p *Packet) SetChecksumPartial(start, off int) {
	p.IPSummed = ChecksumPartial
	p.csumStart = p.data + start
	p.csumOffset = off
}

// csumStartOffset is skb_checksum_start_offset.
func (p *Packet) csumStartOffset() int { return p.csumStart - p.data }

// isGSO is skb_is_gso.
func (p *Packet) isGSO() bool { return p.GSOSize != 0 }
