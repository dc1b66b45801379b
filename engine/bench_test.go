package engine_test

import (
	"testing"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/benchprog"
	"github.com/tcxgo/tcx/skb"
)

// benchRun runs prog of c on frame b.N times on one executor, resetting
// the packet each time when reset is set.
func benchRun(b *testing.B, c *engine.Collection, prog string, frame []byte, reset bool) {
	x, err := c.NewExecutor(0)
	if err != nil {
		b.Fatal(err)
	}
	p := c.Programs[prog]
	pkt, err := skb.New(frame, skb.Loopback())
	if err != nil {
		b.Fatal(err)
	}
	res, err := x.Run(p, pkt)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if reset {
			if err := pkt.Reset(frame, skb.Loopback()); err != nil {
				b.Fatal(err)
			}
		}
		if res, err = x.Run(p, pkt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(res.Executed), "ns/insn")
}

// BenchmarkExecutor_Run is the engine alone (the kernel's figures are in
// internal/testkit/kerneldiff): the per-run floor, the ALU anchor and corpus
// programs on a fresh packet per run (packet reset included).
func BenchmarkExecutor_Run(b *testing.B) {
	frame := etherFrame(0x88b5, 64)
	b.Run("floor", func(b *testing.B) {
		benchRun(b, newCollection(b, benchprog.Spec(), engine.Options{NumCPU: 1}), benchprog.Floor, frame, false)
	})
	b.Run("alu_loop", func(b *testing.B) {
		benchRun(b, newCollection(b, benchprog.Spec(), engine.Options{NumCPU: 1}), benchprog.ALULoop, frame, false)
	})
	tcp := udp4(b, "10.1.2.3", "198.51.100.7", 64, 64)
	for _, name := range []string{"l4_classify", "nat44", "lpm_acl", "proto_counters", "flow_events", "v4_long_jump"} {
		b.Run(name+"+reset", func(b *testing.B) {
			benchRun(b, corpus(b, name), name, tcp, true)
		})
	}
}
