package skb

import "encoding/binary"

// Flags of bpf_skb_store_bytes and the checksum helpers
// (include/uapi/linux/bpf.h).
const (
	FRecomputeCsum  = 1 << 0 // BPF_F_RECOMPUTE_CSUM
	FInvalidateHash = 1 << 1 // BPF_F_INVALIDATE_HASH

	FHdrFieldMask = 0xf    // BPF_F_HDR_FIELD_MASK: size of the field, 0, 2 or 4
	FPseudoHdr    = 1 << 4 // BPF_F_PSEUDO_HDR
	FMarkMangled0 = 1 << 5 // BPF_F_MARK_MANGLED_0
	FMarkEnforce  = 1 << 6 // BPF_F_MARK_ENFORCE
	FIPv6         = 1 << 7 // BPF_F_IPV6 (Linux 6.16)

	csumMangled0 = 0xffff // CSUM_MANGLED_0
	intMax       = 1<<31 - 1
)

// Start headers of bpf_skb_load_bytes_relative.
const (
	HdrStartMAC = 0 // BPF_HDR_START_MAC
	HdrStartNet = 1 // BPF_HDR_START_NET
)

// mayPull is pskb_may_pull for a linear skb: the first n bytes exist. The
// kernel's uncloning (skb_ensure_writable) cannot fail here.
func (p *Packet) mayPull(n uint64) bool { return n <= uint64(p.Len()) }

// LoadBytes mirrors bpf_skb_load_bytes: it copies len(to) bytes from offset
// into to, or zeroes to and returns -EFAULT if they are not all in the packet.
func (p *Packet) LoadBytes(offset uint32, to []byte) int64 {
	if offset > intMax || uint64(offset)+uint64(len(to)) > uint64(p.Len()) {
		clear(to)
		return errEFAULT
	}
	copy(to, p.buf[p.data+int(offset):])
	return 0
}

// LoadBytesRelative mirrors bpf_skb_load_bytes_relative: like LoadBytes but
// offset counts from the MAC (HdrStartMAC) or network (HdrStartNet) header.
// Offsets above 0xffff, unknown start headers and reads past the tail zero
// to and return -EFAULT.
func (p *Packet) LoadBytesRelative(offset uint32, to []byte, startHeader uint32) int64 {
	var start int
	switch {
	case offset > 0xffff:
		start = -1
	case startHeader == HdrStartMAC:
		start = p.mac
	case startHeader == HdrStartNet:
		start = p.network
	default:
		start = -1
	}
	if start < 0 || start+int(offset)+len(to) > p.tail {
		clear(to)
		return errEFAULT
	}
	copy(to, p.buf[start+int(offset):])
	return 0
}

// StoreBytes mirrors bpf_skb_store_bytes: it writes from at offset. Unknown
// flags give -EINVAL, an offset above INT_MAX or a write past the tail
// -EFAULT. BPF_F_RECOMPUTE_CSUM keeps a CHECKSUM_COMPLETE sum in step with
// the change; BPF_F_INVALIDATE_HASH clears the hash.
func (p *Packet) StoreBytes(offset uint32, from []byte, flags uint64) int64 {
	if flags&^(FRecomputeCsum|FInvalidateHash) != 0 {
		return errEINVAL
	}
	if offset > intMax || !p.mayPull(uint64(offset)+uint64(len(from))) {
		return errEFAULT
	}
	ptr := p.buf[p.data+int(offset) : p.data+int(offset)+len(from)]
	if flags&FRecomputeCsum != 0 {
		p.postpullRcsum(ptr, int(offset))
	}
	copy(ptr, from)
	if flags&FRecomputeCsum != 0 {
		p.postpushRcsum(ptr, int(offset))
	}
	if flags&FInvalidateHash != 0 {
		p.clearHash()
	}
	return 0
}

// PullData mirrors bpf_skb_pull_data: it makes the first n bytes (all of
// them for n == 0) directly accessible, which a linear packet always is,
// unless n exceeds the length: -ENOMEM.
func (p *Packet) PullData(n uint32) int64 {
	if !p.mayPull(uint64(n)) {
		return errENOMEM
	}
	return 0
}

// postpullRcsum is __skb_postpull_rcsum: b (at offset off from data) is
// about to leave the part of the packet a CHECKSUM_COMPLETE sum covers.
func (p *Packet) postpullRcsum(b []byte, off int) {
	switch {
	case p.IPSummed == ChecksumComplete:
		p.Csum = csumBlockSub(p.Csum, csumPartial(b, 0), off)
	case p.IPSummed == ChecksumPartial && p.csumStartOffset() < 0:
		p.IPSummed = ChecksumNone
	}
}

// postpushRcsum is __skb_postpush_rcsum.
func (p *Packet) postpushRcsum(b []byte, off int) {
	if p.IPSummed == ChecksumComplete {
		p.Csum = csumBlockAdd(p.Csum, csumPartial(b, 0), off)
	}
}

