package skb_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

func TestCtxAccess_Table(t *testing.T) {
	// Cases read off tc_cls_act_is_valid_access and bpf_skb_is_valid_access;
	// TestCtxAccess_Kernel checks all of them against the verifier.
	for _, c := range []struct {
		name        string
		off, size   int
		write, want bool
	}{
		{"len", skb.CtxLen, 4, false, true},
		{"narrow len", skb.CtxLen + 2, 2, false, true},
		{"misaligned", skb.CtxLen + 1, 2, false, false},
		{"8 bytes of a u32 field", skb.CtxLen, 8, false, false},
		{"len is read-only", skb.CtxLen, 4, true, false},
		{"mark", skb.CtxMark, 4, true, true},
		{"narrow write", skb.CtxMark, 2, true, false},
		{"priority", skb.CtxPriority, 4, true, true},
		{"tc_index", skb.CtxTCIndex, 4, true, true},
		{"tc_classid", skb.CtxTCClassid, 4, true, true},
		{"queue_mapping", skb.CtxQueueMapping, 4, true, true},
		{"protocol is read-only", skb.CtxProtocol, 4, true, false},
		{"cb byte", skb.CtxCB + 3, 1, true, true},
		{"cb[0..1] as u64", skb.CtxCB, 8, true, true},
		{"cb[4] as u64 runs past cb", skb.CtxCB + 16, 8, false, false},
		{"hash is read-only", skb.CtxHash, 4, true, false},
		{"data", skb.CtxData, 4, false, true},
		{"narrow data", skb.CtxData, 2, false, false},
		{"data_end", skb.CtxDataEnd, 4, false, true},
		{"data_meta", skb.CtxDataMeta, 4, false, true},
		{"napi_id", skb.CtxNapiID, 4, false, true},
		{"family is for sockets", skb.CtxFamily, 4, false, false},
		{"remote_ip6", skb.CtxRemoteIP6, 4, false, false},
		{"local_port", skb.CtxLocalPort, 4, false, false},
		{"flow_keys", skb.CtxFlowKeys, 8, false, false},
		{"tstamp", skb.CtxTstamp, 8, false, true},
		{"tstamp write", skb.CtxTstamp, 8, true, true},
		{"half a tstamp", skb.CtxTstamp, 4, false, false},
		{"wire_len", skb.CtxWireLen, 4, false, true},
		{"wire_len is read-only", skb.CtxWireLen, 4, true, false},
		{"gso_segs", skb.CtxGSOSegs, 2, false, true},
		{"sk", skb.CtxSk, 8, false, true},
		{"inside sk", skb.CtxSk + 4, 4, false, false},
		{"gso_size", skb.CtxGSOSize, 4, false, true},
		{"tstamp_type", skb.CtxTstampType, 1, false, true},
		{"tstamp_type as u32", skb.CtxTstampType, 4, false, false},
		{"padding", skb.CtxTstampType + 1, 1, false, false},
		{"hwtstamp", skb.CtxHWTstamp, 8, false, true},
		{"hwtstamp write", skb.CtxHWTstamp, 8, true, false},
		{"past the end", skb.CtxSize, 4, false, false},
		{"negative", -4, 4, false, false},
		{"size 3", skb.CtxLen, 3, false, false},
	} {
		if got := skb.CtxAccess(c.off, c.size, c.write); got != c.want {
			t.Errorf("%s: CtxAccess(%d, %d, %v) = %v", c.name, c.off, c.size, c.write, got)
		}
	}
}

