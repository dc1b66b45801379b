package skb

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// What the kernel does to an sk_buff between two tc hooks. A frame keeps
// one Packet for its whole trip through a runtime: the programs of a chain
// run on it one after another (tcx_run resets nothing between them) and
// the functions here change it the way the kernel's code between the hooks
// does, field by field (Linux 6.12..6.18, net/core/dev.c, net/core/filter.c,
// drivers/net/veth.c, net/core/skbuff.c, net/ethernet/eth.c). Anything not
// named here survives a hop: cb[], tc_classid, tc_index, hash and its
// sw/l4 bits, queue_mapping until PickTx, the out-of-band VLAN tag (veth
// offloads VLAN insertion, so a tag never goes back into the frame),
// checksum state, gso fields and the frame bytes; tunnel metadata until
// Scrub. The kernel's data pointer moves around
// the MAC header between hooks; here data stays at the MAC header, where
// every tc program finds it (tcx_run and cls_bpf push mac_len first).

// ResetXmit makes p the sk_buff an AF_PACKET SOCK_RAW socket with default
// options (sk_mark 0, sk_priority 0, no SO_TXTIME), bound to the frame's
// ethertype, hands to dev_queue_xmit on ifindex (packet_snd,
// packet_parse_headers): a copy of frame, protocol the frame's ethertype
// (the socket's protocol), pkt_type PACKET_HOST, the network header after
// the Ethernet header and any VLAN tags in the frame, mac_len 0, every
// other field zero. Xmit then does the rest of the way to the egress hook.
// The transport header is left unset: packet_snd sets it only where the
// flow dissector parses the frame (IPv4/IPv6), which no program can read.
// Frames shorter than ETH_HLEN or longer than MaxFrame fail with EINVAL.
func (p *Packet) ResetXmit(frame []byte, ifindex uint32) error {
	if len(frame) < EthHLen || len(frame) > MaxFrame {
		return fmt.Errorf("reset for transmit: frame of %d bytes: %w", len(frame), syscall.EINVAL)
	}
	p.reset(frame, Device{Ifindex: ifindex})
	p.PktType = PacketHost
	p.Protocol = binary.BigEndian.Uint16(frame[12:])
	if ethTypeVLAN(p.Protocol) {
		// vlan_get_protocol_and_depth: the network header goes after the
		// last tag that fits.
		depth := EthHLen
		for t := p.Protocol; ethTypeVLAN(t) && depth+VlanHLen <= len(frame); depth += VlanHLen {
			t = binary.BigEndian.Uint16(frame[depth+2:])
		}
		p.network = p.data + depth
	}
	p.WireLen = 0
	return nil
}

// Xmit is __dev_queue_xmit up to the egress hook of dev (sch_handle_egress):
// skb->dev is dev, the MAC header is reset to data, qdisc_skb_cb's pkt_len
// (wire_len) is the length, tc_at_ingress is cleared. The pending redirect
// starts empty: the kernel's bpf_redirect_info of a fresh bpf_net_context
// is not initialised, so a chain that returns TC_ACT_REDIRECT without a
// redirect helper call sends the packet to an undefined target there.
func (p *Packet) Xmit(ifindex uint32) {
	p.Ifindex = ifindex
	p.mac = p.data
	p.WireLen = uint32(p.Len())
	p.AtIngress = false
	p.redir = 0
}

// RedirectXmit is what __bpf_tx_skb does before dev_queue_xmit when a
// program redirects to ifindex's egress: the delivery time is cleared
// unless it is a mono or TAI clock (skb_clear_tstamp); then Xmit.
func (p *Packet) RedirectXmit(ifindex uint32) {
	p.ClearTstamp()
	p.Xmit(ifindex)
}

// PickTx is netdev_core_pick_tx on a device with one real transmit queue
// (veth, loopback and dummy devices as created by default), after the
// egress hook let the packet through: queue_mapping becomes 0, whatever a
// program wrote there.
func (p *Packet) PickTx() { p.QueueMapping = 0 }

// LoopbackXmit is loopback_xmit: the delivery time is cleared unless mono
// or TAI (skb_clear_tstamp), eth_type_trans on the loopback device, then
// the receive path (Receive, whose result it returns). Nothing is
// scrubbed: mark and priority stay.
func (p *Packet) LoopbackXmit(lo Device) bool {
	p.ClearTstamp()
	p.EthTypeTrans(lo)
	return p.Receive()
}

// ClearTstamp is skb_clear_tstamp.
func (p *Packet) ClearTstamp() {
	if p.TstampType == ClockRealtime {
		p.Tstamp = 0
	}
}

// Scrub is skb_scrub_packet: pkt_type becomes PACKET_HOST, skb_iif 0 and
// the dst goes, with any tunnel metadata (skb_dst_drop); across network
// namespaces (xnet) the mark goes too and the delivery time is cleared
// (skb_clear_tstamp).
func (p *Packet) Scrub(xnet bool) {
	p.PktType = PacketHost
	p.IngressIfindex = 0
	p.tun.set, p.tun.md = false, false
	if xnet {
		p.Mark = 0
		p.ClearTstamp()
	}
}

