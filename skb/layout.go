package skb

import "encoding/binary"

// GSO types (include/linux/skbuff.h, SKB_GSO_*) the layout helpers look at.
const (
	GSOTCPv4     = 1 << 0
	GSODodgy     = 1 << 1
	GSOTCPv6     = 1 << 4
	GSOGRE       = 1 << 6
	GSOIPXIP4    = 1 << 8
	GSOIPXIP6    = 1 << 9
	GSOUDPTunnel = 1 << 10
	GSOUDPL4     = 1 << 17
	gsoTCP       = GSOTCPv4 | GSOTCPv6
	gsoByFrags   = 0xffff // GSO_BY_FRAGS

	// maxGSOLen bounds GSO packets, which the length checks of change_head
	// and adjust_room let through: the kernel's 16-bit header offsets and
	// allocations give out around 64 KiB, so growth beyond is -ENOMEM.
	maxGSOLen = 0xffff
)

// isGSOTCP is skb_is_gso_tcp.
func (p *Packet) isGSOTCP() bool { return p.GSOType&gsoTCP != 0 }

// genericPush is bpf_skb_generic_push: insert n zero bytes at off from data.
// The caller made the headroom. An off beyond the packet moves whatever
// lies past the tail along, as the kernel's memmove does.
func (p *Packet) genericPush(off, n int) {
	p.reserve(n, off+n-p.Len())
	p.data -= n
	copy(p.buf[p.data:p.data+off], p.buf[p.data+n:p.data+n+off])
	clear(p.buf[p.data+off : p.data+off+n])
}

// genericPop is bpf_skb_generic_pop: remove n bytes at off from data.
func (p *Packet) genericPop(off, n int) int64 {
	if !p.mayPull(uint64(off) + uint64(n)) {
		return errENOMEM
	}
	p.postpullRcsum(p.buf[p.data+off:p.data+off+n], 0)
	copy(p.buf[p.data+n:p.data+n+off], p.buf[p.data:p.data+off])
	p.data += n
	return 0
}

// netHdrPush is bpf_skb_net_hdr_push.
func (p *Packet) netHdrPush(off, n int) {
	transSame := p.transportSet && p.transport == p.network
	p.genericPush(off, n)
	p.mac -= n
	p.network -= n
	if transSame {
		p.transport = p.network
	}
}

// netHdrPop is bpf_skb_net_hdr_pop.
func (p *Packet) netHdrPop(off, n int) int64 {
	transSame := p.transportSet && p.transport == p.network
	if err := p.genericPop(off, n); err != 0 {
		return err
	}
	p.mac += n
	p.network += n
	if transSame {
		p.transport = p.network
	}
	return 0
}

// ChangeProto mirrors bpf_skb_change_proto: between IPv4 and IPv6 it makes
// room for the other network header (20 zero bytes more or fewer right after
// the MAC header) and sets protocol; the program writes the header. proto is
// the register value, i.e. bpf_htons(ETH_P_IPV6). Flags give -EINVAL, other
// protocol pairs -ENOTSUPP, a packet too short for a 6-to-4 change -ENOMEM.
func (p *Packet) ChangeProto(proto uint16, flags uint64) int64 {
	if flags != 0 {
		return errEINVAL
	}
	to := ntohs(proto)
	const diff = IPv6HLen - IPv4HLen
	off := p.macHeaderLen()
	switch {
	case p.Protocol == EthPIP && to == EthPIPv6:
		p.cow(diff)
		p.netHdrPush(off, diff)
		if p.isGSO() && p.GSOType&GSOTCPv4 != 0 {
			p.GSOType = p.GSOType&^GSOTCPv4 | GSOTCPv6
		}
		p.Protocol = EthPIPv6
		p.protoGSO()
	case p.Protocol == EthPIPv6 && to == EthPIP:
		if err := p.netHdrPop(off, diff); err != 0 {
			return err
		}
		if p.isGSO() && p.GSOType&GSOTCPv6 != 0 {
			p.GSOType = p.GSOType&^GSOTCPv6 | GSOTCPv4
		}
		p.Protocol = EthPIP
		p.protoGSO()
	default:
		return errENOTSUPP
	}
	p.clearHash()
	return 0
}

