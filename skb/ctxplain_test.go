package skb

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestCtxPlainLoad_ReadsTheImage checks the promise engines rely on to
// skip CtxLoad: wherever CtxPlainLoad holds, CtxLoad returns the
// little-endian bytes at the offset, for images laid out by WriteCtx from
// packets with random fields and then changed by random StoreCtx and plain
// stores; and it holds for the fields programs load most (data, data_end,
// mark, cb[], protocol).
func TestCtxPlainLoad_ReadsTheImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	frame := make([]byte, 60)
	plain := 0
	for range 200 {
		p, err := New(frame, Loopback())
		if err != nil {
			t.Fatal(err)
		}
		randomFields(rng, p)
		img := make([]byte, CtxSize)
		p.WriteCtx(img, 0x10000)
		for range rng.IntN(8) {
			off, size, v := rng.IntN(CtxSize), 1<<rng.IntN(4), rng.Uint64()
			switch {
			case CtxPlainStore(off, size) && rng.IntN(2) == 0:
				var w [8]byte
				binary.LittleEndian.PutUint64(w[:], v)
				copy(img[off:off+size], w[:size])
			case CtxAccess(off, size, true):
				p.StoreCtx(img, off, size, v)
			}
		}
		for off := range CtxSize {
			for _, size := range []int{1, 2, 4, 8} {
				if !CtxPlainLoad(off, size) || !CtxAccess(off, size, false) {
					continue
				}
				plain++
				var w [8]byte
				copy(w[:], img[off:off+size])
				if got, want := CtxLoad(img, off, size), binary.LittleEndian.Uint64(w[:]); got != want {
					t.Fatalf("load %d@%d: CtxLoad %#x, image %#x", size, off, got, want)
				}
			}
		}
	}
	for _, off := range []int{CtxData, CtxDataEnd, CtxMark, CtxCB, CtxProtocol, CtxTCIndex} {
		if !CtxPlainLoad(off, 4) {
			t.Errorf("a 4-byte load at %d is not plain", off)
		}
	}
	if !CtxPlainLoad(CtxProtocol, 2) || !CtxPlainLoad(CtxProtocol+3, 1) || !CtxPlainLoad(CtxPktType, 2) {
		t.Error("a load of a 16-bit field at its slot, or narrower than it, is not plain")
	}
	if CtxPlainLoad(CtxProtocol+2, 2) || CtxPlainLoad(CtxPktType+1, 1) {
		t.Error("a load as wide as a narrow field inside its slot (the whole field in the kernel) is plain")
	}
	if plain == 0 {
		t.Fatal("no plain load checked")
	}
}

// randomFields sets every field WriteCtx reads to random values.
func randomFields(rng *rand.Rand, p *Packet) {
	u16 := func() uint16 { return uint16(rng.Uint32()) }
	p.PktType = uint8(rng.Uint32())
	p.Mark, p.Priority = rng.Uint32(), rng.Uint32()
	p.QueueMapping, p.Protocol, p.VlanTCI, p.VlanProto = u16(), u16(), u16(), u16()
	p.VlanPresent = rng.IntN(2) == 0
	p.IngressIfindex, p.Ifindex, p.Hash, p.NapiID, p.WireLen = rng.Uint32(), rng.Uint32(), rng.Uint32(), rng.Uint32(), rng.Uint32()
	p.TCIndex, p.TCClassid, p.GSOSegs, p.GSOSize = u16(), u16(), u16(), u16()
	for i := range p.CB {
		p.CB[i] = byte(rng.Uint32())
	}
	p.Tstamp, p.HWTstamp, p.TstampType = rng.Uint64(), rng.Uint64(), uint8(rng.Uint32())
}

// TestCtxPlainStore_MatchesStoreCtx checks the other half: a plain store
// written into the image and read back with ReadCtx leaves the packet and
// the image exactly as StoreCtx does.
func TestCtxPlainStore_MatchesStoreCtx(t *testing.T) {
	frame := make([]byte, 60)
	frame[12], frame[13] = 0x08, 0x00
	rng := rand.New(rand.NewPCG(3, 4))
	stores := 0
	for off := range CtxSize {
		for _, size := range []int{1, 2, 4, 8} {
			if !CtxPlainStore(off, size) {
				continue
			}
			stores++
			v := rng.Uint64()
			want, err := New(frame, Loopback())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := New(frame, Loopback())
			want.Mark, got.Mark = 7, 7
			var wimg, gimg [CtxSize]byte
			want.WriteCtx(wimg[:], 0x10000)
			got.WriteCtx(gimg[:], 0x10000)
			if !want.StoreCtx(wimg[:], off, size, v) {
				t.Fatalf("StoreCtx refused plain store %d@%d", size, off)
			}
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], v)
			copy(gimg[off:off+size], w[:size])
			got.ReadCtx(gimg[:])
			if wimg != gimg {
				t.Fatalf("store %d@%d: images differ", size, off)
			}
			want.WriteCtx(wimg[:], 0x10000)
			got.WriteCtx(gimg[:], 0x10000)
			if wimg != gimg {
				t.Fatalf("store %d@%d: packets differ", size, off)
			}
		}
	}
	if !CtxPlainStore(CtxMark, 4) || CtxPlainStore(CtxTCIndex, 4) || CtxPlainStore(CtxQueueMapping, 4) {
		t.Error("mark must be plain, tc_index and queue_mapping must not")
	}
	if stores == 0 {
		t.Fatal("no plain store checked")
	}
}
