package engine_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
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
