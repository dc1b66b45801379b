package skb_test

import (
	"encoding/binary"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

// argReader hands out little-endian arguments from fuzz input, zero once it
// runs dry.
type argReader struct{ b []byte }

func (r *argReader) u8() uint8 {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *argReader) u16() uint16 { return uint16(r.u8()) | uint16(r.u8())<<8 }
func (r *argReader) u32() uint32 { return uint32(r.u16()) | uint32(r.u16())<<16 }
func (r *argReader) u64() uint64 { return uint64(r.u32()) | uint64(r.u32())<<32 }

// bytes returns up to n bytes of input.
func (r *argReader) bytes(n int) []byte {
	n = min(n, len(r.b))
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// FuzzPacket drives every helper and context accessor with arbitrary frames
// and arguments. Nothing may panic (Go's bounds checks turn any access
// outside the buffer into a panic), and the packet must stay consistent.
func FuzzPacket(f *testing.F) {
	f.Add(testFrame(skb.EthPIP, 60), []byte{13, 100, 0, 0, 0, 1, 12, 14, 0, 0, 0})
	f.Add(testFrame(skb.EthPIPv6, 80), []byte{9, 0x86, 0xdd, 15, 0x81, 0, 5, 0, 15, 0xa8, 0x88, 1, 0, 16, 16})
	f.Add(testFrame(skb.EthP8021Q, 30), []byte{16, 20, 4, 5, 3, 1, 0})
	f.Add([]byte{0, 1, 2}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, frame, prog []byte) {
		var p skb.Packet
		r := &argReader{prog}
		if r.u8()&1 == 0 {
			if p.Reset(frame, skb.Loopback()) != nil {
				return
			}
		} else {
			ctx := make([]byte, skb.CtxSize)
			copy(ctx, r.bytes(skb.CtxSize))
			if p.ResetTestRun(frame, ctx, func(uint32) (skb.Device, bool) { return skb.Device{}, true }) != nil {
				return
			}
		}
		var img [skb.CtxSize]byte
		var buf [80]byte
		for steps := 0; len(r.b) > 0 && steps < 64; steps++ {
			switch r.u8() % 31 {
			case 0:
				p.LoadBytes(r.u32(), buf[:r.u8()%80])
			case 1:
				p.LoadBytesRelative(r.u32(), buf[:r.u8()%80], r.u32()%3)
			case 2:
				p.StoreBytes(r.u32(), r.bytes(int(r.u8()%64)), uint64(r.u8()%4))
			case 3:
				p.L3CsumReplace(r.u32(), r.u64(), r.u64(), r.u64()%0x20)
			case 4:
				p.L4CsumReplace(r.u32(), r.u64(), r.u64(), r.u64()%0x100)
			case 5:
				skb.CsumDiff(r.bytes(int(r.u8()%40)), r.bytes(int(r.u8()%40)), r.u32())
			case 6:
				p.IPSummed = skb.CsumState(r.u8() % 4)
				if p.IPSummed == skb.ChecksumPartial {
					p.SetChecksumPartial(int(r.u8()), int(r.u8()))
				}
			case 7:
				p.CsumUpdate(r.u32())
			case 8:
				p.CsumLevel(uint64(r.u8() % 5))
			case 9:
				p.ChangeProto(r.u16(), uint64(r.u8()%2))
			case 10:
				p.ChangeType(uint32(r.u8() % 6))
			case 11:
				p.ChangeHead(r.u32()%20000, uint64(r.u8()%2))
			case 12:
				p.ChangeTail(r.u32()%20000, uint64(r.u8()%2))
			case 13:
				p.AdjustRoom(int32(r.u32()), r.u32()%3, r.u64())
			case 14:
				p.PullData(r.u32())
			case 15:
				p.VlanPush(r.u16(), r.u16())
			case 16:
				p.VlanPop()
			case 17:
				p.GetHashRecalc()
			case 18:
				p.SetHash(r.u32())
			case 19:
				p.SetHashInvalid()
			case 20:
				p.EcnSetCE()
			case 21:
				p.Redirect(r.u32(), r.u64())
			case 22:
				p.CloneRedirect(r.u32(), r.u64())
			case 23:
				p.RedirectNeigh(r.u32(), r.bytes(int(r.u8()%24)), uint64(r.u8()%2))
			case 24:
				off, size := int(r.u8()), 1<<(r.u8()%4)
				p.WriteCtx(img[:], r.u32())
				if skb.CtxAccess(off, size, false) {
					skb.CtxLoad(img[:], off, size)
				}
			case 25:
				p.StoreCtx(img[:], int(r.u8()), 1<<(r.u8()%4), r.u64())
			case 26:
				p.ReadCtx(img[:])
			case 27:
				p.GSOSize, p.GSOType = r.u16(), r.u32()
			case 28:
				p.AtIngress = !p.AtIngress
			case 29:
				p.CtxOut(img[:])
			case 30:
				p.SetTstamp(r.u64(), uint32(r.u8()%4))
			}
			checkPacket(t, &p)
		}
	})
}

func checkPacket(t *testing.T, p *skb.Packet) {
	t.Helper()
	d := p.Data()
	if len(d) != p.Len() || cap(d) != p.Len() || p.Len() < 0 || p.Headroom() < 0 || p.Tailroom() < 0 {
		t.Fatalf("inconsistent packet: len %d data %d/%d headroom %d tailroom %d", p.Len(), len(d), cap(d), p.Headroom(), p.Tailroom())
	}
	if p.Len() > 1<<17 {
		t.Fatalf("packet grew to %d bytes", p.Len())
	}
	var img [skb.CtxSize]byte
	p.WriteCtx(img[:], 0x100)
	if skb.CtxLoad(img[:], skb.CtxLen, 4) != uint64(p.Len()) ||
		binary.LittleEndian.Uint32(img[skb.CtxDataEnd:])-binary.LittleEndian.Uint32(img[skb.CtxData:]) != uint32(p.Len()) {
		t.Fatal("context does not describe the packet")
	}
}
