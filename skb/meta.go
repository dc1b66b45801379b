package skb

// Redirect flags (include/uapi/linux/bpf.h) and the kernel's internal ones
// that bpf_redirect_info keeps.
const (
	FIngress = 1 << 0 // BPF_F_INGRESS

	redirectNeigh   = 1 << 1 // BPF_F_NEIGH
	redirectPeer    = 1 << 2 // BPF_F_PEER
	redirectNexthop = 1 << 3 // BPF_F_NEXTHOP
)

// RedirectKind says which helper asked for the redirect.
type RedirectKind uint8

const (
	RedirectNone  RedirectKind = iota
	RedirectDev                // bpf_redirect
	RedirectPeer               // bpf_redirect_peer
	RedirectNeigh              // bpf_redirect_neigh
)

// RedirectInfo is the pending redirect the kernel keeps per CPU in struct
// bpf_redirect_info; here it belongs to the packet. The last call wins, and
// it only takes effect if the program returns TC_ACT_REDIRECT.
type RedirectInfo struct {
	Kind    RedirectKind
	Ifindex uint32
	Ingress bool // BPF_F_INGRESS
	// Nexthop holds bpf_redir_neigh (nh_family, then the IPv4 or IPv6
	// address) when RedirectNeigh was given parameters.
	Nexthop    [20]byte
	HasNexthop bool
}

// The pending redirect is kept as one word (redirectWord) and the nexthop
// beside it, so that compiled code that performs bpf_redirect and
// bpf_redirect_peer itself (HelperState) records one with a single store
// of a word without Go pointers.
const (
	redirectIngressBit = 1 << 8 // BPF_F_INGRESS
	redirectNexthopBit = 1 << 9 // HasNexthop: nexthop holds the parameters
)

// RedirectWord is the encoding of a pending redirect in the word
// HelperState returns: kind in bits 0-7, BPF_F_INGRESS in bit 8, whether
// bpf_redirect_neigh's parameters were given in bit 9, the ifindex in bits
// 32-63. A word of 0 is no redirect.
func RedirectWord(kind RedirectKind, ifindex uint32, ingress bool) uint64 {
	w := uint64(kind) | uint64(ifindex)<<32
	if ingress {
		w |= redirectIngressBit
	}
	return w
}

// RedirectIngressShift is where RedirectWord keeps BPF_F_INGRESS: the flag
// (bit 0 of bpf_redirect's flags) shifted left by it.
const RedirectIngressShift = 8

// HelperState returns the addresses of the packet state that compiled code
// reads and writes when it performs skb helpers itself
// (vm.Machine.SetPacketState): ip_summed as a byte (CsumState) and the
// pending redirect word (RedirectWord). They are fields of p, valid as
// long as p is; Reset keeps them.
func (p *Packet) HelperState() (ipSummed *uint8, redirect *uint64) {
	return (*uint8)(&p.IPSummed), &p.redir
}

// PendingRedirect returns the redirect the program asked for last.
func (p *Packet) PendingRedirect() RedirectInfo {
	w := p.redir
	r := RedirectInfo{Kind: RedirectKind(w), Ifindex: uint32(w >> 32), Ingress: w&redirectIngressBit != 0}
	if w&redirectNexthopBit != 0 {
		r.HasNexthop, r.Nexthop = true, p.nexthop
	}
	return r
}

// RedirectTarget is PendingRedirect's kind, ifindex and BPF_F_INGRESS,
// decoded from the redirect word into three results: the packet path
// reads them after every run that redirects, where building the
// RedirectInfo and copying it out read its fields back wide right after
// narrow stores wrote them, which stalled on store forwarding (a quarter
// of BenchmarkCorpusProgram/l3_forward/jit's run).
func (p *Packet) RedirectTarget() (kind RedirectKind, ifindex uint32, ingress bool) {
	w := p.redir
	return RedirectKind(w), uint32(w >> 32), w&redirectIngressBit != 0
}

// Redirecting reports whether a redirect is pending (PendingRedirect's
// Kind is not RedirectNone) without copying it.
func (p *Packet) Redirecting() bool { return p.redir != 0 }

// ClearRedirect forgets the pending redirect, as skb_do_redirect does once it
// has acted on it.
func (p *Packet) ClearRedirect() { p.redir = 0 }