// protoGSO marks a GSO packet dodgy after a protocol change. The source
// read does not do this, but Linux 6.18 demonstrably sets some gso_type bit
// other than TCPv4/v6 and UDP_L4 there without touching gso_segs.
func (p *Packet) protoGSO() {
	if p.isGSO() {
		p.GSOType |= GSODodgy
	}
}

func ntohs(v uint16) uint16 { return v<<8 | v>>8 }

// ChangeHead mirrors bpf_skb_change_head: it prepends headRoom zero bytes
// that become the new MAC header (mac_header = data, mac_len recomputed);
// protocol and network header stay. Flags, a result longer than MaxLen (for
// a non-GSO packet) or a 32-bit overflow give -EINVAL.
func (p *Packet) ChangeHead(headRoom uint32, flags uint64) int64 {
	newLen := uint32(p.Len()) + headRoom
	// A head_room of 2^31 or more is -EINVAL on Linux 6.18 even for a GSO
	// packet, where the length check above does not apply (found by
	// internal/testkit/kerneldiff's helper differential).
	if flags != 0 || (!p.isGSO() && newLen > MaxLen) || newLen < uint32(p.Len()) || headRoom > 1<<31-1 {
		return errEINVAL
	}
	if newLen > maxGSOLen {
		return errENOMEM
	}
	n := int(headRoom)
	p.cow(n)
	p.data -= n
	clear(p.buf[p.data : p.data+n])
	p.mac = p.data
	p.macLen = p.network - p.mac
	return 0
}

// minLen is __bpf_skb_min_len, the shortest length change_tail may trim to.
func (p *Packet) minLen() uint32 {
	n := p.NetworkOffset()
	if p.transportSet {
		n = p.transport - p.data
	}
	if p.IPSummed == ChecksumPartial {
		n = p.csumStartOffset() + p.csumOffset + 2
	}
	return uint32(int32(n))
}

// ChangeTail mirrors bpf_skb_change_tail: it trims the packet or grows it
// with zero bytes to newLen. Flags, a length above MaxLen or one cutting into
// the headers give -EINVAL, an encapsulated packet -ENOTSUPP. A
// CHECKSUM_COMPLETE packet drops to CHECKSUM_NONE; GSO state is reset.
func (p *Packet) ChangeTail(newLen uint32, flags uint64) int64 {
	if flags != 0 || newLen > MaxLen || newLen < p.minLen() {
		return errEINVAL
	}
	if p.Encapsulation {
		return errENOTSUPP
	}
	n := int(newLen)
	if n != p.Len() {
		if p.IPSummed == ChecksumComplete {
			p.IPSummed = ChecksumNone
		}
		if n > p.Len() {
			p.reserve(0, n-p.Len())
			clear(p.buf[p.tail : p.data+n])
		}
		p.tail = p.data + n
	}
	if p.isGSO() {
		p.GSOSize, p.GSOSegs, p.GSOType = 0, 0, 0
	}
	return 0
}

// Modes and flags of bpf_skb_adjust_room (include/uapi/linux/bpf.h).
const (
	AdjRoomNet = 0 // BPF_ADJ_ROOM_NET
	AdjRoomMAC = 1 // BPF_ADJ_ROOM_MAC

	FAdjRoomFixedGSO    = 1 << 0
	FAdjRoomEncapL3IPv4 = 1 << 1
	FAdjRoomEncapL3IPv6 = 1 << 2
	FAdjRoomEncapL4GRE  = 1 << 3
	FAdjRoomEncapL4UDP  = 1 << 4
	FAdjRoomNoCsumReset = 1 << 5
	FAdjRoomEncapL2Eth  = 1 << 6
	FAdjRoomDecapL3IPv4 = 1 << 7
	FAdjRoomDecapL3IPv6 = 1 << 8

	adjRoomEncapL2Shift = 56
	adjRoomEncapL2Mask  = 0xff

	adjRoomEncapL3Mask = FAdjRoomEncapL3IPv4 | FAdjRoomEncapL3IPv6
	adjRoomDecapL3Mask = FAdjRoomDecapL3IPv4 | FAdjRoomDecapL3IPv6
	adjRoomMask        = FAdjRoomFixedGSO | adjRoomEncapL3Mask | FAdjRoomEncapL4GRE |
		FAdjRoomEncapL4UDP | FAdjRoomEncapL2Eth |
		adjRoomEncapL2Mask<<adjRoomEncapL2Shift | adjRoomDecapL3Mask
)