func TestCtxLoad_NarrowLoads(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIPv6, 60), skb.Loopback())
	p.PktType = skb.PacketOtherHost
	p.Mark = 0x11223344
	copy(p.CB[:], []byte{1, 2, 3, 4, 5, 6, 7, 8})
	var img [skb.CtxSize]byte
	p.WriteCtx(img[:], 0x1000)
	for _, c := range []struct {
		name      string
		off, size int
		want      uint64
	}{
		// protocol is a __be16: a load sees the bytes 86 dd.
		{"protocol", skb.CtxProtocol, 4, 0xdd86},
		{"protocol low byte", skb.CtxProtocol, 1, 0x86},
		{"protocol high byte", skb.CtxProtocol + 1, 1, 0xdd},
		// The sk_buff field is 2 bytes wide; a load at least that wide
		// returns all of it wherever it starts.
		{"protocol upper half", skb.CtxProtocol + 2, 2, 0xdd86},
		{"protocol byte 2", skb.CtxProtocol + 2, 1, 0},
		// pkt_type is one byte in the sk_buff: every byte load returns it.
		{"pkt_type byte 3", skb.CtxPktType + 3, 1, skb.PacketOtherHost},
		{"mark byte 2", skb.CtxMark + 2, 1, 0x22},
		{"mark upper half", skb.CtxMark + 2, 2, 0x1122},
		{"cb raw bytes", skb.CtxCB + 2, 2, 0x0403},
		{"cb as u64", skb.CtxCB, 8, 0x0807060504030201},
		{"data", skb.CtxData, 4, 0x1000},
		{"data_end", skb.CtxDataEnd, 4, 0x1000 + 60},
		{"data_meta", skb.CtxDataMeta, 4, 0x1000},
		{"len", skb.CtxLen, 4, 60},
		{"ifindex", skb.CtxIfindex, 4, 1},
		{"wire_len", skb.CtxWireLen, 4, 60},
	} {
		if !skb.CtxAccess(c.off, c.size, false) {
			t.Fatalf("%s: not a valid load", c.name)
		}
		if got := skb.CtxLoad(img[:], c.off, c.size); got != c.want {
			t.Errorf("%s: CtxLoad(%d, %d) = %#x, want %#x", c.name, c.off, c.size, got, c.want)
		}
	}
}

func TestPacket_WriteCtx_ReadCtxRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 200 {
		src, _ := skb.New(randFrame(r), skb.Loopback())
		if src == nil {
			continue
		}
		src.Mark, src.Priority = r.Uint32(), r.Uint32()
		src.TCIndex, src.TCClassid = uint16(r.Uint32()), uint16(r.Uint32())
		src.QueueMapping = uint16(r.Uint32N(0xffff))
		src.Tstamp = r.Uint64()
		for i := range src.CB {
			src.CB[i] = byte(r.Uint32())
		}
		src.VlanPresent, src.VlanTCI, src.VlanProto = true, uint16(r.Uint32()), skb.EthP8021AD
		src.Hash, src.WireLen, src.GSOSegs, src.GSOSize, src.HWTstamp = r.Uint32(), r.Uint32(), 7, 9, r.Uint64()
		base := r.Uint32N(1 << 30)
		var img [skb.CtxSize]byte
		src.WriteCtx(img[:], base)

		dst, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
		before := *dst
		dst.ReadCtx(img[:])
		if dst.Mark != src.Mark || dst.Priority != src.Priority || dst.TCIndex != src.TCIndex ||
			dst.TCClassid != src.TCClassid || dst.QueueMapping != src.QueueMapping ||
			dst.Tstamp != src.Tstamp || dst.CB != src.CB {
			t.Fatalf("writable fields did not round-trip: %+v vs %+v", dst, src)
		}
		if dst.Hash != before.Hash || dst.VlanTCI != before.VlanTCI || dst.Len() != before.Len() || dst.Protocol != before.Protocol {
			t.Fatal("ReadCtx changed a read-only field")
		}
		le := binary.LittleEndian
		if le.Uint32(img[skb.CtxData:]) != base || le.Uint32(img[skb.CtxDataEnd:]) != base+uint32(src.Len()) {
			t.Fatal("data pointers do not bracket the packet")
		}
		for off := skb.CtxFamily; off < skb.CtxDataMeta; off++ {
			if img[off] != 0 {
				t.Fatalf("socket field byte %d set", off)
			}
		}
	}
}

