package maps

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

func newPerfT(t testing.TB) *PerfEventArray {
	t.Helper()
	return mustNew(t, &ebpf.MapSpec{Name: "events", Type: ebpf.PerfEventArray}).(*PerfEventArray)
}

func readPerfNow(t *testing.T, r *PerfReader) PerfRecord {
	t.Helper()
	r.SetDeadline(time.Now().Add(-time.Second))
	rec, err := r.Read()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return rec
}

func TestPerfEventArray_Output(t *testing.T) {
	p := newPerfT(t)
	if got := p.Info().MaxEntries; got != 2 {
		t.Fatalf("MaxEntries %d, want the 2 CPUs", got)
	}
	if got := p.Output(0, PerfCurrentCPU, []byte("x"), nil); got != -linuxerr.ENOENT {
		t.Errorf("Output without a reader = %d, want -ENOENT", got)
	}
	r, err := p.NewReader(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := p.NewReader(4096); errnoOfErr(err) != syscall.EBUSY {
		t.Errorf("second reader: %v, want EBUSY", err)
	}
	for _, tc := range []struct {
		cpu   int
		flags uint64
		want  int64
	}{
		{0, PerfCurrentCPU | 1<<52, -linuxerr.EINVAL},
		{0, 2, -linuxerr.E2BIG},
		{0, 1, -linuxerr.EOPNOTSUPP}, // CPU 1's buffer from CPU 0
		{1, 1, 0},
		{0, PerfCurrentCPU, 0},
		{1, PerfCurrentCPU | 3<<32, 0}, // ctxlen bits are the helper layer's
	} {
		if got := p.Output(tc.cpu, tc.flags, []byte("data"), []byte("ctx")); got != tc.want {
			t.Errorf("Output(cpu %d, flags %#x) = %d, want %d", tc.cpu, tc.flags, got, tc.want)
		}
	}
	seen := map[int]int{}
	for i := 0; i < 3; i++ {
		rec := readPerfNow(t, r)
		if string(rec.RawSample) != "datactx" || rec.LostSamples != 0 {
			t.Fatalf("record %+v", rec)
		}
		seen[rec.CPU]++
	}
	if seen[0] != 1 || seen[1] != 2 {
		t.Errorf("records per CPU %v, want 1 on CPU 0 and 2 on CPU 1", seen)
	}
	r.SetDeadline(time.Now().Add(-time.Second))
	if _, err := r.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read on empty buffers: %v", err)
	}
}

func TestPerfEventArray_LostSamples(t *testing.T) {
	p := newPerfT(t)
	r, err := p.NewReader(4096) // one page per CPU
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sample := bytes.Repeat([]byte{7}, 1000)
	written := 0
	for p.Output(0, PerfCurrentCPU, sample, nil) == 0 {
		written++
	}
	const lost = 5
	for i := 1; i < lost; i++ {
		if got := p.Output(0, PerfCurrentCPU, sample, nil); got != -linuxerr.ENOSPC {
			t.Fatalf("Output on a full buffer = %d, want -ENOSPC", got)
		}
	}
	// Drain, then write once more: the loss is reported before that sample.
	for i := 0; i < written; i++ {
		if rec := readPerfNow(t, r); !bytes.Equal(rec.RawSample, sample) || rec.CPU != 0 {
			t.Fatalf("sample %d: %+v", i, rec)
		}
	}
	if p.Output(0, PerfCurrentCPU, []byte("after"), nil) != 0 {
		t.Fatal("Output after draining failed")
	}
	if rec := readPerfNow(t, r); rec.LostSamples != lost || len(rec.RawSample) != 0 {
		t.Fatalf("want a lost record of %d, got %+v", lost, rec)
	}
	if rec := readPerfNow(t, r); string(rec.RawSample) != "after" {
		t.Fatalf("got %+v, want the sample after the loss", rec)
	}
	// A loss with no later sample is reported when the buffer runs dry.
	for p.Output(1, PerfCurrentCPU, sample, nil) == 0 {
	}
	for {
		rec := readPerfNow(t, r)
		if rec.LostSamples != 0 {
			if rec.LostSamples != 1 || rec.CPU != 1 {
				t.Fatalf("lost record %+v, want 1 on CPU 1", rec)
			}
			break
		}
	}
}

func TestPerfReader_CloseUninstalls(t *testing.T) {
	p := newPerfT(t)
	r, err := p.NewReader(4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(u32b(1)); err != nil {
		t.Fatalf("Delete(1): %v", err)
	}
	if got := p.Output(1, PerfCurrentCPU, []byte("x"), nil); got != -linuxerr.ENOENT {
		t.Errorf("Output to a deleted entry = %d, want -ENOENT", got)
	}
	done := make(chan error)
	go func() { _, err := r.Read(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Errorf("blocked Read after Close: %v", err)
	}
	if got := p.Output(0, PerfCurrentCPU, []byte("x"), nil); got != -linuxerr.ENOENT {
		t.Errorf("Output after the reader closed = %d, want -ENOENT", got)
	}
	r2, err := p.NewReader(4096)
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
}