// FAdjRoomEncapL2 is BPF_F_ADJ_ROOM_ENCAP_L2(len): the inner MAC header
// length of an encapsulation.
func FAdjRoomEncapL2(n uint8) uint64 { return uint64(n) << adjRoomEncapL2Shift }

// netBaseLen is bpf_skb_net_base_len.
func (p *Packet) netBaseLen() uint32 {
	switch p.Protocol {
	case EthPIP:
		return IPv4HLen
	case EthPIPv6:
		return IPv6HLen
	}
	return ^uint32(0)
}

// AdjustRoom mirrors bpf_skb_adjust_room: it inserts (lenDiff > 0) or
// removes (lenDiff < 0) |lenDiff| bytes after the MAC header (AdjRoomMAC) or
// after the base network header (AdjRoomNet), inserting zeros. The
// FAdjRoomEncap* flags describe a tunnel header being pushed, the
// FAdjRoomDecap* flags the IP version left after a pop. Validation and
// return codes are the kernel's: -EINVAL for bad flags, -EFAULT for
// |lenDiff| > 0xfff, -ENOTSUPP for non-IP packets, unknown modes and lengths
// out of range, -EALREADY for a second encapsulation, -ENOMEM for a pop
// past the tail and for a push at an offset past the tail (unless
// QuirkGrowPastTail: older kernels move the bytes beyond the tail along).
// Unless FAdjRoomNoCsumReset, CHECKSUM_UNNECESSARY is reset.
func (p *Packet) AdjustRoom(lenDiff int32, mode uint32, flags uint64) int64 {
	diff := int64(lenDiff)
	shrink := diff < 0
	abs := uint32(max(diff, -diff))
	if lenDiff == -1<<31 {
		abs = 1 << 31
	}
	if flags&^(adjRoomMask|FAdjRoomNoCsumReset) != 0 {
		return errEINVAL
	}
	if abs > 0xfff {
		return errEFAULT
	}
	if p.Protocol != EthPIP && p.Protocol != EthPIPv6 {
		return errENOTSUPP
	}
	lenMin := p.netBaseLen()
	off := p.macHeaderLen()
	switch mode {
	case AdjRoomNet:
		off += int(lenMin)
	case AdjRoomMAC:
	default:
		return errENOTSUPP
	}
	if flags&adjRoomDecapL3Mask != 0 {
		if !shrink {
			return errEINVAL
		}
		switch flags & adjRoomDecapL3Mask {
		case FAdjRoomDecapL3IPv4:
			lenMin = IPv4HLen
		case FAdjRoomDecapL3IPv6:
			lenMin = IPv6HLen
		default:
			return errEINVAL
		}
	}
	lenCur := uint32(p.Len()) - uint32(int32(p.NetworkOffset()))
	if (shrink && (abs >= lenCur || lenCur-abs < lenMin)) ||
		(!shrink && uint32(p.Len())+abs > MaxLen && !p.isGSO()) {
		return errENOTSUPP
	}
	if !shrink && p.Len()+int(abs) > maxGSOLen {
		return errENOMEM
	}
	var ret int64
	if shrink {
		ret = p.netShrink(off, int(abs), flags)
	} else {
		ret = p.netGrow(off, int(abs), flags)
	}
	if ret == 0 && flags&FAdjRoomNoCsumReset == 0 {
		p.resetChecksumUnnecessary()
	}
	return ret
}

// gsoUDPCheck rejects GSO packets whose segment size cannot change.
func (p *Packet) gsoUDPCheck(flags uint64) bool {
	if p.isGSO() && !p.isGSOTCP() {
		return p.GSOType&GSOUDPL4 != 0 && flags&FAdjRoomFixedGSO != 0
	}
	return true
}