func TestPacket_StoreCtx(t *testing.T) {
	p, _ := skb.New(testFrame(skb.EthPIP, 40), skb.Loopback())
	var img [skb.CtxSize]byte
	p.WriteCtx(img[:], 0)
	for _, c := range []struct {
		name      string
		off, size int
		v         uint64
		ok        bool
		read      func() uint64
		want      uint64
	}{
		{"tc_index keeps 16 bits", skb.CtxTCIndex, 4, 0x12345, true, func() uint64 { return uint64(p.TCIndex) }, 0x2345},
		{"tc_classid keeps 16 bits", skb.CtxTCClassid, 4, 0xabcdef, true, func() uint64 { return uint64(p.TCClassid) }, 0xcdef},
		{"queue_mapping below 0xffff", skb.CtxQueueMapping, 4, 0xfffe, true, func() uint64 { return uint64(p.QueueMapping) }, 0xfffe},
		{"queue_mapping 0xffff is dropped", skb.CtxQueueMapping, 4, 0xffff, true, func() uint64 { return uint64(p.QueueMapping) }, 0xfffe},
		{"queue_mapping compares the whole register", skb.CtxQueueMapping, 4, 1<<32 | 5, true, func() uint64 { return uint64(p.QueueMapping) }, 0xfffe},
		{"mark", skb.CtxMark, 4, 0xdeadbeef, true, func() uint64 { return uint64(p.Mark) }, 0xdeadbeef},
		{"cb byte", skb.CtxCB + 5, 1, 0x1ff, true, func() uint64 { return uint64(p.CB[5]) }, 0xff},
		{"tstamp", skb.CtxTstamp, 8, 1 << 60, true, func() uint64 { return p.Tstamp }, 1 << 60},
		{"len is read-only", skb.CtxLen, 4, 1, false, func() uint64 { return uint64(p.Len()) }, 40},
		{"hash is read-only", skb.CtxHash, 4, 1, false, func() uint64 { return uint64(p.Hash) }, 0},
	} {
		if ok := p.StoreCtx(img[:], c.off, c.size, c.v); ok != c.ok {
			t.Errorf("%s: StoreCtx = %v", c.name, ok)
		}
		if got := c.read(); got != c.want {
			t.Errorf("%s: field %#x, want %#x", c.name, got, c.want)
		}
		if c.ok {
			field := c.off &^ 3
			if c.off >= skb.CtxCB && c.off < skb.CtxCB+20 {
				field = c.off
			}
			if got := skb.CtxLoad(img[:], field, min(c.size, 8)); c.size != 1 && got != c.want {
				t.Errorf("%s: image reads back %#x, want %#x", c.name, got, c.want)
			}
		}
	}
}

