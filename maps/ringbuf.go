package maps

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

const pageSize = 4096

// BPF_RB_* query flags of bpf_ringbuf_query.
const (
	RingAvailData = 0
	RingRingSize  = 1
	RingConsPos   = 2
	RingProdPos   = 3
)

// RingBuf is BPF_MAP_TYPE_RINGBUF: one multi-producer ring shared by all
// CPUs, MaxEntries bytes (a power of two multiple of the page size).
//
// Programs reserve a record, write it through the pointer they got and
// submit or discard it. Reserve returns the record's offset in Data(); the
// bytes Data()[off:off+size] stay put, zeroed and this program's alone
// until Submit or Discard, so a VM can map exactly that window as a per-run
// region and turn the program's pointer back into off on submit. Record
// headers sit right before each window: a VM must not give programs the
// whole of Data().
type RingBuf struct {
	base
	unsupported
	r       *ring
	dropped atomic.Uint64
	reader  atomic.Bool
}

func newRingBuf(i Info, opts Options) (*RingBuf, error) {
	size := uint64(i.MaxEntries)
	switch {
	case i.Flags&^FlagNumaNode != 0:
		return nil, fmt.Errorf("create map %q: flags %#x: %w", i.Name, i.Flags, syscall.EINVAL)
	case i.KeySize != 0 || i.ValueSize != 0:
		return nil, fmt.Errorf("create map %q: ring buffers have no key or value size: %w", i.Name, syscall.EINVAL)
	case size == 0 || size&(size-1) != 0 || size%pageSize != 0:
		return nil, fmt.Errorf("create map %q: size %d is not a power of two multiple of %d: %w", i.Name, size, pageSize, syscall.EINVAL)
	}
	if err := checkMemory(i, opts, int64(2*size)); err != nil {
		return nil, err
	}
	rb := &RingBuf{base: base{info: i}, r: newRing(size, newNotifier())}
	rb.unsupported = unsupported{&rb.base}
	return rb, nil
}

// Data is the ring's memory, the region record pointers point into.
func (rb *RingBuf) Data() []byte { return rb.r.buf.b }

// Reserve is bpf_ringbuf_reserve: the offset in Data() of size bytes of
// record memory (zeroed), or false when the ring is full (counted as a
// drop), size is too large or flags is not 0.
func (rb *RingBuf) Reserve(size uint64, flags uint64) (int, bool) {
	if flags != 0 {
		return 0, false
	}
	off, ok := rb.r.reserve(size)
	if !ok {
		rb.dropped.Add(1)
	}
	return off, ok
}

// Submit is bpf_ringbuf_submit for the record at off; it reports false
// (and changes nothing) if off is not a reserved, uncommitted record.
func (rb *RingBuf) Submit(off int, flags uint64) bool { return rb.r.commit(off, 0, flags) }

// Discard is bpf_ringbuf_discard: the reader skips the record.
func (rb *RingBuf) Discard(off int, flags uint64) bool {
	return rb.r.commit(off, ringDiscard, flags)
}

// Output is bpf_ringbuf_output: 0, -EINVAL for unknown flags or -EAGAIN
// when the record does not fit (counted as a drop).
func (rb *RingBuf) Output(data []byte, flags uint64) int64 {
	if flags&^(RingNoWakeup|RingForceWakeup) != 0 {
		return -linuxerr.EINVAL
	}
	if !rb.r.output(data, nil, 0, flags) {
		rb.dropped.Add(1)
		return -linuxerr.EAGAIN
	}
	return 0
}

// Query is bpf_ringbuf_query.
func (rb *RingBuf) Query(flags uint64) uint64 {
	switch flags {
	case RingAvailData:
		return uint64(rb.r.pending())
	case RingRingSize:
		return rb.r.size
	case RingConsPos:
		return rb.r.cons.Load()
	case RingProdPos:
		return rb.r.prod.Load()
	}
	return 0
}

// Dropped counts records that did not fit (failed Reserve and Output).
func (rb *RingBuf) Dropped() uint64 { return rb.dropped.Load() }

// Record is one ring buffer sample.
type Record struct {
	RawSample []byte
	// Remaining is the number of bytes still in the ring after this record.
	Remaining int
}

// RingBufReader consumes a RingBuf in order. One reader may exist per ring
// at a time. Read must not be called concurrently; Close and SetDeadline
// may be called from any goroutine.
type RingBufReader struct {
	readerState
	rb *RingBuf
}

// NewReader opens the ring's consumer side (EBUSY if a reader is open).
func (rb *RingBuf) NewReader() (*RingBufReader, error) {
	if !rb.reader.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("ringbuf reader: another reader is open: %w", syscall.EBUSY)
	}
	return &RingBufReader{readerState: newReaderState(), rb: rb}, nil
}

// Read waits for the next record.
func (r *RingBufReader) Read() (Record, error) {
	var rec Record
	err := r.ReadInto(&rec)
	return rec, err
}

// ReadInto waits for the next record and stores it in rec, reusing
// rec.RawSample's memory.
func (r *RingBufReader) ReadInto(rec *Record) error {
	return r.wait(r.rb.r.wake, func() (bool, error) {
		switch st, _ := r.rb.r.consume(&rec.RawSample); st {
		case recordData:
			rec.Remaining = r.rb.r.pending()
			return true, nil
		case recordCorrupt:
			return false, fmt.Errorf("ringbuf read: corrupt record header at %d: %w", r.rb.r.cons.Load(), syscall.EBADMSG)
		}
		return false, nil
	})
}

// AvailableBytes is the number of bytes reserved but not yet read.
func (r *RingBufReader) AvailableBytes() int { return r.rb.r.pending() }

// Close stops the reader; a blocked Read returns os.ErrClosed.
func (r *RingBufReader) Close() error {
	r.close(func() { r.rb.reader.Store(false) })
	return nil
}

// readerState is what ring buffer and perf readers share: a deadline, a
// way to interrupt a blocked Read and a once-only close.
type readerState struct {
	mu       sync.Mutex // serialises Read
	deadline atomic.Int64
	kick     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func newReaderState() readerState {
	return readerState{kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// SetDeadline makes Read return os.ErrDeadlineExceeded once t passes with
// no record; the zero time blocks forever. It applies to a Read in progress.
func (s *readerState) SetDeadline(t time.Time) {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	s.deadline.Store(ns)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// close wakes a blocked Read, waits for it to return and runs release once.
func (s *readerState) close(release func()) {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		release()
		s.mu.Unlock()
	})
}

// wait calls try until it yields a record or an error, sleeping on n
// between attempts until the reader closes or the deadline passes.
func (s *readerState) wait(n *notifier, try func() (bool, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("read: %w", os.ErrClosed)
		default:
		}
		if ok, err := try(); ok || err != nil {
			return err
		}
		// Announce the sleep, then look again: a producer that committed
		// in between either is seen now or sees waiting and signals.
		n.waiting.Store(true)
		ok, err := try()
		if ok || err != nil {
			n.waiting.Store(false)
			return err
		}
		var timeout <-chan time.Time
		if d := s.deadline.Load(); d != 0 {
			left := time.Until(time.Unix(0, d))
			if left <= 0 {
				n.waiting.Store(false)
				return fmt.Errorf("read: %w", os.ErrDeadlineExceeded)
			}
			if timer == nil {
				timer = time.NewTimer(left)
			} else {
				timer.Reset(left)
			}
			timeout = timer.C
		}
		select {
		case <-n.ch:
		case <-s.kick:
		case <-timeout:
		case <-s.done:
		}
		n.waiting.Store(false)
	}
}
