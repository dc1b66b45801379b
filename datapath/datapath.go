package datapath

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tcxgo/tcx/port"
	"github.com/tcxgo/tcx/userspace"
)

// Device binds one runtime device to the outside.
type Device struct {
	// Name and Ifindex name the runtime device.
	Name    string
	Ifindex int
	// Runtime is the runtime (network namespace) the device is in; nil
	// means Config.Runtime. Devices of several runtimes joined by veth
	// pairs (userspace.Runtime.AddVethPairTo) carry frames between
	// namespaces, which bpf_redirect_peer needs.
	Runtime *userspace.Runtime
	// MTU bounds frames read from its ports (MTU + 18 bytes with the
	// Ethernet header and one VLAN tag); 0 means 1500.
	MTU int
	// Wire is where the device's frames come from and what it transmits
	// leaves by; nil for a device without one (a veth end, a pure
	// output): transmitted frames are then only counted.
	Wire port.Port
	// Host is the device's host side: frames delivered by its ingress go
	// there, frames read from it run its egress. nil counts and discards.
	Host port.Port
	// Transmitted, Delivered and Dropped record the frames that met that
	// fate on this device (after every program's changes), when set.
	Transmitted, Delivered, Dropped *port.PcapWriter
}

// Config configures New.
type Config struct {
	Runtime *userspace.Runtime
	Devices []*Device
	// Batch is the frames read per system call (default 64).
	Batch int
	// Trace, when set, receives every frame's trip. It runs on the
	// worker's goroutine, under a mutex that then serialises the workers
	// (tracing is for looking, not for speed). Tracer collects the
	// program steps of Counted runners that share it.
	Trace  func(*Trip)
	Tracer *Tracer
}

// Trip is one frame's way through the runtime, as given to Config.Trace.
type Trip struct {
	Seq      uint64
	Device   string // where it came from
	FromWire bool
	In       []byte // the frame as read
	Outcome  userspace.Outcome
	At       string // name of the device the fate happened on
	// From and AtDevice are those devices (AtDevice nil when the fate
	// happened on an unbound one): names repeat across namespaces.
	From, AtDevice *Device
	// Steps are the programs that ran, in order (with a Tracer).
	Steps []Step
}

// Datapath is a running binding of devices to ports.
type Datapath struct {
	rt      *userspace.Runtime
	devs    []*devState
	spaces  []space // a handful: one per runtime
	batch   int
	trace   func(*Trip)
	tracer  *Tracer
	traceMu sync.Mutex
	seq     atomic.Uint64
	started atomic.Bool
}

type devState struct {
	*Device
	rt      *userspace.Runtime
	idx     int
	maxLen  int
	counter Counters
}

// space is the bound devices of one runtime, by ifindex.
type space struct {
	rt      *userspace.Runtime
	byIndex []*devState
}

// Counters of one device; read them with Datapath.Stats.
type Counters struct {
	// RxFrames came from the wire port, HostFrames from the host side.
	RxFrames   uint64 `json:"rx_frames"`
	RxBytes    uint64 `json:"rx_bytes"`
	HostFrames uint64 `json:"host_frames"`
	// Reads counts the reads (system calls, for live ports) that brought
	// frames in, from either side: frames per read is the batching.
	Reads uint64 `json:"reads"`
	// RxErrors are frames read from a port shorter than an Ethernet
	// header or longer than the MTU allows; they are not processed.
	RxErrors uint64 `json:"rx_errors"`
	// Fates of frames on this device.
	Transmitted uint64 `json:"transmitted"`
	Delivered   uint64 `json:"delivered"`
	Dropped     uint64 `json:"dropped"`
	Consumed    uint64 `json:"consumed"`
	Looped      uint64 `json:"looped"`
	// TxErrors are frames a port refused to send.
	TxErrors uint64 `json:"tx_errors"`
}

// New checks the configuration; Run starts it.
func New(cfg Config) (*Datapath, error) {
	if cfg.Runtime == nil {
		return nil, fmt.Errorf("new datapath: no runtime: %w", syscall.EINVAL)
	}
	d := &Datapath{rt: cfg.Runtime, batch: cfg.Batch, trace: cfg.Trace, tracer: cfg.Tracer}
	if d.batch <= 0 {
		d.batch = 64
	}
	for i, dev := range cfg.Devices {
		if dev == nil || dev.Ifindex <= 0 {
			return nil, fmt.Errorf("new datapath: device %d has no ifindex: %w", i, syscall.EINVAL)
		}
		rt := dev.Runtime
		if rt == nil {
			rt = cfg.Runtime
		}
		if got, ok := rt.Ifindex(dev.Name); !ok || got != dev.Ifindex {
			return nil, fmt.Errorf("new datapath: device %s (ifindex %d) is not in the runtime: %w", dev.Name, dev.Ifindex, syscall.ENODEV)
		}
		mtu := dev.MTU
		if mtu <= 0 {
			mtu = 1500
		}
		s := &devState{Device: dev, rt: rt, idx: i, maxLen: mtu + 18}
		d.devs = append(d.devs, s)
		sp := d.space(rt)
		if sp == nil {
			d.spaces = append(d.spaces, space{rt: rt})
			sp = &d.spaces[len(d.spaces)-1]
		}
		for len(sp.byIndex) <= dev.Ifindex {
			sp.byIndex = append(sp.byIndex, nil)
		}
		if sp.byIndex[dev.Ifindex] != nil {
			return nil, fmt.Errorf("new datapath: device %s bound twice: %w", dev.Name, syscall.EEXIST)
		}
		sp.byIndex[dev.Ifindex] = s
	}
	return d, nil
}

