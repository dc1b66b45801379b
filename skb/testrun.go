package skb

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Limits of BPF_PROG_TEST_RUN for skb programs on x86-64 with 4 KiB pages.
const (
	// TestRunMaxData is PAGE_SIZE - (NET_SKB_PAD + NET_IP_ALIGN) -
	// SKB_DATA_ALIGN(sizeof(struct skb_shared_info)).
	TestRunMaxData = 3712
	// TestRunMinIPv4 and TestRunMinIPv6 are the shortest frames accepted
	// with an IPv4 or IPv6 ethertype: the Ethernet plus the base IP header.
	TestRunMinIPv4 = EthHLen + IPv4HLen
	TestRunMinIPv6 = EthHLen + IPv6HLen

	gsoLegacyMaxSize = 65536 // GSO_LEGACY_MAX_SIZE
	gsoMaxSegs       = 65535 // GSO_MAX_SEGS
	pageSize         = 4096
)

// DeviceLookup finds a network device by ifindex, as dev_get_by_index does
// in the caller's network namespace.
type DeviceLookup func(ifindex uint32) (Device, bool)

// ResetTestRun makes p the skb BPF_PROG_TEST_RUN builds for a SCHED_CLS
// program from data_in and ctx_in (bpf_prog_test_run_skb with
// convert___skb_to_skb). ctxIn nil means the caller passes neither ctx_in
// nor ctx_out; then wire_len reads 0. A non-nil ctxIn (empty when only
// ctx_out is asked for) may set mark, priority, ingress_ifindex, ifindex,
// cb, tstamp, wire_len, gso_segs, gso_size and hwtstamp; an ifindex above 1
// selects that device through lookup instead of the loopback device.
//
// Errors wrap the kernel's errno: EINVAL for data shorter than 14 or longer
// than TestRunMaxData bytes, for IPv4 (IPv6) frames shorter than 34 (54)
// bytes and for ctx_in fields test_run does not accept; E2BIG for a ctx_in
// longer than struct __sk_buff with non-zero bytes beyond it; ENODEV for an
// unknown ifindex.
func (p *Packet) ResetTestRun(data, ctxIn []byte, lookup DeviceLookup) error {
	if len(data) < EthHLen || len(data) > TestRunMaxData {
		return fmt.Errorf("test run: data of %d bytes: %w", len(data), syscall.EINVAL)
	}
	var ctx [CtxSize]byte
	if ctxIn != nil {
		if len(ctxIn) > pageSize || (len(ctxIn) > CtxSize && !allZero(ctxIn[CtxSize:])) {
			return fmt.Errorf("test run: ctx_in beyond struct __sk_buff: %w", syscall.E2BIG)
		}
		copy(ctx[:], ctxIn)
	}
	le := binary.LittleEndian
	dev := Loopback()
	if ifindex := le.Uint32(ctx[CtxIfindex:]); ifindex > 1 {
		var ok bool
		if lookup != nil {
			dev, ok = lookup(ifindex)
		}
		if !ok {
			return fmt.Errorf("test run: ifindex %d: %w", ifindex, syscall.ENODEV)
		}
		dev.Ifindex = ifindex
	}
	p.reset(data, dev)
	if (p.Protocol == EthPIP && len(data) < TestRunMinIPv4) ||
		(p.Protocol == EthPIPv6 && len(data) < TestRunMinIPv6) {
		return fmt.Errorf("test run: %d bytes too short for ethertype %#04x: %w", len(data), p.Protocol, syscall.EINVAL)
	}
	if ctxIn == nil {
		return nil
	}
	if !allZero(ctx[:CtxMark]) || !allZero(ctx[CtxMark+4:CtxPriority]) ||
		!allZero(ctx[CtxTCIndex:CtxCB]) || !allZero(ctx[CtxCB+cbSize:CtxTstamp]) ||
		!allZero(ctx[CtxSk:CtxGSOSize]) || !allZero(ctx[CtxTstampType:CtxHWTstamp]) {
		return fmt.Errorf("test run: ctx_in sets a field test_run does not accept: %w", syscall.EINVAL)
	}
	p.Mark = le.Uint32(ctx[CtxMark:])
	p.Priority = le.Uint32(ctx[CtxPriority:])
	p.IngressIfindex = le.Uint32(ctx[CtxIngressIfindex:])
	p.Tstamp = le.Uint64(ctx[CtxTstamp:])
	copy(p.CB[:], ctx[CtxCB:CtxCB+cbSize])
	p.WireLen = uint32(p.Len())
	if w := le.Uint32(ctx[CtxWireLen:]); w != 0 {
		if w < uint32(p.Len()) || w > gsoLegacyMaxSize {
			return fmt.Errorf("test run: wire_len %d: %w", w, syscall.EINVAL)
		}
		p.WireLen = w
	}
	segs := le.Uint32(ctx[CtxGSOSegs:])
	if segs > gsoMaxSegs {
		return fmt.Errorf("test run: gso_segs %d: %w", segs, syscall.EINVAL)
	}
	p.GSOSegs = uint16(segs)
	p.ctxGSOSize = le.Uint32(ctx[CtxGSOSize:])
	p.GSOSize = uint16(p.ctxGSOSize)
	p.HWTstamp = le.Uint64(ctx[CtxHWTstamp:])
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// CtxOut writes the ctx_out BPF_PROG_TEST_RUN returns after the program ran
// (convert_skb_to___skb) into out (at least CtxSize bytes): mark, priority,
// ingress_ifindex, ifindex, tstamp, cb, wire_len, gso_segs and hwtstamp from
// the packet, gso_size as ctx_in gave it, zero elsewhere. The matching
// data_out is Data.
func (p *Packet) CtxOut(out []byte) {
	out = out[:CtxSize]
	clear(out)
	le := binary.LittleEndian
	le.PutUint32(out[CtxMark:], p.Mark)
	le.PutUint32(out[CtxPriority:], p.Priority)
	le.PutUint32(out[CtxIngressIfindex:], p.IngressIfindex)
	le.PutUint32(out[CtxIfindex:], p.Ifindex)
	le.PutUint64(out[CtxTstamp:], p.Tstamp)
	copy(out[CtxCB:CtxCB+cbSize], p.CB[:])
	le.PutUint32(out[CtxWireLen:], p.WireLen)
	le.PutUint32(out[CtxGSOSegs:], uint32(p.GSOSegs))
	le.PutUint32(out[CtxGSOSize:], p.ctxGSOSize)
	le.PutUint64(out[CtxHWTstamp:], p.HWTstamp)
}
