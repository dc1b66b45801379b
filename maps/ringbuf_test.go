package maps

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

func newRingBufT(t testing.TB, size uint32) *RingBuf {
	t.Helper()
	return mustNew(t, &ebpf.MapSpec{Name: "rb", Type: ebpf.RingBuf, MaxEntries: size}).(*RingBuf)
}

func newRingReader(t testing.TB, rb *RingBuf) *RingBufReader {
	t.Helper()
	r, err := rb.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// readNow reads one record that must already be there.
func readNow(t *testing.T, r *RingBufReader) []byte {
	t.Helper()
	r.SetDeadline(time.Now().Add(-time.Second))
	rec, err := r.Read()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return rec.RawSample
}

func wantEmpty(t *testing.T, r *RingBufReader) {
	t.Helper()
	r.SetDeadline(time.Now().Add(-time.Second))
	if rec, err := r.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %x, %v; want no record", rec.RawSample, err)
	}
}

// TestRingBuf_OrderAndWraparound pushes records of many sizes through a
// small ring for many laps; records that wrap must stay contiguous.
func TestRingBuf_OrderAndWraparound(t *testing.T) {
	rb := newRingBufT(t, 4096)
	r := newRingReader(t, rb)
	wrapped := 0
	for i := 0; i < 5001; i++ {
		size := 1 + (i*37)%700
		off, ok := rb.Reserve(uint64(size), 0)
		if !ok {
			t.Fatalf("record %d: Reserve(%d) failed on a drained ring", i, size)
		}
		rec := rb.Data()[off : off+size]
		if !bytes.Equal(rec, make([]byte, size)) {
			t.Fatalf("record %d: reserved memory is not zeroed", i)
		}
		if off+size > 4096 {
			wrapped++
		}
		for j := range rec {
			rec[j] = byte(i + j)
		}
		if !rb.Submit(off, 0) {
			t.Fatalf("record %d: Submit refused", i)
		}
		if i%3 != 2 { // let a few records queue up
			continue
		}
		for k := i - 2; k <= i; k++ {
			got := readNow(t, r)
			want := make([]byte, 1+(k*37)%700)
			for j := range want {
				want[j] = byte(k + j)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("record %d: got %d bytes %x, want %d bytes %x", k, len(got), got, len(want), want)
			}
		}
	}
	if wrapped == 0 {
		t.Fatal("no record wrapped around the end of the ring")
	}
	wantEmpty(t, r)
}

func TestRingBuf_SizeRules(t *testing.T) {
	rb := newRingBufT(t, 4096)
	if _, ok := rb.Reserve(8, 1); ok {
		t.Error("Reserve with flags succeeded")
	}
	// A record plus its 8-byte header must stay below the ring size.
	if _, ok := rb.Reserve(4081, 0); ok {
		t.Error("Reserve(4081) fit a 4096-byte ring")
	}
	if _, ok := rb.Reserve(1<<32, 0); ok {
		t.Error("Reserve(4 GiB) succeeded")
	}
	off, ok := rb.Reserve(4080, 0)
	if !ok {
		t.Fatal("Reserve(4080) failed on an empty ring")
	}
	if got := rb.Dropped(); got != 2 {
		t.Errorf("Dropped = %d, want 2 (ring-full failures only count when the ring lacks room)", got)
	}
	if _, ok := rb.Reserve(0, 0); ok {
		t.Error("Reserve succeeded on a full ring")
	}
	if got := rb.Query(RingAvailData); got != 4088 {
		t.Errorf("avail data %d, want 4088", got)
	}
	if rb.Query(RingRingSize) != 4096 || rb.Query(RingProdPos) != 4088 || rb.Query(RingConsPos) != 0 || rb.Query(99) != 0 {
		t.Error("Query results are off")
	}
	rb.Discard(off, 0)
	r := newRingReader(t, rb)
	wantEmpty(t, r) // a discarded record is skipped
	if rb.Query(RingConsPos) != 4088 {
		t.Errorf("consumer position %d after skipping, want 4088", rb.Query(RingConsPos))
	}
}

func TestRingBuf_BusyRecordHoldsBackLaterOnes(t *testing.T) {
	rb := newRingBufT(t, 8192)
	r := newRingReader(t, rb)
	a, _ := rb.Reserve(4, 0)
	b, _ := rb.Reserve(4, 0)
	c, _ := rb.Reserve(4, 0)
	copy(rb.Data()[a:], "AAAA")
	copy(rb.Data()[b:], "BBBB")
	rb.Submit(b, 0)
	rb.Discard(c, 0)
	wantEmpty(t, r)
	rb.Submit(a, 0)
	if got := readNow(t, r); string(got) != "AAAA" {
		t.Fatalf("first record %q", got)
	}
	if got := readNow(t, r); string(got) != "BBBB" {
		t.Fatalf("second record %q", got)
	}
	wantEmpty(t, r)
	if rb.Submit(a, 0) || rb.Discard(b, 0) {
		t.Error("a record was committed twice")
	}
	for _, off := range []int{0, 3, 12, 4096 + 8, 1 << 20, -8} {
		if rb.Submit(off, 0) {
			t.Errorf("Submit(%d) accepted an offset that is no record", off)
		}
	}
}