// Redirect mirrors bpf_redirect: it records ifindex and BPF_F_INGRESS and
// returns TC_ACT_REDIRECT, or TC_ACT_SHOT without recording anything if any
// other flag bit is set.
func (p *Packet) Redirect(ifindex uint32, flags uint64) int64 {
	if flags&^FIngress != 0 {
		return ActShot
	}
	p.redir = RedirectWord(RedirectDev, ifindex, flags&FIngress != 0)
	return ActRedirect
}

// RedirectPeer mirrors bpf_redirect_peer: flags must be 0 (else TC_ACT_SHOT).
func (p *Packet) RedirectPeer(ifindex uint32, flags uint64) int64 {
	if flags != 0 {
		return ActShot
	}
	p.redir = RedirectWord(RedirectPeer, ifindex, false)
	return ActRedirect
}

// RedirectNeigh mirrors bpf_redirect_neigh. params is the program's struct
// bpf_redir_neigh (nil or empty for none; plen is len(params)); a non-empty
// params shorter than 20 bytes or any flag yields TC_ACT_SHOT.
func (p *Packet) RedirectNeigh(ifindex uint32, params []byte, flags uint64) int64 {
	if (len(params) != 0 && len(params) < 20) || flags != 0 {
		return ActShot
	}
	p.redir = RedirectWord(RedirectNeigh, ifindex, false)
	if len(params) != 0 {
		p.redir |= redirectNexthopBit
		copy(p.nexthop[:], params)
	}
	return ActRedirect
}

// maxClones is how many clone events a packet records without OnClone.
const maxClones = 8

// CloneEvent is one bpf_clone_redirect call that succeeded.
type CloneEvent struct {
	Ifindex uint32
	Ingress bool
	Len     int // length of the clone
}

// Clones returns the clone events recorded since Reset (when OnClone is nil),
// oldest first, at most 8; Dropped counts the ones that did not fit.
func (p *Packet) Clones() []CloneEvent { return p.clones[:p.nclones] }

// ClonesDropped is the number of clone events beyond the eight Clones holds.
func (p *Packet) ClonesDropped() int { return p.dropped }

// CloneRedirect mirrors bpf_clone_redirect. Flags other than BPF_F_INGRESS
// give -EINVAL, a GSO packet without gso_type (what test_run makes of a
// ctx_in gso_size) -EBADMSG. The kernel then looks the device up and fails
// with -EINVAL when no device has the ifindex: a caller modelling devices
// calls CloneChecks first, looks the device up only when that returned 0,
// and calls CloneRedirect for a device that exists. A valid call goes to
// OnClone, whose result is returned, or else is recorded (see Clones) and
// returns 0.
func (p *Packet) CloneRedirect(ifindex uint32, flags uint64) int64 {
	if err := p.CloneChecks(flags); err != 0 {
		return err
	}
	if p.OnClone != nil {
		return p.OnClone(p, ifindex, flags)
	}
	if p.nclones == maxClones {
		p.dropped++
		return 0
	}
	p.clones[p.nclones] = CloneEvent{Ifindex: ifindex, Ingress: flags&FIngress != 0, Len: p.Len()}
	p.nclones++
	return 0
}

// CloneChecks is what bpf_clone_redirect checks before it looks the device
// up, in its order: -EINVAL for flags other than BPF_F_INGRESS, -EBADMSG for
// a GSO packet without gso_type; 0 when the call may go on.
func (p *Packet) CloneChecks(flags uint64) int64 {
	if flags&^FIngress != 0 {
		return errEINVAL
	}
	if p.isGSO() && p.GSOType == 0 {
		return errEBADMSG
	}
	return 0
}

// pktTypeOK is skb_pkt_type_ok.
func pktTypeOK(t uint32) bool { return t <= PacketOtherHost }

// ChangeType mirrors bpf_skb_change_type: both the current and the new
// pkt_type must be PACKET_HOST..PACKET_OTHERHOST, else -EINVAL.
func (p *Packet) ChangeType(pktType uint32) int64 {
	if !pktTypeOK(uint32(p.PktType)) || !pktTypeOK(pktType) {
		return errEINVAL
	}
	p.PktType = uint8(pktType)
	return 0
}

// clearHash is skb_clear_hash.
func (p *Packet) clearHash() {
	p.Hash, p.SWHash, p.L4Hash = 0, false, false
}

// SetHashInvalid mirrors bpf_set_hash_invalid (skb_clear_hash); returns 0.
func (p *Packet) SetHashInvalid() int64 {
	p.clearHash()
	return 0
}

