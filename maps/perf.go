package maps

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// Flags of bpf_perf_event_output.
const (
	PerfIndexMask  = 0xffffffff    // BPF_F_INDEX_MASK
	PerfCurrentCPU = PerfIndexMask // BPF_F_CURRENT_CPU
	PerfCtxLenMask = 0xfffff << 32 // BPF_F_CTXLEN_MASK
)

// PerfEventArray is BPF_MAP_TYPE_PERF_EVENT_ARRAY with one output buffer
// per CPU. In the kernel each entry is a perf event fd a reader installs;
// here NewReader installs one buffer per entry (entry i belongs to CPU i)
// and Close removes them, so output without a reader fails with ENOENT as
// it does in the kernel.
type PerfEventArray struct {
	base
	unsupported
	n      uint32
	bufs   []atomic.Pointer[perfBuf]
	wake   *notifier
	reader atomic.Bool
}

type perfBuf struct {
	r    *ring
	lost atomic.Uint64
}

func newPerfEventArray(i Info, opts Options) (*PerfEventArray, error) {
	// cilium/ebpf's fixup: sizes default to 4, entries to (at most) the
	// number of CPUs.
	if i.KeySize == 0 {
		i.KeySize = 4
	}
	if i.ValueSize == 0 {
		i.ValueSize = 4
	}
	if n := uint32(opts.numCPU()); i.MaxEntries == 0 || i.MaxEntries > n {
		i.MaxEntries = n
	}
	if err := fdArrayCheck(i); err != nil {
		return nil, err
	}
	p := &PerfEventArray{base: base{info: i}, n: i.MaxEntries, bufs: make([]atomic.Pointer[perfBuf], i.MaxEntries), wake: newNotifier()}
	p.unsupported = unsupported{&p.base}
	return p, nil
}

// Output is bpf_perf_event_output from a program running on cpu: the
// sample is data followed by ctx (the helper layer passes the ctxlen bytes
// of packet that BPF_F_CTXLEN_MASK asks for). It returns 0, -EINVAL for bad
// flags, -E2BIG for an index beyond the map, -ENOENT without a reader,
// -EOPNOTSUPP for another CPU's buffer and -ENOSPC when the buffer is full
// (the sample is counted as lost and reported to the reader).
func (p *PerfEventArray) Output(cpu int, flags uint64, data, ctx []byte) int64 {
	if flags&^(PerfIndexMask|PerfCtxLenMask) != 0 {
		return -linuxerr.EINVAL
	}
	index := flags & PerfIndexMask
	if index == PerfCurrentCPU {
		index = uint64(uint32(cpu))
	}
	if index >= uint64(p.n) {
		return -linuxerr.E2BIG
	}
	pb := p.bufs[index].Load()
	if pb == nil {
		return -linuxerr.ENOENT
	}
	if index != uint64(uint32(cpu)) {
		return -linuxerr.EOPNOTSUPP
	}
	// Like perf, a loss is reported in the stream just before the next
	// sample that fits, in the same reservation as that sample.
	if lost := pb.lost.Swap(0); lost != 0 {
		off, ok := pb.r.reserve(uint64(8 + len(data) + len(ctx)))
		if !ok {
			pb.lost.Add(lost + 1)
			return -linuxerr.ENOSPC
		}
		binary.NativeEndian.PutUint64(pb.r.buf.b[off:], lost)
		copy(pb.r.buf.b[off+8:], data)
		copy(pb.r.buf.b[off+8+len(data):], ctx)
		pb.r.commit(off, ringLost, 0)
		return 0
	}
	if !pb.r.output(data, ctx, 0, 0) {
		pb.lost.Add(1)
		return -linuxerr.ENOSPC
	}
	return 0
}

// Delete removes entry key's buffer, as deleting a perf event fd does.
func (p *PerfEventArray) Delete(key []byte) error {
	if err := p.userDelete(key); err != nil {
		return err
	}
	index := binary.NativeEndian.Uint32(key)
	if index >= p.n {
		return fmt.Errorf("map delete: index %d of %d: %w", index, p.n, syscall.E2BIG)
	}
	if p.bufs[index].Swap(nil) == nil {
		return errnoErr("delete", syscall.ENOENT)
	}
	return nil
}

