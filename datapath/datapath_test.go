package datapath_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/dptraffic"
	"github.com/tcxgo/tcx/port"
	"github.com/tcxgo/tcx/topology"
	"github.com/tcxgo/tcx/userspace"
)

func buildChain(t testing.TB, workers int) *topology.Built {
	t.Helper()
	topo := chainTopology()
	topo.Workers = workers
	b, err := topo.Build(topology.BuildOptions{NoPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// captureFrames is Mixed with one runt and one oversized frame added.
func captureFrames(n int) []port.Frame {
	fs := dptraffic.Mixed(n, 3)
	runt := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
	big := dptraffic.UDP(dptraffic.InsideIP, dptraffic.ServerIP, 1, 2, make([]byte, 2000))
	return append(fs, port.Frame{Data: runt, Len: len(runt)}, port.Frame{Data: big, Len: len(big)})
}

// A pcap replayed pcap to pcap: every frame is counted once, runts and
// frames over the MTU as receive errors, and the recordings hold exactly
// the transmitted and dropped frames.
func TestRun_PcapToPcap(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pcap")
	frames := captureFrames(3000)
	if err := dptraffic.WritePcap(in, frames); err != nil {
		t.Fatal(err)
	}
	topo := chainTopology()
	topo.Devices[0].Wire = "pcap:" + in
	topo.Devices[0].Record.Dropped = filepath.Join(dir, "dropped.pcap")
	topo.Devices[1].Record.Transmitted = filepath.Join(dir, "tx.pcap")
	b, err := topo.Build(topology.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dp, err := datapath.New(datapath.Config{Runtime: b.Runtime, Devices: b.Devices, Batch: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := dp.Stats()
	if st[0].RxFrames != 3000 || st[0].RxErrors != 2 {
		t.Errorf("eth0: rx %d, rx errors %d; want 3000 and 2", st[0].RxFrames, st[0].RxErrors)
	}
	if st[0].Dropped+st[1].Transmitted != 3000 || st[0].Dropped == 0 {
		t.Errorf("fates: %d dropped + %d transmitted, want 3000 with some drops", st[0].Dropped, st[1].Transmitted)
	}
	tx, err := port.ReadPcapFile(filepath.Join(dir, "tx.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := port.ReadPcapFile(filepath.Join(dir, "dropped.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(tx)) != st[1].Transmitted || uint64(len(dropped)) != st[0].Dropped {
		t.Errorf("recordings: %d transmitted, %d dropped frames; counters say %d and %d", len(tx), len(dropped), st[1].Transmitted, st[0].Dropped)
	}
	for _, p := range b.Programs {
		if s := p.Stats(); s.Runs == 0 || s.Faults != 0 {
			t.Errorf("%s: %+v", s.Name, s)
		}
	}
}

// Cancelling a run whose input never ends (what SIGINT does to tcx run)
// returns promptly with every recording complete on disk.
func TestRun_CancelFlushes(t *testing.T) {
	dir := t.TempDir()
	b := buildChain(t, 1)
	rec, err := port.CreatePcap(filepath.Join(dir, "tx.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	b.Devices[1].Transmitted = rec
	wire := newChanPort()
	b.Devices[0].Wire = wire
	dp, err := datapath.New(datapath.Config{Runtime: b.Runtime, Devices: b.Devices})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()
	for _, f := range dptraffic.Demo()[:4] {
		wire.in <- f.Data
	}
	for dp.Stats()[1].Transmitted < 4 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of the cancel")
	}
	got, err := port.ReadPcapFile(filepath.Join(dir, "tx.pcap"))
	if err != nil || len(got) != 4 {
		t.Fatalf("recording after cancel: %d frames, %v; want 4", len(got), err)
	}
}

// chanPort is a live port fed by a channel.
type chanPort struct {
	in   chan []byte
	done chan struct{}
	once sync.Once
}

func newChanPort() *chanPort { return &chanPort{in: make(chan []byte), done: make(chan struct{})} }

func (c *chanPort) Name() string { return "chan" }
func (c *chanPort) Read(b *port.Batch) error {
	b.N = 0
	select {
	case f := <-c.in:
		n := copy(b.Buf(0), f)
		b.Frames[0] = port.Frame{Data: b.Buf(0)[:n], Len: len(f)}
		b.N = 1
		return nil
	case <-c.done:
		return port.ErrClosed
	}
}
func (c *chanPort) Write([]port.Frame) error { return nil }
func (c *chanPort) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// The packet path (read batch -> runtime -> chain of four ELF programs ->
// queue for the wire) allocates nothing: with the ACL blocking a port the
// traffic does not use, and with it dropping TCP to 9090 and reporting each
// drop with bpf_trace_printk to a printk writer.
func TestWorker_Process_ZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	for _, c := range []struct {
		name    string
		blocked int
		printk  *printkCounter
	}{{"no drops", 1, nil}, {"drops with bpf_printk", int(dptraffic.BlockedTCP), &printkCounter{}}} {
		t.Run(c.name, func(t *testing.T) {
			topo := chainTopology()
			topo.Objects[1].Set["blocked_port"] = c.blocked
			opts := topology.BuildOptions{NoPorts: true}
			if c.printk != nil {
				opts.Printk = c.printk
			}
			b, err := topo.Build(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			b.Devices[1].Wire = port.Discard()
			dp, err := datapath.New(datapath.Config{Runtime: b.Runtime, Devices: b.Devices})
			if err != nil {
				t.Fatal(err)
			}
			w := dp.NewWorker()
			src := dptraffic.Mixed(64, 5)
			batch := port.NewBatch(len(src), 4096)
			fill := func() {
				for i, f := range src {
					n := copy(batch.Buf(i), f.Data)
					batch.Frames[i] = port.Frame{Data: batch.Buf(i)[:n], Len: n}
				}
			}
			step := func() {
				fill()
				w.Process(b.Devices[0].Ifindex, true, batch.Frames)
			}
			step()
			if n := testing.AllocsPerRun(50, step); n != 0 {
				t.Errorf("Process of a 64-frame batch: %v allocations", n)
			}
			if c.printk != nil && (c.printk.lines == 0 || !bytes.HasPrefix(c.printk.last, []byte("dp_acl: drop tcp port 9090"))) {
				t.Errorf("printk: %d lines, last %q; want drops reported", c.printk.lines, c.printk.last)
			}
		})
	}
}

// printkCounter counts bpf_printk lines and keeps the last in its own
// buffer.
type printkCounter struct {
	lines int
	last  []byte
}

func (p *printkCounter) Write(b []byte) (int, error) {
	p.lines++
	p.last = append(p.last[:0], b...)
	return len(b), nil
}

// Workers run in parallel on one runtime (-race): counters add up.
func TestWorker_Parallel(t *testing.T) {
	const workers, rounds = 4, 50
	b := buildChain(t, workers)
	b.Devices[1].Wire = port.Discard()
	dp, err := datapath.New(datapath.Config{Runtime: b.Runtime, Devices: b.Devices})
	if err != nil {
		t.Fatal(err)
	}
	src := dptraffic.Mixed(64, 9)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := dp.NewWorker()
			batch := port.NewBatch(len(src), 4096)
			for range rounds {
				for i, f := range src {
					n := copy(batch.Buf(i), f.Data)
					batch.Frames[i] = port.Frame{Data: batch.Buf(i)[:n], Len: n}
				}
				w.Process(b.Devices[0].Ifindex, true, batch.Frames)
			}
		}()
	}
	wg.Wait()
	st := dp.Stats()
	want := uint64(workers * rounds * len(src))
	if st[0].RxFrames != want || st[0].Dropped+st[1].Transmitted != want {
		t.Errorf("rx %d, dropped %d + transmitted %d; want %d", st[0].RxFrames, st[0].Dropped, st[1].Transmitted, want)
	}
	for _, p := range b.Programs {
		s := p.Stats()
		if s.Next+s.Pass+s.Drop+s.Redirect+s.Other != s.Runs {
			t.Errorf("%s: verdicts do not add up to runs: %+v", s.Name, s)
		}
	}
}

// A program that faults is counted on its runner and its frame dropped.
func TestCounted_Fault(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"oob": {
		Name: "oob", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{
			// r2 = skb->data; r0 = *(u8 *)(r2 + 4000): no bounds check
			asm.LoadMem(asm.R2, asm.R1, 76, asm.Word),
			asm.LoadMem(asm.R0, asm.R2, 4000, asm.Byte),
			asm.Mov.Imm(asm.R0, -1),
			asm.Return(),
		},
	}}}
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1})
	if err != nil {
		t.Skipf("the engine refuses the faulting program at load time: %v", err)
	}
	defer coll.Close()
	rt := userspace.New()
	eth0, _ := rt.AddDevice("eth0")
	prog := coll.Programs["oob"]
	c := datapath.Count("oob", engine.NewRunner(prog), prog.Faults)
	h, err := rt.NewProgram("oob", c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tcx.AttachLink(rt, eth0, tcx.Ingress, h, nil, 0); err != nil {
		t.Fatal(err)
	}
	tr := &datapath.Tracer{}
	c.Trace(tr)
	var trips []datapath.Step
	dp, err := datapath.New(datapath.Config{Runtime: rt, Devices: []*datapath.Device{{Name: "eth0", Ifindex: eth0}},
		Tracer: tr, Trace: func(tp *datapath.Trip) { trips = append(trips, tp.Steps...) }})
	if err != nil {
		t.Fatal(err)
	}
	f := dptraffic.Ping(dptraffic.InsideIP, dptraffic.ServerIP, 1)
	dp.NewWorker().Process(eth0, true, []port.Frame{{Data: f, Len: len(f)}})
	if s := c.Stats(); s.Faults != 1 || s.Drop != 1 {
		t.Errorf("stats %+v; want one fault counted as a drop", s)
	}
	if st := dp.Stats()[0]; st.Dropped != 1 {
		t.Errorf("device: %+v, want the frame dropped", st)
	}
	if len(trips) != 1 || !trips[0].Fault {
		t.Errorf("trace steps %+v; want one faulting step", trips)
	}
}

// New refuses devices that are not in the runtime.
func TestNew_BadDevice(t *testing.T) {
	rt := userspace.New()
	_, err := datapath.New(datapath.Config{Runtime: rt, Devices: []*datapath.Device{{Name: "eth9", Ifindex: 9}}})
	if !errors.Is(err, syscall.ENODEV) {
		t.Errorf("unknown device: %v, want ENODEV", err)
	}
}
