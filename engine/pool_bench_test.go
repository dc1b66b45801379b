package engine_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// BenchmarkProgram_Run_Pool runs dp_count through the collection's executor
// pool (Program.Run) from 4 goroutines per GOMAXPROCS, on a collection of
// as many simulated CPUs as GOMAXPROCS (contention only when a holder is
// descheduled) and of one (every other run waits: tcx run's default of
// one worker with two ports, on a machine of several cores). The waiting
// goroutines must not take the holder's core.
func BenchmarkProgram_Run_Pool(b *testing.B) {
	frame := etherFrame(0x0800, 60)
	for _, cpus := range []int{testingProcs(), 1} {
		b.Run(fmt.Sprintf("cpus=%d", cpus), func(b *testing.B) {
			c := newCollection(b, corpusSpec(b, "dp_count"), engine.Options{NumCPU: cpus})
			p := c.Programs["dp_count"]
			b.SetParallelism(4)
			cpu := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				pkt := new(skb.Packet)
				for pb.Next() {
					if err := pkt.Reset(frame, skb.Loopback()); err != nil {
						b.Fatal(err)
					}
					if _, err := p.Run(pkt); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkRunner_Chain_Pool is the same through the userspace runtime: a
// chain of two dp_count runs on eth0's egress, the second on the CPU the
// first took (Runner keeps the trip's CPU).
func BenchmarkRunner_Chain_Pool(b *testing.B) {
	frame := etherFrame(0x0800, 60)
	for _, cpus := range []int{testingProcs(), 1} {
		b.Run(fmt.Sprintf("cpus=%d", cpus), func(b *testing.B) {
			c := newCollection(b, corpusSpec(b, "dp_count"), engine.Options{NumCPU: cpus})
			rt := userspace.New()
			eth0, _ := rt.AddDevice("eth0")
			attach(b, rt, eth0, tcx.Egress, "first", engine.NewRunner(c.Programs["dp_count"]))
			attach(b, rt, eth0, tcx.Egress, "second", engine.NewRunner(c.Programs["dp_count"]))
			b.SetParallelism(4)
			cpu := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 2048)
				for pb.Next() {
					buf = append(buf[:0], frame...)
					if out := rt.Transmit(eth0, buf); out.Fate != userspace.Transmitted {
						b.Fatalf("fate %v", out.Fate)
					}
				}
			})
		})
	}
}
