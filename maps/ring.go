package maps

import (
	"encoding/binary"
	"sync/atomic"
)

// ring is the record ring of BPF_MAP_TYPE_RINGBUF (and of each perf event
// buffer here): 8-byte headers {u32 len | busy | discard, u32 pg_off}
// followed by the data, records rounded up to 8 bytes, a producer and a
// consumer position that only grow.
//
// The kernel maps the data pages twice in a row so that a record wrapping
// the end stays contiguous; here the buffer is twice the ring size and a
// wrapping record simply continues past the end. Headers always start
// inside the first half. Producers reserve space lock-free with a CAS on
// the producer position and then write their header; a header still zero
// means "reserved, not written yet", which works because the consumer zeroes
// every record it consumes (see RATIONALE.md).
type ring struct {
	size uint64 // a power of two
	mask uint64
	buf  wordBuf // 2*size bytes
	prod atomic.Uint64
	cons atomic.Uint64
	wake *notifier
}

const (
	ringHdrSize   = 8
	ringBusy      = 1 << 31
	ringDiscard   = 1 << 30
	ringLost      = 1 << 29 // perf buffers: the record carries a lost-samples count
	ringMaxRecord = (1<<32 - 1) / 4

	// BPF_RB_* flags of bpf_ringbuf_submit/discard/output.
	RingNoWakeup    = 1
	RingForceWakeup = 2
)

// notifier wakes a blocked reader. Producers only touch the channel when a
// reader announced it is about to sleep, so the packet path normally costs
// one atomic load.
type notifier struct {
	waiting atomic.Bool
	ch      chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{}, 1)} }

func (n *notifier) signal() {
	if n.waiting.Load() {
		select {
		case n.ch <- struct{}{}:
		default:
		}
	}
}

func newRing(size uint64, wake *notifier) *ring {
	return &ring{size: size, mask: size - 1, buf: newWordBuf(int(2 * size)), wake: wake}
}

func hdrWord(ln, pgoff uint32) uint64 {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:], ln)
	binary.NativeEndian.PutUint32(b[4:], pgoff)
	return binary.NativeEndian.Uint64(b[:])
}

func hdrSplit(w uint64) (ln, pgoff uint32) {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], w)
	return binary.NativeEndian.Uint32(b[0:]), binary.NativeEndian.Uint32(b[4:])
}

// pgoff is what a header at physical offset phys stores in pg_off: never 0,
// so a written header is told apart from zeroed memory.
func pgoff(phys uint64) uint32 { return uint32(phys>>12) + 1 }

// reserve is __bpf_ringbuf_reserve: the offset in buf of size bytes of
// record data, marked busy until commit.
func (r *ring) reserve(size uint64) (int, bool) {
	if size > ringMaxRecord {
		return 0, false
	}
	ln := (size + ringHdrSize + 7) &^ 7
	if ln > r.size {
		return 0, false
	}
	var p uint64
	for {
		cons := r.cons.Load()
		p = r.prod.Load()
		if p+ln-cons > r.mask {
			return 0, false
		}
		if r.prod.CompareAndSwap(p, p+ln) {
			break
		}
	}
	phys := p & r.mask
	atomic.StoreUint64(&r.buf.w[phys/8], hdrWord(uint32(size)|ringBusy, pgoff(phys)))
	return int(phys) + ringHdrSize, true
}

// commit is bpf_ringbuf_commit: it clears the busy bit of the record at
// off (adding extra, e.g. ringDiscard) and wakes the reader if it waits for
// this record. It refuses offsets that are not a reserved record.
func (r *ring) commit(off int, extra uint32, flags uint64) bool {
	phys := uint64(off) - ringHdrSize
	if off < ringHdrSize || phys >= r.size || phys%8 != 0 {
		return false
	}
	w := &r.buf.w[phys/8]
	for {
		old := atomic.LoadUint64(w)
		ln, pg := hdrSplit(old)
		if ln&ringBusy == 0 || pg != pgoff(phys) {
			return false
		}
		if atomic.CompareAndSwapUint64(w, old, hdrWord(ln&^ringBusy|extra, pg)) {
			break
		}
	}
	if flags&RingForceWakeup != 0 || (flags&RingNoWakeup == 0 && r.cons.Load()&r.mask == phys) {
		r.wake.signal()
	}
	return true
}

// output is reserve, copy and commit (bpf_ringbuf_output).
func (r *ring) output(data, more []byte, extra uint32, flags uint64) bool {
	off, ok := r.reserve(uint64(len(data) + len(more)))
	if !ok {
		return false
	}
	copy(r.buf.b[off:], data)
	copy(r.buf.b[off+len(data):], more)
	return r.commit(off, extra, flags)
}

// recordState is what the consumer finds at its position.
type recordState int

const (
	recordNone    recordState = iota // nothing committed at the consumer position
	recordData                       // a record, copied out
	recordCorrupt                    // the header is not one a producer wrote
)

// consume copies the next committed record into *dst (reusing its memory),
// skipping discarded records, zeroes the space and releases it. The lost
// flag of the record is returned with it. Only one goroutine may consume.
func (r *ring) consume(dst *[]byte) (st recordState, flags uint32) {
	for {
		c := r.cons.Load()
		p := r.prod.Load()
		if c == p {
			return recordNone, 0
		}
		phys := c & r.mask
		h := atomic.LoadUint64(&r.buf.w[phys/8])
		ln, pg := hdrSplit(h)
		if h == 0 || ln&ringBusy != 0 {
			return recordNone, 0
		}
		size := uint64(ln &^ (ringBusy | ringDiscard | ringLost))
		total := (size + ringHdrSize + 7) &^ 7
		if pg != pgoff(phys) || total > p-c {
			return recordCorrupt, 0
		}
		if ln&ringDiscard == 0 {
			*dst = append((*dst)[:0], r.buf.b[phys+ringHdrSize:phys+ringHdrSize+size]...)
		}
		clear(r.buf.b[phys : phys+total])
		r.cons.Store(c + total)
		if ln&ringDiscard == 0 {
			return recordData, ln & ringLost
		}
	}
}

// pending is the number of bytes reserved and not yet consumed.
func (r *ring) pending() int { return int(r.prod.Load() - r.cons.Load()) }
