package datapath_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/internal/testkit/dptraffic"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/port"
	"github.com/tcxgo/tcx/topology"
)

// BenchmarkReplayKernel is the kernel's figure beside BenchmarkReplay: the
// same three programs run on each frame of the capture in the kernel, one
// BPF_PROG_TEST_RUN per program (a system call each).
func BenchmarkReplayKernel(b *testing.B) {
	kerneltest.RequireKernel(b)
	frames := dptraffic.Mixed(replayFrames, 11)
	hops := []kernelHop{
		loadHopB(b, "dp_count.o", "dp_count", nil),
		loadHopB(b, "dp_acl.o", "dp_acl", map[string]any{"blocked_port": uint16(9090)}),
		loadHopB(b, "dp_nat.o", "dp_snat", map[string]any{"inside_addr": [4]byte{10, 0, 0, 1}, "outside_addr": [4]byte{192, 0, 2, 1}}),
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	n := 0
	for range b.N {
		for _, f := range frames {
			data := f.Data
			for _, h := range hops {
				out, err := h.r.Run(h.prog, kernel.RunInput{Data: data})
				if err != nil {
					b.Fatal(err)
				}
				data = out.Data
				if int32(out.Retval) != -1 {
					break
				}
			}
			n++
		}
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/frame")
	b.ReportMetric(float64(n)/el.Seconds(), "frames/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(n), "ns/frame")
}

func loadHopB(b *testing.B, obj, prog string, set map[string]any) kernelHop {
	b.Helper()
	spec, err := engineSpec(obj, set)
	if err != nil {
		b.Fatal(err)
	}
	r, err := kernel.NewTestRunner(spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return kernelHop{r, prog}
}

// liveWindow is how long each side of BenchmarkLive receives.
const liveWindow = time.Second

// BenchmarkLive: one sender pushes TCP SYNs to port 9090 into veth ls0 as
// fast as it can (AF_PACKET, sendmmsg of 64), on one CPU's worth of Go.
//
//   - drop: on ls1 the chain dp_count, dp_acl (which drops them) runs on the
//     kernel's tcx ingress hook, or in tcx's userspace datapath reading ls1
//     with AF_PACKET (recvmmsg). frames/s is what reached the ACL.
//   - forward: on ls1 the chain dp_count, dp_redirect to fw1 runs in the
//     kernel or in userspace (which then sends with sendmmsg on fw1); the
//     frames cross to fw0, whose kernel tcx hook counts them with dp_acl.
//     frames/s is what arrived at fw0.
//
// Sender and receiver are one process: cpu-ns/frame covers the send, the
// kernel's receive path and, for userspace, the datapath.
func BenchmarkLive(b *testing.B) {
	kerneltest.RequireKernel(b)
	for _, mode := range []string{"drop", "forward"} {
		for _, side := range []string{"kernel", "userspace"} {
			b.Run(mode+"/"+side, func(b *testing.B) { benchLive(b, mode, side) })
		}
	}
}

func benchLive(b *testing.B, mode, side string) {
	ns, err := kernel.NewNetNS()
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.FD())
	_, ib, err := ns.AddVethPair("ls0", "ls1")
	if err != nil {
		b.Fatal(err)
	}
	be, err := kernel.New(ns, kernel.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	attach := func(ifindex int, progs ...*kernel.Program) {
		for _, p := range progs {
			l, err := tcx.AttachLink(be, ifindex, tcx.Ingress, p, tcx.Tail(), 0)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
		}
	}
	acl := loadKernelB(b, be, "dp_acl.o", map[string]any{"blocked_port": uint16(9090)})
	aclCount := func() uint64 {
		var v uint64
		acl.Maps["dp_acl_hits"].Lookup(uint32(0), &v)
		return v
	}
	var fw1 int
	if mode == "forward" {
		var fw0 int
		if fw0, fw1, err = ns.AddVethPair("fw0", "fw1"); err != nil {
			b.Fatal(err)
		}
		attach(fw0, acl.Programs["dp_acl"])
	}
	count, reads, stop := aclCount, func() uint64 { return 0 }, func() {}
	switch side {
	case "kernel":
		cnt := loadKernelB(b, be, "dp_count.o", nil)
		if mode == "drop" {
			attach(ib, cnt.Programs["dp_count"], acl.Programs["dp_acl"])
		} else {
			fwd := loadKernelB(b, be, "dp_redirect.o", map[string]any{"out_ifindex": uint32(fw1)})
			attach(ib, cnt.Programs["dp_count"], fwd.Programs["dp_redirect"])
		}
	case "userspace":
		topo := &topology.Topology{Dir: ".", Objects: []topology.Object{{Name: "count", Path: progs + "dp_count.o"}}}
		if mode == "drop" {
			topo.Objects = append(topo.Objects, topology.Object{Name: "acl", Path: progs + "dp_acl.o", Set: map[string]any{"blocked_port": 9090}})
			topo.Devices = []topology.Device{{Name: "ls1", Wire: "afpacket:ls1", PortNetNS: path,
				Ingress: []topology.Entry{{Object: "count", Program: "dp_count"}, {Object: "acl", Program: "dp_acl"}}}}
		} else {
			topo.Objects = append(topo.Objects, topology.Object{Name: "fwd", Path: progs + "dp_redirect.o", Set: map[string]any{"out_ifindex": "@fw1"}})
			topo.Devices = []topology.Device{
				{Name: "ls1", Wire: "afpacket:ls1", PortNetNS: path,
					Ingress: []topology.Entry{{Object: "count", Program: "dp_count"}, {Object: "fwd", Program: "dp_redirect"}}},
				{Name: "fw1", Wire: "afpacket:fw1", PortNetNS: path},
			}
		}
		built, err := topo.Build(topology.BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer built.Close()
		dp, err := datapath.New(datapath.Config{Runtime: built.Runtime, Devices: built.Devices})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { dp.Run(ctx); close(done) }()
		if mode == "drop" {
			count = func() uint64 { return dp.Stats()[0].Dropped }
		}
		reads = func() uint64 { return dp.Stats()[0].Reads }
		stop = func() { cancel(); <-done }
	}
	defer stop()
	sender, err := port.OpenAFPacket("ls0", port.Options{NetNS: path})
	if err != nil {
		b.Fatal(err)
	}
	defer sender.Close()
	syn := dptraffic.TCP(dptraffic.InsideIP, dptraffic.ServerIP, 40000, 9090, true, nil)
	batch := make([]port.Frame, 64)
	for i := range batch {
		batch[i] = port.Frame{Data: syn, Len: len(syn)}
	}
	var sent atomic.Uint64
	var got, rd uint64
	var el, cpu time.Duration
	for range b.N {
		before, beforeReads := count(), reads()
		var wg sync.WaitGroup
		var quit atomic.Bool
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !quit.Load() {
				sender.Write(batch)
				sent.Add(uint64(len(batch)))
			}
		}()
		start, cpu0 := time.Now(), cpuTime()
		time.Sleep(liveWindow)
		quit.Store(true)
		wg.Wait()
		time.Sleep(50 * time.Millisecond) // let the receiver drain
		el += time.Since(start)
		cpu += cpuTime() - cpu0
		got += count() - before
		rd += reads() - beforeReads
	}
	b.ReportMetric(float64(got)/el.Seconds(), "frames/s")
	b.ReportMetric(float64(sent.Load())/el.Seconds(), "sent/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(max(got, 1)), "cpu-ns/frame")
	if rd > 0 {
		b.ReportMetric(float64(got)/float64(rd), "frames/read")
	}
}

func loadKernelB(b *testing.B, be *kernel.Backend, obj string, set map[string]any) *kernel.Collection {
	b.Helper()
	spec, err := engineSpec(obj, set)
	if err != nil {
		b.Fatal(err)
	}
	c, err := be.LoadCollection(spec, kernel.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
