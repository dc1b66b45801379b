package port

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// packetSource is what pcapgo's pcap and pcapng readers have in common.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// Pcap is a read-only port over a pcap or pcapng file of Ethernet frames.
type Pcap struct {
	name  string
	f     *os.File
	src   packetSource
	paced bool
	// start pairs the first frame's capture time with the wall clock,
	// for paced replay.
	first, start time.Time
	closed       atomic.Bool
	done         chan struct{}
}

// pcapngMagic is the block type of a pcapng section header.
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// OpenPcap opens a pcap or pcapng file (told apart by its first bytes)
// whose link type is Ethernet. paced replays at capture timing.
func OpenPcap(path string, paced bool) (*Pcap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pcap: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(4)
	var src packetSource
	if bytes.Equal(magic, pcapngMagic) {
		src, err = pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	} else {
		src, err = pcapgo.NewReader(br)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open pcap %s: %w", path, err)
	}
	if lt := src.LinkType(); lt != layers.LinkTypeEthernet {
		f.Close()
		return nil, fmt.Errorf("open pcap %s: link type %s, want Ethernet: %w", path, lt, syscall.EINVAL)
	}
	return &Pcap{name: "pcap:" + path, f: f, src: src, paced: paced, done: make(chan struct{})}, nil
}

func (p *Pcap) Name() string { return p.name }

// Read copies the next frames of the file into b, up to its size (Len
// keeps the captured length). At the end of the file it returns io.EOF.
// One goroutine reads; Close may come from another.
func (p *Pcap) Read(b *Batch) error {
	b.N = 0
	if p.closed.Load() {
		return ErrClosed
	}
	for b.N < len(b.Frames) {
		data, ci, err := p.src.ZeroCopyReadPacketData()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if b.N > 0 {
				return nil
			}
			return io.EOF
		}
		if err != nil {
			if p.closed.Load() {
				return ErrClosed
			}
			return fmt.Errorf("read %s: %w", p.name, err)
		}
		if p.paced && !p.pace(ci.Timestamp) {
			return ErrClosed
		}
		buf := b.bufs[b.N]
		n := copy(buf, data)
		b.Frames[b.N] = Frame{Data: buf[:n], Len: len(data), Time: ci.Timestamp}
		b.N++
		if p.paced {
			break // one frame at a time keeps the timing
		}
	}
	return nil
}

// pace waits until the frame's capture time, relative to the first frame,
// has come; false if the port was closed meanwhile.
func (p *Pcap) pace(ts time.Time) bool {
	if p.start.IsZero() {
		p.first, p.start = ts, time.Now()
		return true
	}
	wait := time.Until(p.start.Add(ts.Sub(p.first)))
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

// Write refuses: a pcap input is read only (outputs are PcapWriters).
func (p *Pcap) Write(fs []Frame) error {
	return fmt.Errorf("write %s: input pcaps are read only: %w", p.name, syscall.EBADF)
}

func (p *Pcap) Close() error {
	select {
	case <-p.done:
		return fmt.Errorf("close %s: %w", p.name, syscall.EBADF)
	default:
		close(p.done)
	}
	p.closed.Store(true)
	return p.f.Close()
}

// PcapWriter records frames into a pcap file (Ethernet, microsecond
// timestamps). It is safe for concurrent use: writes are serialised by a
// mutex, which only recording pays for.
type PcapWriter struct {
	path   string
	mu     sync.Mutex
	f      *os.File
	bw     *bufio.Writer
	w      *pcapgo.Writer
	count  uint64
	closed bool
}

// CreatePcap creates (truncates) path and writes the pcap file header.
func CreatePcap(path string) (*PcapWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create pcap: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return nil, fmt.Errorf("create pcap %s: %w", path, err)
	}
	return &PcapWriter{path: path, f: f, bw: bw, w: w}, nil
}

// Path is the file's path.
func (w *PcapWriter) Path() string { return w.path }

// Count is the number of frames written.
func (w *PcapWriter) Count() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}

// Write appends frames; a frame without a capture time gets the current
// time.
func (w *PcapWriter) Write(fs []Frame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("write pcap %s: %w", w.path, ErrClosed)
	}
	for i := range fs {
		if err := w.writeLocked(fs[i].Data, fs[i].Time); err != nil {
			return err
		}
	}
	return nil
}

// WriteFrame appends one frame.
func (w *PcapWriter) WriteFrame(data []byte, ts time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("write pcap %s: %w", w.path, ErrClosed)
	}
	return w.writeLocked(data, ts)
}

func (w *PcapWriter) writeLocked(data []byte, ts time.Time) error {
	if ts.IsZero() {
		ts = time.Now()
	}
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data)}
	if err := w.w.WritePacket(ci, data); err != nil {
		return fmt.Errorf("write pcap %s: %w", w.path, err)
	}
	w.count++
	return nil
}

// Flush writes buffered frames to the file.
func (w *PcapWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return w.bw.Flush()
}

// Close flushes and closes the file.
func (w *PcapWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("close pcap %s: %w", w.path, syscall.EBADF)
	}
	w.closed = true
	err := w.bw.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close pcap %s: %w", w.path, err)
	}
	return nil
}

// ReadPcapFile reads every frame of a pcap or pcapng file (for tests and
// tools; the datapath reads through Pcap).
func ReadPcapFile(path string) ([]Frame, error) {
	p, err := OpenPcap(path, false)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var out []Frame
	b := NewBatch(64, 1<<16)
	for {
		err := p.Read(b)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, f := range b.Frames[:b.N] {
			f.Data = bytes.Clone(f.Data)
			out = append(out, f)
		}
	}
}
