package engine_test

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// mallocs counts the heap allocations of calling f n times, after one
// warm-up call, on one P (like testing.AllocsPerRun, but the total: a
// single allocation in n runs fails).
func mallocs(n int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}

// frames returns n generated frames (the same ones for every seed user).
func frames(n int, seed int64) [][]byte {
	g := pktgen.New(seed)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// TestExecutor_Run_ZeroAllocs runs every corpus program over a cycle of
// generated frames: after the first pass (maps filled, buffers grown) a
// run, packet reset included, allocates nothing.
func TestExecutor_Run_ZeroAllocs(t *testing.T) {
	objs, _ := filepath.Glob(filepath.Join(corpusDir, "*.o"))
	fs := frames(64, 3)
	for _, obj := range objs {
		c := corpus(t, strings.TrimSuffix(filepath.Base(obj), ".o"))
		x, err := c.NewExecutor(0)
		if err != nil {
			t.Fatal(err)
		}
		pkt := new(skb.Packet)
		for name, p := range c.Programs {
			i := 0
			step := func() {
				if err := pkt.Reset(fs[i%len(fs)], skb.Loopback()); err != nil {
					t.Fatal(err)
				}
				i++
				if _, err := x.Run(p, pkt); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			for range len(fs) {
				step()
			}
			if n := mallocs(len(fs)*2, step); n != 0 {
				t.Errorf("%s: %d allocations in %d runs", name, n, len(fs)*2)
			}
		}
	}
}

// TestProgram_Run_ZeroAllocs covers the pooled entry points: Program.Run
// and the userspace runtime adapter.
func TestProgram_Run_ZeroAllocs(t *testing.T) {
	fs := frames(32, 4)
	for _, name := range []string{"l4_classify", "nat44", "lpm_acl", "proto_counters", "vlan_push"} {
		p := corpus(t, name).Programs[name]
		pkt := new(skb.Packet)
		up := &userspace.Packet{}
		i := 0
		step := func() {
			f := fs[i%len(fs)]
			i++
			if err := pkt.Reset(f, skb.Loopback()); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Run(pkt); err != nil {
				t.Fatal(err)
			}
			if err := up.ResetXmit(f, 1); err != nil {
				t.Fatal(err)
			}
			up.AtIngress = i%2 == 0
			r := engine.NewRunner(p)
			r.Run(up)
		}
		for range len(fs) {
			step()
		}
		if n := mallocs(len(fs)*2, step); n != 0 {
			t.Errorf("%s: %d allocations in %d runs", name, n, len(fs)*2)
		}
		if n := testing.AllocsPerRun(len(fs), step); n != 0 {
			t.Errorf("%s: AllocsPerRun = %v", name, n)
		}
	}
}
