package maps

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Map memory is shared between programs, helpers and userspace callers that
// run concurrently. Everything this package copies in or out of it goes
// through whole aligned 64-bit words with sync/atomic, so a value is never
// torn inside a word (values as a whole are not atomic, as in the kernel),
// and the race detector sees no unsynchronised access from this package.

// wordBuf is zeroed memory viewed both as words (for atomic access) and as
// bytes (what a VM hands programs). The byte view is 8-byte aligned because
// it is the word slice's own memory.
type wordBuf struct {
	w []uint64
	b []byte
}

func newWordBuf(nbytes int) wordBuf {
	w := make([]uint64, (nbytes+7)/8)
	if len(w) == 0 {
		return wordBuf{}
	}
	return wordBuf{w: w, b: unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8)}
}

func roundUp8(n int) int { return (n + 7) &^ 7 }

// loadWords copies len(dst) bytes from the words starting at w[0].
func loadWords(dst []byte, w []uint64) {
	n := len(dst) / 8
	for i := 0; i < n; i++ {
		binary.NativeEndian.PutUint64(dst[i*8:], atomic.LoadUint64(&w[i]))
	}
	if rest := len(dst) - n*8; rest > 0 {
		var tmp [8]byte
		binary.NativeEndian.PutUint64(tmp[:], atomic.LoadUint64(&w[n]))
		copy(dst[n*8:], tmp[:rest])
	}
}

// storeWords copies src into the words starting at w[0]; the bytes of the
// last word beyond len(src) (slot padding no program can address) become 0.
func storeWords(w []uint64, src []byte) {
	n := len(src) / 8
	for i := 0; i < n; i++ {
		atomic.StoreUint64(&w[i], binary.NativeEndian.Uint64(src[i*8:]))
	}
	if rest := len(src) - n*8; rest > 0 {
		var tmp [8]byte
		copy(tmp[:], src[n*8:])
		atomic.StoreUint64(&w[n], binary.NativeEndian.Uint64(tmp[:]))
	}
}

// zeroWords clears w.
func zeroWords(w []uint64) {
	for i := range w {
		atomic.StoreUint64(&w[i], 0)
	}
}
