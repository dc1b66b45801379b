package main

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
)

// BenchmarkTestRun compares test-run's per-packet path (skb setup, run,
// diff, field report) with the engine's bare BPF_PROG_TEST_RUN mirror on
// the same program and frame: the difference is what the report costs.
func BenchmarkTestRun(b *testing.B) {
	spec, err := ebpf.LoadCollectionSpec(objNat44)
	if err != nil {
		b.Fatal(err)
	}
	data := fixtureFrames(b)[0].data
	opts := &testRunOptions{object: "nat44", repeat: 1}
	coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer coll.Close()
	prog := coll.Programs["nat44"]
	b.Run("engine_TestRun_baseline", func(b *testing.B) {
		ctx := ctxIn(opts)
		for b.Loop() {
			if _, _, _, err := prog.TestRun(data, ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("runFrame", func(b *testing.B) {
		x, err := coll.NewExecutor(0)
		if err != nil {
			b.Fatal(err)
		}
		devs := newTestDevices(0)
		f := frame{origin: "bench", data: data}
		for b.Loop() {
			if _, err := runFrame(b.Context(), x, prog, f, opts, devs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
