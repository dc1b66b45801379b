package kerneldiff_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
)

// TestKernel_TimerFiresWhenDue: a program arms a bpf_timer 200 ms ahead
// whose callback counts in its map element. Right after the run neither
// side has fired it (the deadline is ahead); then, with nothing run and
// nothing asked, the kernel fires it from a softirq and the engine from
// Collection.ServeTimers, and both maps end the same. Waits are bounded;
// nothing is asserted about how soon after the deadline either fires.
func TestKernel_TimerFiresWhenDue(t *testing.T) {
	kerneltest.RequireKernel(t)
	s := load(t, filepath.Join("testdata", "timer_due.o"), 1)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.coll.ServeTimers(ctx, 0, func(err error) { t.Error(err) }) }()
	defer func() {
		cancel()
		if err := <-served; err != context.Canceled {
			t.Errorf("ServeTimers: %v, want context.Canceled", err)
		}
	}()
	const key = 2
	if d, err := s.compare("arm", probeFrame(60), cbCtx(0, key, 200_000), map[uint32]int{}); err != nil || d != "" {
		t.Fatalf("arming: %s %v", d, err)
	}
	fired := func() (kern, eng uint64) {
		kv, err := s.kern.MapContents("due")
		if err != nil {
			t.Fatal(err)
		}
		v := make([]byte, 32)
		if err := s.coll.Maps["due"].Lookup(binary.LittleEndian.AppendUint32(nil, key), v); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(kv[key].Values[0][16:]), binary.LittleEndian.Uint64(v[16:])
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		k, e := fired()
		if k == 1 && e == 1 {
			break
		}
		if k > 1 || e > 1 || time.Now().After(deadline) {
			t.Fatalf("fired: kernel %d, engine %d; want 1 and 1", k, e)
		}
		time.Sleep(10 * time.Millisecond)
	}
	kv, err := s.kern.MapContents("due")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range kv {
		v := make([]byte, len(e.Values[0]))
		if err := s.coll.Maps["due"].Lookup(e.Key, v); err != nil {
			t.Fatal(err)
		}
		if string(v) != string(e.Values[0]) {
			t.Errorf("element %x: kernel %x, engine %x", e.Key, e.Values[0], v)
		}
	}
}