// SetHash mirrors bpf_set_hash: the hash becomes a software L4 hash.
func (p *Packet) SetHash(hash uint32) int64 {
	p.Hash, p.SWHash, p.L4Hash = hash, true, true
	return 0
}

// GetHashRecalc mirrors bpf_get_hash_recalc (skb_get_hash): it returns the
// hash, computing it first unless a software or L4 hash is set. The kernel
// keys its flow hash with a random boot-time secret; here the flow
// dissection feeds jhash keyed with HashSeed, so values are deterministic
// but differ from any kernel's.
func (p *Packet) GetHashRecalc() int64 {
	if !p.L4Hash && !p.SWHash {
		h, l4 := p.flowHash()
		p.Hash, p.SWHash, p.L4Hash = h, true, l4
	}
	return int64(p.Hash)
}

// Checksum levels of bpf_csum_level.
const (
	CsumLevelQuery = 0 // BPF_CSUM_LEVEL_QUERY
	CsumLevelInc   = 1 // BPF_CSUM_LEVEL_INC
	CsumLevelDec   = 2 // BPF_CSUM_LEVEL_DEC
	CsumLevelReset = 3 // BPF_CSUM_LEVEL_RESET

	maxCsumLevel = 3 // SKB_MAX_CSUM_LEVEL
)

// CsumLevel mirrors bpf_csum_level: it raises, lowers or resets the number of
// checksums known good (CHECKSUM_UNNECESSARY), or queries it (-EACCES if the
// packet is not CHECKSUM_UNNECESSARY). Unknown levels give -EINVAL.
func (p *Packet) CsumLevel(level uint64) int64 {
	switch level {
	case CsumLevelInc:
		p.incrChecksumUnnecessary()
	case CsumLevelDec:
		if p.IPSummed == ChecksumUnnecessary {
			if p.ChecksumLevel == 0 {
				p.IPSummed = ChecksumNone
			} else {
				p.ChecksumLevel--
			}
		}
	case CsumLevelReset:
		p.resetChecksumUnnecessary()
	case CsumLevelQuery:
		if p.IPSummed == ChecksumUnnecessary {
			return int64(p.ChecksumLevel)
		}
		return errEACCES
	default:
		return errEINVAL
	}
	return 0
}

func (p *Packet) incrChecksumUnnecessary() {
	switch p.IPSummed {
	case ChecksumUnnecessary:
		if p.ChecksumLevel < maxCsumLevel {
			p.ChecksumLevel++
		}
	case ChecksumNone:
		p.IPSummed, p.ChecksumLevel = ChecksumUnnecessary, 0
	}
}

// resetChecksumUnnecessary is __skb_reset_checksum_unnecessary.
func (p *Packet) resetChecksumUnnecessary() {
	if p.IPSummed == ChecksumUnnecessary {
		p.IPSummed, p.ChecksumLevel = ChecksumNone, 0
	}
}

// CsumUpdate mirrors bpf_csum_update: with CHECKSUM_COMPLETE it adds csum to
// skb->csum and returns the new sum, otherwise -ENOTSUPP.
func (p *Packet) CsumUpdate(csum uint32) int64 {
	if p.IPSummed != ChecksumComplete {
		return errENOTSUPP
	}
	p.Csum = csumAdd(p.Csum, csum)
	return int64(p.Csum)
}

// Clocks of bpf_skb_set_tstamp and __sk_buff.tstamp_type.
const (
	ClockRealtime  = 0 // BPF_SKB_CLOCK_REALTIME
	ClockMonotonic = 1 // BPF_SKB_CLOCK_MONOTONIC
	ClockTAI       = 2 // BPF_SKB_CLOCK_TAI
)

// SetTstamp mirrors bpf_skb_set_tstamp: it sets tstamp and the clock it
// counts in, for IPv4 and IPv6 packets only (else -EOPNOTSUPP). A
// monotonic or TAI time of 0 and unknown clocks give -EINVAL.
func (p *Packet) SetTstamp(tstamp uint64, clock uint32) int64 {
	if p.Protocol != EthPIP && p.Protocol != EthPIPv6 {
		return errEOPNOTSUPP
	}
	switch clock {
	case ClockRealtime:
	case ClockMonotonic, ClockTAI:
		if tstamp == 0 {
			return errEINVAL
		}
	default:
		return errEINVAL
	}
	p.Tstamp, p.TstampType = tstamp, uint8(clock)
	return 0
}