func (p *PerfEventArray) NextKey(key, nextOut []byte) error {
	return arrayNextKey(&p.base, p.n, key, nextOut)
}

// PerfRecord is one sample, or a report of lost samples, from one CPU.
type PerfRecord struct {
	CPU         int
	RawSample   []byte
	LostSamples uint64
	// Remaining is the number of bytes left in this CPU's buffer.
	Remaining int
}

// PerfReader reads all CPUs' buffers of a PerfEventArray. Within a CPU
// records come in order; across CPUs there is no order. Read must not be
// called concurrently; Close and SetDeadline may be called from any
// goroutine.
type PerfReader struct {
	readerState
	p       *PerfEventArray
	bufs    []*perfBuf
	pending [][]byte // a sample that followed a lost record, per CPU
	next    int
}

// NewReader installs a buffer of perCPUBuffer bytes (rounded up to a power
// of two number of pages) for every entry; EBUSY if a reader is open.
func (p *PerfEventArray) NewReader(perCPUBuffer int) (*PerfReader, error) {
	if perCPUBuffer <= 0 {
		return nil, fmt.Errorf("perf reader: buffer size %d: %w", perCPUBuffer, syscall.EINVAL)
	}
	if !p.reader.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("perf reader: another reader is open: %w", syscall.EBUSY)
	}
	size := uint64(nextPow2((perCPUBuffer + pageSize - 1) / pageSize * pageSize))
	r := &PerfReader{readerState: newReaderState(), p: p, pending: make([][]byte, len(p.bufs))}
	for i := range p.bufs {
		pb := &perfBuf{r: newRing(size, p.wake)}
		r.bufs = append(r.bufs, pb)
		p.bufs[i].Store(pb)
	}
	return r, nil
}

// Read waits for the next record of any CPU.
func (r *PerfReader) Read() (PerfRecord, error) {
	var rec PerfRecord
	err := r.ReadInto(&rec)
	return rec, err
}

// ReadInto waits for the next record, reusing rec.RawSample's memory.
func (r *PerfReader) ReadInto(rec *PerfRecord) error {
	return r.wait(r.p.wake, func() (bool, error) {
		for range r.bufs {
			cpu := r.next
			r.next = (r.next + 1) % len(r.bufs)
			pb := r.bufs[cpu]
			if r.pending[cpu] != nil {
				*rec = PerfRecord{CPU: cpu, RawSample: append(rec.RawSample[:0], r.pending[cpu]...), Remaining: pb.r.pending()}
				r.pending[cpu] = nil
				return true, nil
			}
			st, flags := pb.r.consume(&rec.RawSample)
			switch st {
			case recordCorrupt:
				return false, fmt.Errorf("perf read: corrupt record on cpu %d: %w", cpu, syscall.EBADMSG)
			case recordNone:
				// Losses not yet followed by a sample are reported now.
				if n := pb.lost.Swap(0); n != 0 {
					*rec = PerfRecord{CPU: cpu, LostSamples: n, RawSample: rec.RawSample[:0]}
					return true, nil
				}
				continue
			}
			rec.CPU, rec.LostSamples, rec.Remaining = cpu, 0, pb.r.pending()
			if flags&ringLost != 0 {
				rec.LostSamples = binary.NativeEndian.Uint64(rec.RawSample)
				r.pending[cpu] = append([]byte{}, rec.RawSample[8:]...)
				rec.RawSample = rec.RawSample[:0]
			}
			return true, nil
		}
		return false, nil
	})
}

// Close removes the buffers from the map and stops the reader.
func (r *PerfReader) Close() error {
	r.close(func() {
		for i, pb := range r.bufs {
			r.p.bufs[i].CompareAndSwap(pb, nil)
		}
		r.p.reader.Store(false)
	})
	return nil
}
