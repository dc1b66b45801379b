package skb_test

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/tcxgo/tcx/skb"
)

// testFrame returns an n-byte frame to 00:00:00:00:00:00 (the loopback
// device's address) with the given ethertype and a deterministic payload.
func testFrame(ethertype uint16, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	clear(b[0:6])
	binary.BigEndian.PutUint16(b[12:], ethertype)
	return b
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// randFrame makes frames that reach every helper path: IPv4/IPv6 with
// plausible headers (valid IPv4 checksum, ECN bits), VLAN-tagged ones,
// 802.3 lengths, random ethertypes and now and then lengths test_run
// rejects.
func randFrame(r *rand.Rand) []byte {
	n := 14 + r.IntN(120)
	et := pick[uint16](r, skb.EthPIP, skb.EthPIP, skb.EthPIP, skb.EthPIPv6, skb.EthPIPv6, skb.EthP8021Q,
		skb.EthP8021AD, 0x0806, 0x05dc, uint16(r.Uint32()))
	switch et {
	case skb.EthPIP:
		n = max(n, skb.TestRunMinIPv4)
	case skb.EthPIPv6:
		n = max(n, skb.TestRunMinIPv6)
	}
	if r.IntN(20) == 0 {
		n = 14 + r.IntN(50)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	switch r.IntN(4) {
	case 0:
		clear(b[0:6])
	case 1:
		b[0] |= 1
	}
	binary.BigEndian.PutUint16(b[12:], et)
	off := 14
	if (et == skb.EthP8021Q || et == skb.EthP8021AD) && len(b) >= 18 {
		et = pick[uint16](r, skb.EthPIP, skb.EthPIPv6, skb.EthP8021Q)
		binary.BigEndian.PutUint16(b[16:], et)
		off = 18
	}
	if et == skb.EthPIP && len(b) >= off+20 {
		b[off] = 0x45
		if r.IntN(3) == 0 {
			b[off+1] = byte(r.IntN(4))
		}
		if r.IntN(2) == 0 {
			binary.BigEndian.PutUint16(b[off+6:], 0)
		}
		b[off+9] = pick[byte](r, 6, 17, 1)
		binary.BigEndian.PutUint16(b[off+10:], 0)
		binary.BigEndian.PutUint16(b[off+10:], skb.Checksum(b[off:off+20]))
	}
	if et == skb.EthPIPv6 && len(b) >= off+40 {
		b[off] = 0x60 | b[off]&0x0f
		b[off+6] = pick[byte](r, 6, 17, 58)
	}
	return b
}

// randCtx is nil (no ctx_in/ctx_out), all-zero, or sets the fields test_run
// accepts, sometimes out of range, sometimes one forbidden byte.
func randCtx(r *rand.Rand) []byte {
	switch r.IntN(6) {
	case 0, 1:
		return nil
	case 2:
		return make([]byte, skb.CtxSize)
	}
	c := make([]byte, skb.CtxSize)
	le := binary.LittleEndian
	le.PutUint32(c[skb.CtxMark:], r.Uint32())
	le.PutUint32(c[skb.CtxPriority:], r.Uint32())
	if r.IntN(3) == 0 {
		le.PutUint32(c[skb.CtxIngressIfindex:], r.Uint32N(5))
	}
	if r.IntN(10) == 0 {
		le.PutUint32(c[skb.CtxIfindex:], r.Uint32N(4))
	}
	for i := range 20 {
		c[skb.CtxCB+i] = byte(r.Uint32())
	}
	if r.IntN(4) == 0 {
		le.PutUint64(c[skb.CtxTstamp:], r.Uint64())
	}
	if r.IntN(4) == 0 {
		le.PutUint32(c[skb.CtxWireLen:], r.Uint32N(70000))
	}
	if r.IntN(4) == 0 {
		le.PutUint32(c[skb.CtxGSOSegs:], r.Uint32N(70000))
	}
	if r.IntN(6) == 0 {
		le.PutUint32(c[skb.CtxGSOSize:], r.Uint32N(3000))
	}
	if r.IntN(4) == 0 {
		le.PutUint64(c[skb.CtxHWTstamp:], r.Uint64())
	}
	if r.IntN(15) == 0 {
		c[r.IntN(skb.CtxSize)] = byte(r.Uint32())
	}
	return c
}

// randOp draws one helper call with arguments around every boundary the
// kernel checks.
func randOp(r *rand.Rand, flen int) op {
	o := op{Code: uint32(1 + r.IntN(opCount-1))}
	near := func() uint32 { return uint32(r.IntN(flen + 24)) }
	for i := range o.Buf {
		o.Buf[i] = byte(r.Uint32())
	}
	switch o.Code {
	case opStore:
		o.A = pick(r, near(), near(), 0x7fffffff, 0x80000000)
		o.B = uint32(r.IntN(16))
		o.D = pick[uint64](r, 0, 1, 2, 3, 4)
	case opLoad, opLoadRel:
		o.A = pick(r, near(), near(), 0xffff, 0x10000, 0x80000000)
		o.B = uint32(r.IntN(20))
		o.C = pick[uint32](r, 0, 1, 2)
	case opL3, opL4:
		o.A = pick(r, near(), near(), 24, 36, 40, 50, 0x10000)
		o.D = pick(r, 0, r.Uint64(), uint64(r.Uint32()))
		o.E = pick(r, r.Uint64(), uint64(r.Uint32()), 0)
		o.F = pick[uint64](r, 0, 2, 4, 3, 0x12, 0x14, 0x32, 0x34, 0x72, 0x10, 0x94, 0x104, 0x24, 0x64, 0x20)
	case opCsumDiff:
		o.A = pick[uint32](r, 0, 4, 8, 12, 3, 7)
		o.B = pick[uint32](r, 0, 4, 8, 12, 3, 7)
		o.C = pick(r, 0, r.Uint32(), 0xffffffff)
	case opCsumUpdate, opSetHash:
		o.A = r.Uint32()
	case opCsumLevel:
		o.D = pick[uint64](r, 0, 1, 1, 2, 3, 4)
	case opChangeProto:
		o.A = uint32(pick[uint16](r, 0xdd86, 0x0008, 0x0081, 0xdd86, 0x0008))
		o.D = pick[uint64](r, 0, 0, 0, 1)
	case opChangeType:
		o.A = uint32(r.IntN(6))
	case opChangeHead:
		o.A = pick(r, uint32(r.IntN(40)), 0, 14, 20000, 0xffffffff)
		o.D = pick[uint64](r, 0, 0, 0, 1)
	case opChangeTail:
		o.A = pick(r, uint32(r.IntN(flen+60)), 0, 13, 14, skb.MaxLen, skb.MaxLen+1)
		o.D = pick[uint64](r, 0, 0, 0, 1)
	case opAdjustRoom:
		o.A = uint32(pick(r, int32(r.IntN(80)-40), 4, -4, 20, -20, 40, -40, 0xfff, 0x1000, -0x1000, -1<<31, 0))
		o.B = pick[uint32](r, skb.AdjRoomNet, skb.AdjRoomMAC, skb.AdjRoomNet, skb.AdjRoomMAC, 2)
		o.D = pick(r, 0, 0, 0, skb.FAdjRoomFixedGSO, skb.FAdjRoomEncapL3IPv4, skb.FAdjRoomEncapL3IPv6,
			skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL3IPv6, skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL4GRE,
			skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL4UDP, skb.FAdjRoomEncapL3IPv6|skb.FAdjRoomEncapL4UDP,
			skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL4GRE|skb.FAdjRoomEncapL4UDP, skb.FAdjRoomNoCsumReset,
			skb.FAdjRoomEncapL2Eth|skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL2(14),
			skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL2(14), skb.FAdjRoomEncapL3IPv4|skb.FAdjRoomEncapL2(50),
			skb.FAdjRoomDecapL3IPv4, skb.FAdjRoomDecapL3IPv6, skb.FAdjRoomDecapL3IPv4|skb.FAdjRoomDecapL3IPv6,
			1<<9, skb.FAdjRoomEncapL2Eth)
	case opPull:
		o.A = pick(r, 0, near(), 0xffffffff)
	case opVlanPush:
		o.A = uint32(pick[uint16](r, 0x0081, 0xa888, 0x1234))
		o.B = r.Uint32()
	case opRedirect, opRedirectPeer:
		o.A = r.Uint32N(10)
		o.D = pick[uint64](r, 0, 1, 2, 4, 8)
	case opClone:
		o.A = pick[uint32](r, 1, 9999)
		o.D = pick[uint64](r, 0, 1, 2)
	case opCtxWrite:
		o.A, o.B, o.C = r.Uint32(), r.Uint32(), r.Uint32()
		o.D = pick(r, uint64(r.Uint32N(0x10000)), 0xffff, 0xfffe, uint64(r.Uint32()))
		o.E = uint64(r.Uint32())
	case opCtxWrite2:
		o.A, o.B, o.D = r.Uint32(), r.Uint32(), r.Uint64()
	case opSetTstamp:
		o.A = r.Uint32N(4)
		o.D = pick(r, 0, r.Uint64())
	}
	return o
}
