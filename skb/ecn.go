package skb

import "encoding/binary"

// vlanMaxDepth is VLAN_MAX_DEPTH.
const vlanMaxDepth = 8

// vlanGetProtocol is vlan_get_protocol: the ethertype under any in-packet
// VLAN tags, 0 if they cannot be parsed.
func (p *Packet) vlanGetProtocol() uint16 {
	t := p.Protocol
	if !ethTypeVLAN(t) {
		return t
	}
	depth := p.macLen
	if depth != 0 {
		if depth < VlanHLen {
			return 0
		}
		depth -= VlanHLen
	} else {
		depth = EthHLen
	}
	d := p.Data()
	for parse := vlanMaxDepth; ; {
		parse--
		if depth < 0 || depth+VlanHLen > len(d) || parse == 0 {
			return 0
		}
		t = binary.BigEndian.Uint16(d[depth+2:])
		depth += VlanHLen
		if !ethTypeVLAN(t) {
			return t
		}
	}
}

// EcnSetCE mirrors bpf_skb_ecn_set_ce: it marks an ECN-capable IPv4 or IPv6
// packet Congestion Experienced (fixing the IPv4 header checksum) and
// returns 1, or returns 0 for a packet that is not ECN-capable, not IP or
// too short. The header is the one at the network header offset.
func (p *Packet) EcnSetCE() int64 {
	var hlen int
	switch p.vlanGetProtocol() {
	case EthPIP:
		hlen = IPv4HLen
	case EthPIPv6:
		hlen = IPv6HLen
	default:
		return 0
	}
	if p.Len() < hlen || p.network < 0 || p.network+hlen > p.tail {
		return 0
	}
	h := p.buf[p.network : p.network+hlen]
	if hlen == IPv4HLen {
		ecn := (uint32(h[1]) + 1) & 3
		if ecn&2 == 0 {
			if ecn == 0 {
				return 1
			}
			return 0
		}
		// check += htons(0xFFFB) + htons(ecn), in the native 16-bit view.
		add := uint16(0xfbff) + uint16(ecn<<8)
		binary.LittleEndian.PutUint16(h[10:], csum16Add(binary.LittleEndian.Uint16(h[10:]), add))
		h[1] |= 3
		return 1
	}
	if (binary.BigEndian.Uint16(h)>>4)&3 == 0 { // INET_ECN_is_not_ect
		return 0
	}
	from := binary.LittleEndian.Uint32(h)
	h[1] |= 0x30
	to := binary.LittleEndian.Uint32(h)
	if p.IPSummed == ChecksumComplete {
		p.Csum = csumAdd(csumSub(p.Csum, from), to)
	}
	return 1
}