// netGrow is bpf_skb_net_grow.
func (p *Packet) netGrow(off, n int, flags uint64) int64 {
	innerMACLen := int(flags >> adjRoomEncapL2Shift & adjRoomEncapL2Mask)
	encap := flags&adjRoomEncapL3Mask != 0
	gsoType := uint32(GSODodgy)
	if !p.gsoUDPCheck(flags) {
		return errENOTSUPP
	}
	var macLen int
	if encap {
		switch {
		case flags&adjRoomEncapL3Mask == adjRoomEncapL3Mask,
			flags&FAdjRoomEncapL4GRE != 0 && flags&FAdjRoomEncapL4UDP != 0,
			flags&FAdjRoomEncapL2Eth != 0 && innerMACLen < EthHLen:
			return errEINVAL
		case p.Encapsulation:
			return errEALREADY
		case innerMACLen > n:
			return errEINVAL
		}
		macLen = p.network - p.mac
	}
	p.cow(n)
	if off > p.Len() && p.Quirks&QuirkGrowPastTail == 0 {
		return errENOMEM
	}
	p.netHdrPush(off, n)
	if encap {
		// The inner header offsets the kernel records here are not
		// visible to programs and are not modelled.
		if flags&FAdjRoomEncapL2Eth != 0 {
			p.InnerProtocol = EthPTEB
		} else {
			p.InnerProtocol = p.Protocol
		}
		p.Encapsulation = true
		p.network = p.data + macLen
		switch {
		case flags&FAdjRoomEncapL4UDP != 0:
			gsoType |= GSOUDPTunnel
		case flags&FAdjRoomEncapL4GRE != 0:
			gsoType |= GSOGRE
		case flags&FAdjRoomEncapL3IPv6 != 0:
			gsoType |= GSOIPXIP6
		case flags&FAdjRoomEncapL3IPv4 != 0:
			gsoType |= GSOIPXIP4
		}
		if flags&(FAdjRoomEncapL4GRE|FAdjRoomEncapL4UDP) != 0 {
			nhLen := IPv4HLen
			if flags&FAdjRoomEncapL3IPv6 != 0 {
				nhLen = IPv6HLen
			}
			p.transport, p.transportSet = p.data+macLen+nhLen, true
		}
		p.matchOuterIP(flags&FAdjRoomEncapL3IPv6 != 0, flags&FAdjRoomEncapL3IPv4 != 0)
	}
	p.gsoHeaderChange(-n, flags, gsoType)
	return 0
}

// matchOuterIP sets protocol to the IP version a helper's flags name.
func (p *Packet) matchOuterIP(v6, v4 bool) {
	if p.Protocol == EthPIP && v6 {
		p.Protocol = EthPIPv6
	} else if p.Protocol == EthPIPv6 && v4 {
		p.Protocol = EthPIP
	}
}

// gsoHeaderChange is adjust_room's GSO bookkeeping after headers grew or
// shrank by n bytes: the segment size follows unless FIXED_GSO, the
// headers must be checked again and gso_segs recomputed.
func (p *Packet) gsoHeaderChange(n int, flags uint64, gsoType uint32) {
	if !p.isGSO() {
		return
	}
	if flags&FAdjRoomFixedGSO == 0 && p.GSOSize != gsoByFrags {
		p.GSOSize += uint16(n)
	}
	p.GSOType |= gsoType
	p.GSOSegs = 0
}

// netShrink is bpf_skb_net_shrink.
func (p *Packet) netShrink(off, n int, flags uint64) int64 {
	if flags&^(FAdjRoomFixedGSO|adjRoomDecapL3Mask|FAdjRoomNoCsumReset) != 0 {
		return errEINVAL
	}
	if !p.gsoUDPCheck(flags) {
		return errENOTSUPP
	}
	if err := p.netHdrPop(off, n); err != 0 {
		return err
	}
	p.matchOuterIP(flags&FAdjRoomDecapL3IPv6 != 0, flags&FAdjRoomDecapL3IPv4 != 0)
	p.gsoHeaderChange(n, flags, GSODodgy)
	return 0
}

func ethTypeVLAN(t uint16) bool { return t == EthP8021Q || t == EthP8021AD }

// pushMACRcsum and pullMACRcsum are bpf_push_mac_rcsum and
// bpf_pull_mac_rcsum: at ingress a CHECKSUM_COMPLETE sum excludes the MAC
// header, so VLAN helpers fold it in around their work.
func (p *Packet) pushMACRcsum() {
	if p.AtIngress {
		p.postpushRcsum(p.buf[p.mac:p.mac+p.macLen], 0)
	}
}

func (p *Packet) pullMACRcsum() {
	if p.AtIngress {
		p.postpullRcsum(p.buf[p.mac:p.mac+p.macLen], 0)
	}
}

