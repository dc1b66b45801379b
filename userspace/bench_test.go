package userspace_test

import (
	"fmt"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/userspace"
)

// BenchmarkRuntime_Receive measures one frame through an ingress chain of
// n Go programs (each returns NEXT). The baseline calls the same programs
// directly in a loop, so the difference is what the runtime adds per
// packet: device lookup, reader pinning, verdict mapping, the outcome.
func BenchmarkRuntime_Receive(b *testing.B) {
	for _, n := range []int{1, 8, 63} {
		rt := userspace.New()
		var runners []userspace.Runner
		for range n {
			r := userspace.RunnerFunc(func(p *userspace.Packet) int32 {
				p.Mark++
				return tcx.VerdictNext
			})
			runners = append(runners, r)
			p, err := rt.NewProgram("bench", r)
			if err != nil {
				b.Fatal(err)
			}
			if err := rt.Attach(1, tcx.Ingress, p, tcx.AttachOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("progs=%d/baseline", n), func(b *testing.B) {
			p := &userspace.Packet{}
			if err := p.ResetXmit(frame, 1); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				for _, r := range runners {
					if r.Run(p) != tcx.VerdictNext {
						break
					}
				}
			}
		})
		b.Run(fmt.Sprintf("progs=%d/runtime", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if rt.Receive(1, frame).Fate != userspace.Delivered {
					b.Fatal("not delivered")
				}
			}
		})
	}
}