// csumField checks the offset of a checksum helper and returns the
// checksum's position in buf.
func (p *Packet) csumField(offset uint32) (int, int64) {
	if offset > 0xffff || offset&1 != 0 {
		return 0, errEFAULT
	}
	if !p.mayPull(uint64(offset) + 2) {
		return 0, errEFAULT
	}
	return p.data + int(offset), 0
}

func (p *Packet) sum16(at int) uint16 { return binary.LittleEndian.Uint16(p.buf[at:]) }

func (p *Packet) setSum16(at int, v uint16) { binary.LittleEndian.PutUint16(p.buf[at:], v) }

// L3CsumReplace mirrors bpf_l3_csum_replace: it updates the 16-bit checksum
// at offset for a field that changed from from to to. The low four bits of
// flags give the field size: 2 or 4, or 0 with from 0 and to a csum_diff
// result. from and to are register values, i.e. packet bytes loaded as
// little-endian words. Errors: -EINVAL for other flags or sizes, -EFAULT for
// an odd offset, one above 0xffff or past the tail.
func (p *Packet) L3CsumReplace(offset uint32, from, to, flags uint64) int64 {
	if flags&^FHdrFieldMask != 0 {
		return errEINVAL
	}
	at, err := p.csumField(offset)
	if err != 0 {
		return err
	}
	sum := p.sum16(at)
	switch flags & FHdrFieldMask {
	case 0:
		if from != 0 {
			return errEINVAL
		}
		sum = csumReplaceByDiff(sum, uint32(to))
	case 2:
		sum = csumReplace2(sum, uint16(from), uint16(to))
	case 4:
		sum = csumReplace4(sum, uint32(from), uint32(to))
	default:
		return errEINVAL
	}
	p.setSum16(at, sum)
	return 0
}

// L4CsumReplace mirrors bpf_l4_csum_replace: L3CsumReplace for a TCP/UDP
// checksum. BPF_F_PSEUDO_HDR marks a pseudo-header field (an address), which
// matters for CHECKSUM_PARTIAL and CHECKSUM_COMPLETE packets;
// BPF_F_MARK_MANGLED_0 leaves a zero (absent UDP) checksum alone and writes a
// resulting zero as 0xffff, unless BPF_F_MARK_ENFORCE; BPF_F_IPV6 says the
// diff (size 0) is for IPv6, whose pseudo header skb->csum does not cover.
func (p *Packet) L4CsumReplace(offset uint32, from, to, flags uint64) int64 {
	isPseudo := flags&FPseudoHdr != 0
	isMMZero := flags&FMarkMangled0 != 0
	doMForce := flags&FMarkEnforce != 0
	isIPv6 := flags&FIPv6 != 0
	if flags&^(FMarkMangled0|FMarkEnforce|FPseudoHdr|FIPv6|FHdrFieldMask) != 0 {
		return errEINVAL
	}
	at, err := p.csumField(offset)
	if err != 0 {
		return err
	}
	sum := p.sum16(at)
	if isMMZero && !doMForce && sum == 0 {
		return 0
	}
	switch flags & FHdrFieldMask {
	case 0:
		if from != 0 {
			return errEINVAL
		}
		sum = p.protoCsumReplaceByDiff(sum, uint32(to), isPseudo, isIPv6)
	case 2:
		sum = p.protoCsumReplace4(sum, uint32(uint16(from)), uint32(uint16(to)), isPseudo)
	case 4:
		sum = p.protoCsumReplace4(sum, uint32(from), uint32(to), isPseudo)
	default:
		return errEINVAL
	}
	if isMMZero && sum == 0 {
		sum = csumMangled0
	}
	p.setSum16(at, sum)
	return 0
}

// protoCsumReplace4 is inet_proto_csum_replace4 (and, with zero-extended
// values, inet_proto_csum_replace2).
func (p *Packet) protoCsumReplace4(sum uint16, from, to uint32, pseudo bool) uint16 {
	if p.IPSummed != ChecksumPartial {
		sum = csumReplace4(sum, from, to)
		if p.IPSummed == ChecksumComplete && pseudo {
			p.Csum = ^csumAdd(csumSub(^p.Csum, from), to)
		}
	} else if pseudo {
		sum = ^csumFold(csumAdd(csumSub(uint32(sum), from), to))
	}
	return sum
}

// protoCsumReplaceByDiff is inet_proto_csum_replace_by_diff.
func (p *Packet) protoCsumReplaceByDiff(sum uint16, diff uint32, pseudo, ipv6 bool) uint16 {
	if p.IPSummed != ChecksumPartial {
		sum = csumReplaceByDiff(sum, diff)
		if p.IPSummed == ChecksumComplete && pseudo && !ipv6 {
			p.Csum = ^csumSub(diff, p.Csum)
		}
	} else if pseudo {
		sum = ^csumFold(csumAdd(diff, uint32(sum)))
	}
	return sum
}
