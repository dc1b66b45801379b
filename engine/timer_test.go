package engine_test

import (
	"encoding/binary"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
)

// TestTimers_FireOnTheEngineClock: a bpf_timer fires when the engine's
// clock passes its deadline, at the end of a run or through RunTimers,
// and its callback sees its map element.
func TestTimers_FireOnTheEngineClock(t *testing.T) {
	spec, err := engine.LoadCollectionSpec(filepath.Join("..", "internal", "testkit", "kerneldiff", "testdata", "probes.o"))
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Uint64
	c, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Clock: now.Load})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run := func(sel uint32) uint64 { // the timer probe on element 0, boottime, an hour
		t.Helper()
		ctx := make([]byte, skb.CtxSize)
		for i, v := range []uint32{0, 7, 0, 0, sel} {
			binary.LittleEndian.PutUint32(ctx[skb.CtxCB+4*i:], v)
		}
		if _, _, _, err := c.Programs["timer"].TestRun(etherFrame(0x88b5, 60), ctx); err != nil {
			t.Fatal(err)
		}
		v := make([]byte, 24)
		if err := c.Maps["timers"].Lookup(make([]byte, 4), v); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(v[16:]) // fired
	}
	const hour = 3600_000_000_000
	if fired := run(1 | 2 | 4); fired != 0 {
		t.Fatalf("fired %d before the deadline", fired)
	}
	now.Store(hour - 1)
	if n, err := c.RunTimers(); n != 0 || err != nil {
		t.Errorf("RunTimers a nanosecond early: %d, %v", n, err)
	}
	now.Store(hour)
	if n, err := c.RunTimers(); n != 1 || err != nil {
		t.Errorf("RunTimers at the deadline: %d, %v", n, err)
	}
	if fired := run(0); fired != 1 {
		t.Errorf("fired %d times, want 1", fired)
	}
	// Started again, it fires at the end of the run that finds it due.
	run(4)
	now.Store(3 * hour)
	if fired := run(0); fired != 2 {
		t.Errorf("fired %d times after the second start, want 2", fired)
	}
}
