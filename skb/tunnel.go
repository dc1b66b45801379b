package skb

import (
	"encoding/binary"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// Tunnel metadata: the ip_tunnel_info of a metadata dst
// (include/net/ip_tunnels.h), which bpf_skb_set_tunnel_key attaches for a
// collect-metadata tunnel device (ip link ... external) to encapsulate
// with, and which such a device attaches to what it receives.

// Tunnel flag bits (IP_TUNNEL_*_BIT).
const (
	TunnelCsum         = 0
	TunnelKey          = 2
	TunnelSeq          = 3
	TunnelDontFragment = 8
	TunnelGeneveOpt    = 11
	TunnelVXLANOpt     = 12
	TunnelNoCache      = 13
	TunnelERSPANOpt    = 14
	TunnelGTPOpt       = 15
	TunnelPFCPOpt      = 17

	// tunnelOptionsPresent are the bits ip_tunnel_set_options_present sets.
	tunnelOptionsPresent = 1<<TunnelGeneveOpt | 1<<TunnelVXLANOpt | 1<<TunnelERSPANOpt |
		1<<TunnelGTPOpt | 1<<TunnelPFCPOpt
)

// Flags of bpf_skb_{set,get}_tunnel_key (include/uapi/linux/bpf.h).
const (
	FTunInfoIPv6   = 1 << 0 // BPF_F_TUNINFO_IPV6
	FZeroCsumTx    = 1 << 1 // BPF_F_ZERO_CSUM_TX
	FDontFragment  = 1 << 2 // BPF_F_DONT_FRAGMENT
	FSeqNumber     = 1 << 3 // BPF_F_SEQ_NUMBER
	FNoTunnelKey   = 1 << 4 // BPF_F_NO_TUNNEL_KEY (set)
	FTunInfoFlags  = 1 << 4 // BPF_F_TUNINFO_FLAGS (get)
	TunnelKeySize  = 44     // sizeof(struct bpf_tunnel_key)
	TunnelOptsMax  = 255    // IP_TUNNEL_OPTS_MAX
	ipv6FlowLabels = 0x000fffff
)

// Tunnel is the tunnel metadata a packet carries, as ip_tunnel_info.
type Tunnel struct {
	IPv6 bool   // IP_TUNNEL_INFO_IPV6
	TX   bool   // IP_TUNNEL_INFO_TX: to encapsulate with, not received
	ID   uint64 // key.tun_id, host byte order
	// Src and Dst are the outer addresses (IPv4 in the first four bytes),
	// network byte order: for TX, Dst is the remote end.
	Src, Dst [16]byte
	TOS, TTL uint8
	Label    uint32 // key.label (IPv6 flow label), host byte order
	Flags    uint32 // key.tun_flags, a set of 1<<Tunnel* bits
	Opts     []byte // tunnel options (Geneve TLVs, VXLAN GBP, ...), at most TunnelOptsMax
}

// tunnelState is a packet's tunnel metadata: info is valid with set; md
// says it is the metadata dst bpf_skb_set_tunnel_key attached (the only one
// bpf_skb_set_tunnel_opt may change).
type tunnelState struct {
	set, md bool
	info    Tunnel
	opts    [TunnelOptsMax]byte
}

// Tunnel returns the packet's tunnel metadata, if it has any. Opts aliases
// the packet's storage until the next helper call.
func (p *Packet) Tunnel() (Tunnel, bool) {
	if !p.tun.set {
		return Tunnel{}, false
	}
	return p.tun.info, true
}

// SetTunnel attaches received tunnel metadata, as a collect-metadata tunnel
// device does on decapsulation (ok false removes it). Programs read it with
// bpf_skb_get_tunnel_key/opt; bpf_skb_set_tunnel_opt refuses to change it.
// Options beyond TunnelOptsMax bytes are cut.
func (p *Packet) SetTunnel(t Tunnel, ok bool) {
	p.tun.set, p.tun.md = ok, false
	if !ok {
		return
	}
	n := copy(p.tun.opts[:], t.Opts)
	p.tun.info = t
	p.tun.info.Opts = p.tun.opts[:n]
}

// tunnelKeyCompatSize reports whether size is one of the older, shorter
// struct bpf_tunnel_key layouts the kernel still accepts.
func tunnelKeyCompatSize(size int) bool {
	switch size {
	case 28, // offsetof(local_ipv6[0])
		24, // offsetof(tunnel_label)
		22, // offsetof(tunnel_ext)
		8:  // offsetof(remote_ipv6[1])
		return true
	}
	return false
}

// SetTunnelKey mirrors bpf_skb_set_tunnel_key: from is the program's struct
// bpf_tunnel_key (TunnelKeySize bytes or an older layout's size). It
// attaches fresh TX metadata: key, checksum and no-cache flags unless the
// flags say otherwise, remote as destination, local as source.
func (p *Packet) SetTunnelKey(from []byte, flags uint64) int64 {
	if flags&^(FTunInfoIPv6|FZeroCsumTx|FDontFragment|FSeqNumber|FNoTunnelKey) != 0 {
		return errEINVAL
	}
	var k [TunnelKeySize]byte
	if len(from) != TunnelKeySize && !tunnelKeyCompatSize(len(from)) {
		return errEINVAL
	}
	copy(k[:], from)
	le := binary.LittleEndian
	label, ext := le.Uint32(k[24:]), le.Uint16(k[22:])
	if (flags&FTunInfoIPv6 == 0 && label != 0) || ext != 0 {
		return errEINVAL
	}
	t := &p.tun
	*t = tunnelState{set: true, md: true}
	i := &t.info
	i.TX = true
	i.Flags = 1 << TunnelNoCache
	if flags&FDontFragment != 0 {
		i.Flags |= 1 << TunnelDontFragment
	}
	if flags&FZeroCsumTx == 0 {
		i.Flags |= 1 << TunnelCsum
	}
	if flags&FSeqNumber != 0 {
		i.Flags |= 1 << TunnelSeq
	}
	if flags&FNoTunnelKey == 0 {
		i.Flags |= 1 << TunnelKey
	}
	i.ID = uint64(le.Uint32(k[0:]))
	i.TOS, i.TTL = k[20], k[21]
	if flags&FTunInfoIPv6 != 0 {
		i.IPv6 = true
		copy(i.Dst[:], k[4:20])
		copy(i.Src[:], k[28:44])
		i.Label = label & ipv6FlowLabels
	} else {
		binary.BigEndian.PutUint32(i.Dst[:], le.Uint32(k[4:]))
		binary.BigEndian.PutUint32(i.Src[:], le.Uint32(k[28:]))
	}
	i.Opts = t.opts[:0]
	return 0
}

// GetTunnelKey mirrors bpf_skb_get_tunnel_key: it fills to (a struct
// bpf_tunnel_key of TunnelKeySize bytes or an older layout's size) with the
// packet's metadata, the metadata's source as remote (the receive view),
// or zeroes it and fails: -EINVAL without metadata or with unknown flags,
// -EPROTO when FTunInfoIPv6 does not match the metadata's family, -EINVAL
// for other sizes (and for the 8-byte layout on IPv6 metadata).
func (p *Packet) GetTunnelKey(to []byte, flags uint64) int64 {
	fail := func(e int64) int64 {
		clear(to)
		return e
	}
	i := &p.tun.info
	if !p.tun.set || flags&^(FTunInfoIPv6|FTunInfoFlags) != 0 {
		return fail(errEINVAL)
	}
	if i.IPv6 != (flags&FTunInfoIPv6 != 0) {
		return fail(-linuxerr.EPROTO)
	}
	if len(to) != TunnelKeySize && (!tunnelKeyCompatSize(len(to)) || (len(to) == 8 && i.IPv6)) {
		return fail(errEINVAL)
	}
	var k [TunnelKeySize]byte
	le := binary.LittleEndian
	le.PutUint32(k[0:], uint32(i.ID))
	k[20], k[21] = i.TOS, i.TTL
	if flags&FTunInfoFlags != 0 {
		binary.BigEndian.PutUint16(k[22:], uint16(i.Flags))
	}
	if flags&FTunInfoIPv6 != 0 {
		copy(k[4:20], i.Src[:])
		copy(k[28:44], i.Dst[:])
		le.PutUint32(k[24:], i.Label)
	} else {
		le.PutUint32(k[4:], binary.BigEndian.Uint32(i.Src[:]))
		le.PutUint32(k[28:], binary.BigEndian.Uint32(i.Dst[:]))
	}
	copy(to, k[:])
	return 0
}

// SetTunnelOpt mirrors bpf_skb_set_tunnel_opt: options for the metadata
// bpf_skb_set_tunnel_key attached in this run (-EINVAL for any other, and
// for a size not a multiple of 4; -ENOMEM beyond TunnelOptsMax). A non-empty
// set marks the options present.
func (p *Packet) SetTunnelOpt(from []byte) int64 {
	t := &p.tun
	if !t.set || !t.md || len(from)&3 != 0 {
		return errEINVAL
	}
	if len(from) > TunnelOptsMax {
		return errENOMEM
	}
	n := copy(t.opts[:], from)
	t.info.Opts = t.opts[:n]
	if n > 0 {
		t.info.Flags |= tunnelOptionsPresent
	}
	return 0
}

// GetTunnelOpt mirrors bpf_skb_get_tunnel_opt: the options into to, the
// rest of to zeroed, and their length; -ENOENT (to zeroed) without metadata
// or options, -ENOMEM when to is too small.
func (p *Packet) GetTunnelOpt(to []byte) int64 {
	t := &p.tun
	if !t.set || t.info.Flags&tunnelOptionsPresent == 0 {
		clear(to)
		return -linuxerr.ENOENT
	}
	if len(to) < len(t.info.Opts) {
		clear(to)
		return errENOMEM
	}
	n := copy(to, t.info.Opts)
	clear(to[n:])
	return int64(n)
}