// TestCtxImageAccess checks the image access rules engines use against
// CtxLoad and StoreCtx on random packets: a load done on the image as
// CtxImageAccess describes returns what CtxLoad returns, a store leaves
// the image StoreCtx leaves, and the wide loads of 16-bit fields and the
// 16-bit stores are among the rules (they are why it exists).
func TestCtxImageAccess(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	le := binary.LittleEndian
	loadAt := func(img []byte, src, size, width int) uint64 {
		var w [8]byte
		copy(w[:], img[src:src+size])
		return le.Uint64(w[:]) & (1<<(8*uint(width)) - 1 | -uint64(width>>3))
	}
	covered := map[string]bool{}
	for range 100 {
		p, _ := skb.New(randFrame(r), skb.Loopback())
		if p == nil {
			continue
		}
		p.Mark, p.Priority, p.Hash = r.Uint32(), r.Uint32(), r.Uint32()
		p.TCIndex, p.TCClassid, p.QueueMapping = uint16(r.Uint32()), uint16(r.Uint32()), uint16(r.Uint32N(0xffff))
		p.VlanTCI, p.GSOSegs, p.GSOSize, p.PktType = uint16(r.Uint32()), uint16(r.Uint32()), uint16(r.Uint32()), uint8(r.Uint32N(8))
		var img [skb.CtxSize]byte
		p.WriteCtx(img[:], r.Uint32N(1<<30))
		for off := range skb.CtxSize {
			for _, size := range []int{1, 2, 4, 8} {
				if off+size > skb.CtxSize {
					continue
				}
				if src, width, _, ok := skb.CtxImageAccess(off, size, false); ok {
					if !skb.CtxAccess(off, size, false) {
						t.Fatalf("load (%d, %d): an image access the verifier refuses", off, size)
					}
					if got, want := loadAt(img[:], src, size, width), skb.CtxLoad(img[:], off, size); got != want {
						t.Fatalf("load (%d, %d) on the image at %d width %d = %#x, CtxLoad %#x", off, size, src, width, got, want)
					}
					if src != off || width != size {
						covered["load"] = true
					}
				}
				if src, width, below, ok := skb.CtxImageAccess(off, size, true); ok {
					v := r.Uint64() >> r.UintN(64) // small values too
					want, got := img, img
					q := *p
					if !q.StoreCtx(want[:], off, size, v) {
						t.Fatalf("store (%d, %d): an image access StoreCtx refuses", off, size)
					}
					var w [8]byte
					le.PutUint64(w[:], v&(1<<(8*uint(width))-1|-uint64(width>>3)))
					if below == 0 || v < below {
						copy(got[src:src+size], w[:size])
					} else {
						covered["dropped"] = true
					}
					if got != want {
						t.Fatalf("store (%d, %d) of %#x on the image at %d width %d differs from StoreCtx", off, size, v, src, width)
					}
					if src != off || width != size {
						covered["store"] = true
					}
					if below != 0 && v < below {
						covered["below"] = true
					}
				}
			}
		}
	}
	if !covered["load"] || !covered["store"] || !covered["below"] || !covered["dropped"] {
		t.Fatalf("no aliased load, store or conditional store both ways among the rules: %v", covered)
	}
	for _, c := range []struct {
		off, size, src, width int
		write                 bool
		below                 uint64
	}{
		{skb.CtxProtocol + 2, 2, skb.CtxProtocol, 2, false, 0},
		{skb.CtxPktType + 1, 1, skb.CtxPktType, 1, false, 0},
		{skb.CtxPktType + 2, 2, skb.CtxPktType, 1, false, 0},
		{skb.CtxGSOSegs + 2, 2, skb.CtxGSOSegs, 2, false, 0},
		{skb.CtxTCIndex, 4, skb.CtxTCIndex, 2, true, 0},
		{skb.CtxTCClassid, 4, skb.CtxTCClassid, 2, true, 0},
		{skb.CtxQueueMapping, 4, skb.CtxQueueMapping, 2, true, 0xffff}, // NO_QUEUE_MAPPING up dropped, 16 bits kept
	} {
		if src, width, below, ok := skb.CtxImageAccess(c.off, c.size, c.write); !ok || src != c.src || width != c.width || below != c.below {
			t.Errorf("CtxImageAccess(%d, %d, %v) = %d, %d, %#x, %v; want %d, %d, %#x", c.off, c.size, c.write, src, width, below, ok, c.src, c.width, c.below)
		}
	}
}

// TestPacket_StoreCtxImm: an immediate store to queue_mapping keeps its
// low 16 bits unless it is NO_QUEUE_MAPPING or more as a signed number
// (the kernel's BPF_ST conversion); other fields store the sign-extended
// immediate as StoreCtx does.
func TestPacket_StoreCtxImm(t *testing.T) {
	for _, c := range []struct {
		imm  int32
		want uint16
	}{{5, 5}, {0xfffe, 0xfffe}, {0xffff, 7}, {0x10000, 7}, {-1, 0xffff}, {-2, 0xfffe}, {-0x8000, 0x8000}, {-0x80000000, 0}} {
		var p skb.Packet
		var img [skb.CtxSize]byte
		p.QueueMapping = 7
		p.WriteCtx(img[:], 0)
		if !p.StoreCtxImm(img[:], skb.CtxQueueMapping, 4, c.imm) {
			t.Fatalf("imm %d: refused", c.imm)
		}
		if p.QueueMapping != c.want || skb.CtxLoad(img[:], skb.CtxQueueMapping, 4) != uint64(c.want) {
			t.Errorf("imm %d: queue_mapping %#x, image %#x; want %#x", c.imm, p.QueueMapping, skb.CtxLoad(img[:], skb.CtxQueueMapping, 4), c.want)
		}
	}
	var p skb.Packet
	var img [skb.CtxSize]byte
	if !p.StoreCtxImm(img[:], skb.CtxMark, 4, -1) || p.Mark != 0xffffffff {
		t.Errorf("mark after imm -1: %#x", p.Mark)
	}
	if p.StoreCtxImm(img[:], skb.CtxLen, 4, 1) {
		t.Error("a store to len was accepted")
	}
}
