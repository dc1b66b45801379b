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
