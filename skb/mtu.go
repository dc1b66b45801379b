package skb

import "github.com/tcxgo/tcx/internal/linuxerr"

// Results and flags of bpf_check_mtu (include/uapi/linux/bpf.h).
const (
	MTUChkSegs       = 1 << 0 // BPF_MTU_CHK_SEGS
	MTUChkSuccess    = 0      // BPF_MTU_CHK_RET_SUCCESS
	MTUChkFragNeed   = 1      // BPF_MTU_CHK_RET_FRAG_NEEDED
	MTUChkSegsTooBig = 2      // BPF_MTU_CHK_RET_SEGS_TOOBIG
)

// CheckMTU mirrors bpf_check_mtu (the skb variant) for dev, the device the
// program named (its own, skb->dev, for ifindex 0), or nil when no device
// has that ifindex (-ENODEV). mtuLen is the program's *mtu_len: an L3
// length to check instead of the packet's when non-zero; a call that
// checked sets it to dev's MTU (a failed one leaves it). The result is
// MTUChkSuccess when the length plus lenDiff fits the MTU plus the Ethernet
// header, else MTUChkFragNeed; a GSO packet passes, or with MTUChkSegs is
// checked per segment (MTUChkSegsTooBig; -EINVAL without a transport
// header). Unknown flags, and MTUChkSegs with a length or lenDiff, give
// -EINVAL.
func (p *Packet) CheckMTU(dev *Device, mtuLen *uint32, lenDiff int32, flags uint64) int64 {
	switch {
	case flags&^MTUChkSegs != 0, flags&MTUChkSegs != 0 && (lenDiff != 0 || *mtuLen != 0):
		return errEINVAL
	case dev == nil:
		return -linuxerr.ENODEV
	}
	mtu := dev.mtu()
	const hardHeaderLen = EthHLen
	devLen := int32(mtu + hardHeaderLen)
	skbLen := int32(p.Len())
	if *mtuLen != 0 {
		skbLen = int32(*mtuLen + hardHeaderLen)
	}
	skbLen += lenDiff
	ret := int64(MTUChkFragNeed)
	switch {
	case skbLen <= devLen:
		ret = MTUChkSuccess
	case p.isGSO():
		ret = MTUChkSuccess
		if flags&MTUChkSegs != 0 {
			if !p.transportSet {
				return errEINVAL
			}
			if !p.gsoFitsMTU(mtu) {
				ret = MTUChkSegsTooBig
			}
		}
	}
	*mtuLen = mtu
	return ret
}

// gsoFitsMTU is skb_gso_validate_network_len: every segment's network
// length (headers from the network header on plus gso_size) within mtu.
func (p *Packet) gsoFitsMTU(mtu uint32) bool {
	if p.GSOSize == gsoByFrags {
		return true // segment lengths come from the frag list: none here
	}
	thlen := 0
	switch {
	case p.GSOType&gsoTCP != 0 && p.transportSet && p.transport+13 < p.tail:
		thlen = int(p.buf[p.transport+12]>>4) * 4 // tcp_hdrlen
	case p.GSOType&GSOUDPL4 != 0:
		thlen = 8
	}
	seglen := thlen + int(p.GSOSize)
	if p.transportSet {
		seglen += p.transport - p.network
	}
	return uint32(seglen) <= mtu
}
