package skb

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestCtxPlainLoad_ReadsTheImage checks the promise engines rely on to
// skip CtxLoad: wherever CtxPlainLoad holds, CtxLoad returns the
// little-endian bytes at the offset, for any image; and it holds for the
// fields programs load most (data, data_end, mark, cb[]).
func TestCtxPlainLoad_ReadsTheImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	img := make([]byte, CtxSize+8)
	plain := 0
	for range 50 {
		for i := range img {
			img[i] = byte(rng.Uint32())
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
	for _, off := range []int{CtxData, CtxDataEnd, CtxMark, CtxCB} {
		if !CtxPlainLoad(off, 4) {
			t.Errorf("a 4-byte load at %d is not plain", off)
		}
	}
	if CtxPlainLoad(CtxProtocol, 4) {
		t.Errorf("a 4-byte load of the 16-bit protocol field is plain")
	}
	if plain == 0 {
		t.Fatal("no plain load checked")
	}
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