// Stats returns the counters of every device, in Config.Devices order,
// summed over the workers.
func (d *Datapath) Stats() []Counters {
	out := make([]Counters, len(d.devs))
	for i, s := range d.devs {
		out[i] = s.counter.load()
	}
	return out
}

// load reads counters that workers update atomically.
func (c *Counters) load() Counters {
	return Counters{
		RxFrames: atomic.LoadUint64(&c.RxFrames), RxBytes: atomic.LoadUint64(&c.RxBytes),
		HostFrames: atomic.LoadUint64(&c.HostFrames), RxErrors: atomic.LoadUint64(&c.RxErrors), Reads: atomic.LoadUint64(&c.Reads),
		Transmitted: atomic.LoadUint64(&c.Transmitted), Delivered: atomic.LoadUint64(&c.Delivered),
		Dropped: atomic.LoadUint64(&c.Dropped), Consumed: atomic.LoadUint64(&c.Consumed),
		Looped: atomic.LoadUint64(&c.Looped), TxErrors: atomic.LoadUint64(&c.TxErrors),
	}
}

// input is one port a worker reads.
type input struct {
	dev  *devState
	p    port.Port
	wire bool
}

// Run starts one worker per port (wire and host side) and returns when
// ctx is done, or when every port is a pcap and all have ended (live ports
// run until ctx ends), or when a port fails. It then closes every port,
// flushes and closes the recordings and returns the first error that is
// not an orderly end. Run can be called once.
func (d *Datapath) Run(ctx context.Context) error {
	if d.started.Swap(true) {
		return fmt.Errorf("run datapath: already started: %w", syscall.EBUSY)
	}
	var ins []input
	finite := 0
	for _, s := range d.devs {
		for _, in := range []input{{s, s.Wire, true}, {s, s.Host, false}} {
			if in.p == nil {
				continue
			}
			ins = append(ins, in)
			if _, ok := in.p.(*port.Pcap); ok {
				finite++
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
		ended    atomic.Int32
	)
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.NewWorker().pump(in.dev, in.wire, in.p)
			if err != nil && !errors.Is(err, port.ErrClosed) {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				cancel()
			}
			if _, ok := in.p.(*port.Pcap); ok && ended.Add(1) == int32(finite) && finite == len(ins) {
				cancel() // only pcaps, and all have ended
			}
		}()
	}
	if len(ins) == 0 {
		<-ctx.Done()
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		<-ctx.Done()
		for _, in := range ins {
			in.p.Close()
		}
	}()
	wg.Wait()
	cancel()
	<-closed
	// Every worker has stopped and every port is closed: flush the
	// recordings.
	var errs []error
	if firstErr != nil {
		errs = append(errs, firstErr)
	}
	for _, s := range d.devs {
		for _, w := range []*port.PcapWriter{s.Transmitted, s.Delivered, s.Dropped} {
			if w != nil {
				if err := w.Close(); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Worker pushes frames through the runtime and sends them on. Each worker
// is used by one goroutine; several run in parallel.
type Worker struct {
	d       *Datapath
	batch   *port.Batch
	pending [][]port.Frame // per device*2 + (0 wire, 1 host)
	scratch []byte
}

// bufSize leaves room for programs that grow a frame in place.
const bufSize = 16 << 10

// NewWorker returns a worker with its own buffers.
func (d *Datapath) NewWorker() *Worker {
	w := &Worker{d: d, batch: port.NewBatch(d.batch, bufSize), pending: make([][]port.Frame, 2*len(d.devs))}
	for i := range w.pending {
		w.pending[i] = make([]port.Frame, 0, d.batch)
	}
	return w
}

// Pump reads p until it ends (io.EOF: nil) or is closed (ErrClosed),
// pushing every frame through device ifindex of Config.Runtime: from the
// wire (Receive) or from the host side (Transmit).
func (w *Worker) Pump(ifindex int, wire bool, p port.Port) error {
	return w.pump(w.d.dev(w.d.rt, ifindex), wire, p)
}

func (w *Worker) pump(src *devState, wire bool, p port.Port) error {
	for {
		err := p.Read(w.batch)
		if w.batch.N > 0 {
			if w.d.trace != nil {
				w.d.traceMu.Lock()
				w.process(src, wire, w.batch.Frames[:w.batch.N])
				w.d.traceMu.Unlock()
			} else {
				w.process(src, wire, w.batch.Frames[:w.batch.N])
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Process pushes frames that arrived on device ifindex of Config.Runtime
// through the runtime and sends each where its fate puts it. It does not
// allocate.
func (w *Worker) Process(ifindex int, wire bool, frames []port.Frame) {
	w.process(w.d.dev(w.d.rt, ifindex), wire, frames)
}

func (w *Worker) process(src *devState, wire bool, frames []port.Frame) {
	d := w.d
	if src == nil {
		return
	}
	atomic.AddUint64(&src.counter.Reads, 1)
	for i := range frames {
		f := &frames[i]
		if f.Len < 14 || f.Len > src.maxLen || len(f.Data) != f.Len {
			atomic.AddUint64(&src.counter.RxErrors, 1)
			continue
		}
		if d.trace != nil {
			w.scratch = append(w.scratch[:0], f.Data...)
			if d.tracer != nil {
				d.tracer.Steps = d.tracer.Steps[:0]
			}
		}
		var out userspace.Outcome
		if wire {
			atomic.AddUint64(&src.counter.RxFrames, 1)
			atomic.AddUint64(&src.counter.RxBytes, uint64(f.Len))
			out = src.rt.Receive(src.Ifindex, f.Data)
		} else {
			atomic.AddUint64(&src.counter.HostFrames, 1)
			out = src.rt.Transmit(src.Ifindex, f.Data)
		}
		at := d.dev(out.Runtime, out.Ifindex)
		if d.trace != nil {
			name, atDev := "", (*Device)(nil)
			if at != nil {
				name, atDev = at.Name, at.Device
			}
			trip := &Trip{Seq: d.seq.Add(1), Device: src.Name, FromWire: wire, In: w.scratch, Outcome: out, At: name, From: src.Device, AtDevice: atDev}
			if d.tracer != nil {
				trip.Steps = d.tracer.Steps
			}
			d.trace(trip)
		}
		if at == nil {
			continue // an unbound device: nothing to count it on
		}
		fr := port.Frame{Data: out.Frame, Len: len(out.Frame), Time: f.Time}
		switch out.Fate {
		case userspace.Transmitted:
			atomic.AddUint64(&at.counter.Transmitted, 1)
			record(at.Transmitted, fr)
			if at.Wire != nil {
				w.queue(at, 0, fr)
			}
		case userspace.Delivered:
			atomic.AddUint64(&at.counter.Delivered, 1)
			record(at.Delivered, fr)
			if at.Host != nil {
				w.queue(at, 1, fr)
			}
		case userspace.Dropped:
			atomic.AddUint64(&at.counter.Dropped, 1)
			record(at.Dropped, fr)
		case userspace.Consumed:
			atomic.AddUint64(&at.counter.Consumed, 1)
		case userspace.Looped:
			atomic.AddUint64(&at.counter.Looped, 1)
		}
	}
	w.Flush()
}

func record(pw *port.PcapWriter, f port.Frame) {
	if pw != nil {
		_ = pw.WriteFrame(f.Data, f.Time) // a full disk shows in Close's error
	}
}

// dev is the bound device ifindex of runtime rt (nil: Config.Runtime).
func (d *Datapath) dev(rt *userspace.Runtime, ifindex int) *devState {
	if rt == nil {
		rt = d.rt
	}
	sp := d.space(rt)
	if sp == nil || ifindex <= 0 || ifindex >= len(sp.byIndex) {
		return nil
	}
	return sp.byIndex[ifindex]
}

func (d *Datapath) space(rt *userspace.Runtime) *space {
	for i := range d.spaces {
		if d.spaces[i].rt == rt {
			return &d.spaces[i]
		}
	}
	return nil
}

func (w *Worker) queue(s *devState, side int, f port.Frame) {
	i := 2*s.idx + side
	w.pending[i] = append(w.pending[i], f)
	if len(w.pending[i]) == cap(w.pending[i]) {
		w.flushOne(i)
	}
}

// Flush sends every queued frame.
func (w *Worker) Flush() {
	for i := range w.pending {
		if len(w.pending[i]) > 0 {
			w.flushOne(i)
		}
	}
}

func (w *Worker) flushOne(i int) {
	s := w.d.devs[i/2]
	p := s.Wire
	if i%2 == 1 {
		p = s.Host
	}
	if err := p.Write(w.pending[i]); err != nil {
		atomic.AddUint64(&s.counter.TxErrors, 1)
	}
	w.pending[i] = w.pending[i][:0]
}