func TestRingBuf_OutputAndDrops(t *testing.T) {
	rb := newRingBufT(t, 4096)
	if got := rb.Output([]byte("x"), 4); got != -linuxerr.EINVAL {
		t.Errorf("Output with bad flags = %d, want -EINVAL", got)
	}
	n := 0
	for rb.Output(bytes.Repeat([]byte{byte(n)}, 100), RingNoWakeup) == 0 {
		n++
	}
	if n != 4088/112 {
		t.Errorf("%d records of 100 bytes fit, want %d", n, 4088/112)
	}
	if got := rb.Output(make([]byte, 100), 0); got != -linuxerr.EAGAIN {
		t.Errorf("Output on a full ring = %d, want -EAGAIN", got)
	}
	if rb.Dropped() != 2 {
		t.Errorf("Dropped = %d, want 2", rb.Dropped())
	}
	r := newRingReader(t, rb)
	for i := 0; i < n; i++ {
		if got := readNow(t, r); !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 100)) {
			t.Fatalf("record %d: %x", i, got[:4])
		}
	}
	if rb.Output([]byte("z"), 0) != 0 {
		t.Error("Output failed on a drained ring")
	}
}

func TestRingBufReader_BlockDeadlineClose(t *testing.T) {
	rb := newRingBufT(t, 4096)
	r := newRingReader(t, rb)
	if _, err := rb.NewReader(); errnoOfErr(err) != syscall.EBUSY {
		t.Errorf("second reader: %v, want EBUSY", err)
	}
	r.SetDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read on an empty ring: %v, want deadline exceeded", err)
	}
	// A blocked Read wakes up for a record submitted later.
	r.SetDeadline(time.Time{})
	got := make(chan []byte)
	go func() {
		rec, err := r.Read()
		if err != nil {
			t.Error(err)
		}
		got <- rec.RawSample
	}()
	time.Sleep(10 * time.Millisecond)
	if rb.Output([]byte("wake"), 0) != 0 {
		t.Fatal("Output failed")
	}
	if rec := <-got; string(rec) != "wake" {
		t.Fatalf("Read = %q", rec)
	}
	// Close wakes a blocked Read.
	done := make(chan error)
	go func() { _, err := r.Read(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
	}
	r2, err := rb.NewReader()
	if err != nil {
		t.Fatalf("reader after Close: %v", err)
	}
	r2.Close()
}

// TestRingBuf_ConcurrentProducers has two producers racing through a small
// ring while the reader drains it: every record arrives intact, in each
// producer's order, and records plus drops add up.
func TestRingBuf_ConcurrentProducers(t *testing.T) {
	rb := newRingBufT(t, 8192)
	r := newRingReader(t, rb)
	const producers = 3
	per := 20000
	if testing.Short() {
		per = 2000
	}
	var wg sync.WaitGroup
	var discarded atomic.Int64
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				size := 16 + i%48
				if i%2 == 0 {
					off, ok := rb.Reserve(uint64(size), 0)
					if !ok {
						continue
					}
					rec := rb.Data()[off : off+size]
					binary.NativeEndian.PutUint32(rec, uint32(p))
					binary.NativeEndian.PutUint32(rec[4:], uint32(i))
					for j := 8; j < size; j++ {
						rec[j] = byte(i)
					}
					if i%10 == 0 {
						discarded.Add(1)
						rb.Discard(off, 0)
					} else {
						rb.Submit(off, 0)
					}
					continue
				}
				rec := make([]byte, size)
				binary.NativeEndian.PutUint32(rec, uint32(p))
				binary.NativeEndian.PutUint32(rec[4:], uint32(i))
				for j := 8; j < size; j++ {
					rec[j] = byte(i)
				}
				rb.Output(rec, 0)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := [producers]int{-1, -1, -1}
	received := 0
	var rec Record
	for finished := false; ; {
		r.SetDeadline(time.Now().Add(50 * time.Millisecond))
		err := r.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if finished {
				break
			}
			select {
			case <-done:
				finished = true
			default:
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		p, i := binary.NativeEndian.Uint32(rec.RawSample), int(binary.NativeEndian.Uint32(rec.RawSample[4:]))
		if p >= producers || i <= last[p] || len(rec.RawSample) != 16+i%48 {
			t.Fatalf("record p%d #%d (%d bytes) after #%d", p, i, len(rec.RawSample), last[p])
		}
		for _, b := range rec.RawSample[8:] {
			if b != byte(i) {
				t.Fatalf("record p%d #%d is corrupt: %x", p, i, rec.RawSample)
			}
		}
		last[p] = i
		received++
	}
	if total := received + int(rb.Dropped()) + int(discarded.Load()); total != producers*per {
		t.Errorf("%d received + %d dropped + %d discarded = %d, want %d", received, rb.Dropped(), discarded.Load(), total, producers*per)
	}
}

// TestRingBufReader_NoLostWakeup ping-pongs single records between a
// producer and a blocked reader; a lost wakeup would stall a Read until its
// (generous) deadline.
func TestRingBufReader_NoLostWakeup(t *testing.T) {
	rb := newRingBufT(t, 4096)
	r := newRingReader(t, rb)
	got := make(chan uint32)
	go func() {
		defer close(got)
		var rec Record
		for {
			r.SetDeadline(time.Now().Add(10 * time.Second))
			if err := r.ReadInto(&rec); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Error(err)
				}
				return
			}
			got <- binary.NativeEndian.Uint32(rec.RawSample)
		}
	}()
	for i := uint32(0); i < 2000; i++ {
		if i%2 == 0 {
			if rb.Output(u32b(i), 0) != 0 {
				t.Fatal("Output failed")
			}
		} else {
			off, _ := rb.Reserve(4, 0)
			copy(rb.Data()[off:], u32b(i))
			rb.Submit(off, 0)
		}
		if v, ok := <-got; !ok || v != i {
			t.Fatalf("record %d: got %d (reader running: %v)", i, v, ok)
		}
	}
	r.Close()
	for range got {
	}
}