// Forward is __dev_forward_skb2 followed by the receive path on dev: what
// veth_xmit does with a packet for its peer and what bpf_redirect with
// BPF_F_INGRESS does (dev_forward_skb_nomtu): Scrub(xnet), priority 0,
// eth_type_trans on dev (skb->dev, pkt_type and protocol from the frame),
// then Receive. xnet says dev is in another network namespace than the
// device the packet leaves. It returns false where the receive path drops
// the packet (see ReceiveRound). Not modelled: the MTU check
// (is_skb_forwardable) and devices that are down.
func (p *Packet) Forward(dev Device, xnet bool) bool {
	p.Scrub(xnet)
	p.Sock = 0 // the socket was for this namespace's receive path
	p.Priority = 0
	p.EthTypeTrans(dev)
	return p.Receive()
}

// EthTypeTrans is eth_type_trans: the packet is on dev, its MAC header is
// at data, pkt_type and protocol come from the frame and dev's addresses.
func (p *Packet) EthTypeTrans(dev Device) {
	p.Ifindex = dev.Ifindex
	p.mac = p.data
	if p.Len() < EthHLen {
		return
	}
	p.PktType, p.Protocol = ethTypeTrans(p.Data(), &dev)
}

// Receive is __netif_receive_skb_core up to the ingress hook for a packet
// whose MAC header is at data (eth_type_trans ran): the network header
// follows the Ethernet header, an unset transport header is set to it,
// mac_len is 14, and then ReceiveRound, whose result it returns.
func (p *Packet) Receive() bool {
	p.network = p.mac + EthHLen
	if !p.transportSet {
		p.transport, p.transportSet = p.network, true
	}
	p.macLen = p.network - p.mac
	return p.ReceiveRound()
}

// ReceiveRound is another_round of __netif_receive_skb_core and the
// prologue of sch_handle_ingress: skb_iif is the device, an 802.1Q/802.1ad
// ethertype has its outer tag moved out of band (skb_vlan_untag, unless a
// tag is out of band already), qdisc_skb_cb's pkt_len (wire_len) is the
// length without the MAC header and tc_at_ingress is set. It returns false
// where skb_vlan_untag drops the packet (a tagged frame shorter than 20
// bytes). bpf_redirect_peer's second round enters here.
func (p *Packet) ReceiveRound() bool {
	p.IngressIfindex = p.Ifindex
	if ethTypeVLAN(p.Protocol) && !p.VlanPresent {
		if !p.vlanUntag() {
			return false
		}
	}
	p.WireLen = uint32(p.Len() - p.macLen)
	p.AtIngress = true
	p.redir = 0
	return true
}

// vlanUntag is skb_vlan_untag for a packet with data at the MAC header.
func (p *Packet) vlanUntag() bool {
	// pskb_may_pull(VLAN_HLEN + 2) past the Ethernet header.
	if p.Len() < EthHLen+VlanHLen+2 {
		return false
	}
	proto := p.Protocol
	tci := binary.BigEndian.Uint16(p.buf[p.data+EthHLen:])
	p.postpullRcsum(p.buf[p.data+EthHLen:p.data+EthHLen+VlanHLen], 0)
	// vlan_set_encap_proto, then skb_reorder_vlan_header moves the MAC
	// addresses up over the tag.
	inner := binary.BigEndian.Uint16(p.buf[p.data+EthHLen+2:])
	switch {
	case inner >= 0x0600:
		p.Protocol = inner
	case p.buf[p.data+EthHLen+VlanHLen] == 0xff && p.buf[p.data+EthHLen+VlanHLen+1] == 0xff:
		p.Protocol = EthP8023
	default:
		p.Protocol = EthP8022
	}
	copy(p.buf[p.data+VlanHLen:p.data+VlanHLen+macAddrsN], p.buf[p.data:p.data+macAddrsN])
	p.data += VlanHLen
	p.mac = p.data
	p.network = p.mac + EthHLen
	if !p.transportSet || p.transport < p.network {
		p.transport, p.transportSet = p.network, true
	}
	p.macLen = EthHLen
	p.VlanPresent, p.VlanProto, p.VlanTCI = true, proto, tci
	return true
}

// RedirectPeer is skb_do_redirect's BPF_F_PEER branch after its checks:
// the packet moves to ifindex (the peer) and is scrubbed within the
// namespace (skb_scrub_packet(skb, false): the mark and the delivery time
// survive even though the peer is in another namespace; priority too, as
// nothing forwards it), then takes another round of the receive path
// (ReceiveRound) without eth_type_trans: pkt_type stays PACKET_HOST and
// protocol as it was.
func (p *Packet) RedirectToPeer(ifindex uint32) bool {
	p.Ifindex = ifindex
	p.Scrub(false)
	return p.ReceiveRound()
}

// WireFrame appends the packet's frame as a wire would carry it to dst:
// the bytes from data to the tail, with an out-of-band VLAN tag written
// back after the MAC addresses (__vlan_hwaccel_push_inside).
func (p *Packet) WireFrame(dst []byte) []byte {
	d := p.Data()
	if !p.VlanPresent || len(d) < macAddrsN {
		return append(dst, d...)
	}
	dst = append(dst, d[:macAddrsN]...)
	dst = binary.BigEndian.AppendUint16(dst, p.VlanProto)
	dst = binary.BigEndian.AppendUint16(dst, p.VlanTCI)
	return append(dst, d[macAddrsN:]...)
}