// VlanPush mirrors bpf_skb_vlan_push: the tag goes into metadata (the
// kernel's hardware-accelerated tag, whatever the device); a tag already
// there is first written into the packet after the MAC addresses. vlanProto
// is the register value (bpf_htons(ETH_P_8021Q) or ETH_P_8021AD; anything
// else means 802.1Q).
func (p *Packet) VlanPush(vlanProto uint16, tci uint16) int64 {
	proto := ntohs(vlanProto)
	if proto != EthP8021Q && proto != EthP8021AD {
		proto = EthP8021Q
	}
	p.pushMACRcsum()
	ret := p.vlanPush(proto, tci)
	p.pullMACRcsum()
	p.macLen = p.network - p.mac
	return ret
}

// vlanPush is skb_vlan_push.
func (p *Packet) vlanPush(proto, tci uint16) int64 {
	if p.VlanPresent {
		if p.data != p.mac {
			return errEINVAL
		}
		// __vlan_insert_tag: open four bytes after the MAC addresses.
		p.cow(VlanHLen)
		p.data -= VlanHLen
		copy(p.buf[p.data:p.data+macAddrsN], p.buf[p.data+VlanHLen:])
		p.mac -= VlanHLen
		binary.BigEndian.PutUint16(p.buf[p.data+macAddrsN:], p.VlanProto)
		binary.BigEndian.PutUint16(p.buf[p.data+EthHLen:], p.VlanTCI)
		p.Protocol = p.VlanProto
		p.network -= VlanHLen
		p.postpushRcsum(p.buf[p.data+macAddrsN:p.data+macAddrsN+VlanHLen], 0)
	}
	p.VlanPresent, p.VlanProto, p.VlanTCI = true, proto, tci
	return 0
}

// VlanPop mirrors bpf_skb_vlan_pop: it drops the metadata tag, or else the
// outermost tag in the packet, then moves a next in-packet tag into
// metadata. A packet too short to hold the tag gives -ENOMEM.
func (p *Packet) VlanPop() int64 {
	p.pushMACRcsum()
	ret := p.vlanPop()
	p.pullMACRcsum()
	return ret
}

// vlanPop is skb_vlan_pop.
func (p *Packet) vlanPop() int64 {
	if p.VlanPresent {
		p.VlanPresent, p.VlanProto, p.VlanTCI = false, 0, 0
	} else {
		if !ethTypeVLAN(p.Protocol) {
			return 0
		}
		if _, err := p.vlanPopPayload(); err != 0 {
			return err
		}
	}
	if !ethTypeVLAN(p.Protocol) {
		return 0
	}
	proto := p.Protocol
	tci, err := p.vlanPopPayload()
	if err != 0 {
		return err
	}
	p.VlanPresent, p.VlanProto, p.VlanTCI = true, proto, tci
	return 0
}

// vlanPopPayload is __skb_vlan_pop: remove the tag after the MAC addresses.
func (p *Packet) vlanPopPayload() (uint16, int64) {
	if p.data != p.mac {
		return 0, errEINVAL
	}
	if !p.mayPull(EthHLen + VlanHLen) {
		return 0, errENOMEM
	}
	p.postpullRcsum(p.buf[p.data+macAddrsN:p.data+macAddrsN+VlanHLen], 0)
	tci := binary.BigEndian.Uint16(p.buf[p.data+EthHLen:])
	copy(p.buf[p.data+VlanHLen:p.data+VlanHLen+macAddrsN], p.buf[p.data:])
	p.data += VlanHLen
	// vlan_set_encap_proto reads the encapsulated type and, for an 802.3
	// length, the two bytes after the tag, which may lie past the tail.
	proto := binary.BigEndian.Uint16(p.buf[p.data+macAddrsN:])
	switch {
	case proto >= 0x0600:
		p.Protocol = proto
	case p.data+EthHLen+2 <= len(p.buf) && p.buf[p.data+EthHLen] == 0xff && p.buf[p.data+EthHLen+1] == 0xff:
		p.Protocol = EthP8023
	default:
		p.Protocol = EthP8022
	}
	p.mac += VlanHLen
	if p.NetworkOffset() < EthHLen {
		p.network = p.data + EthHLen
	}
	p.macLen = p.network - p.mac
	return tci, 0
}
