package engine_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
)

// timerDue loads kerneldiff's timer_due.o on the given clock.
func timerDue(t *testing.T, ncpu int, clock func() uint64) *engine.Collection {
	t.Helper()
	spec, err := engine.LoadCollectionSpec(filepath.Join("..", "internal", "testkit", "kerneldiff", "testdata", "timer_due.o"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := engine.NewCollection(spec, engine.Options{NumCPU: ncpu, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var armFrame = etherFrame(0x0800, 60)

// arm runs timer_due's arm on x: element key, delay us microseconds.
func arm(t testing.TB, x *engine.Executor, p *engine.Program, pkt *skb.Packet, key, us uint32) {
	if err := pkt.Reset(armFrame, skb.Loopback()); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(pkt.CB[0:], key)
	binary.LittleEndian.PutUint32(pkt.CB[4:], us)
	if r, err := x.Run(p, pkt); err != nil || r.Retval != skb.ActOK {
		t.Fatalf("arm: %v, %v", r.Retval, err)
	}
}

func firedOf(t testing.TB, c *engine.Collection, key uint32) uint64 {
	v := make([]byte, 32)
	if err := c.Maps["due"].Lookup(binary.LittleEndian.AppendUint32(nil, key), v); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(v[16:])
}

// TestServeTimers_FiresWhenDue: once the engine's clock passes a timer's
// deadline, ServeTimers fires it with no run and no RunTimers call; it
// ends with its context, and with the collection.
func TestServeTimers_FiresWhenDue(t *testing.T) {
	var now atomic.Uint64
	c := timerDue(t, 1, now.Load)
	x, err := c.NewExecutor(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- c.ServeTimers(ctx, time.Millisecond, func(err error) { t.Error(err) }) }()
	arm(t, x, c.Programs["arm"], new(skb.Packet), 1, 1000) // 1 ms on the engine's clock
	time.Sleep(20 * time.Millisecond)
	if f := firedOf(t, c, 1); f != 0 {
		t.Fatalf("fired %d times before the clock moved", f)
	}
	now.Store(1_000_000)
	for deadline := time.Now().Add(10 * time.Second); firedOf(t, c, 1) != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not fired 10 s after its deadline passed")
		}
	}
	cancel()
	if err := <-served; err != context.Canceled {
		t.Errorf("ServeTimers after cancel: %v", err)
	}
	go func() { served <- c.ServeTimers(context.Background(), 0, nil) }()
	c.Close()
	if err := <-served; err != nil {
		t.Errorf("ServeTimers after Close: %v", err)
	}
}

// TestServeTimers_BesideRuns: runs arming timers on every simulated CPU
// and ServeTimers firing them share the executors without a race (run
// with -race); every arming is fired once the clock has passed them all.
func TestServeTimers_BesideRuns(t *testing.T) {
	var now atomic.Uint64
	c := timerDue(t, 2, now.Load)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.ServeTimers(ctx, 100*time.Microsecond, func(err error) { t.Error(err) }); close(done) }() //nolint:errcheck // canceled
	var wg sync.WaitGroup
	const rounds = 200
	for cpu := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkt := new(skb.Packet)
			for i := range rounds {
				if err := pkt.Reset(etherFrame(0x0800, 60), skb.Loopback()); err != nil {
					t.Error(err)
					return
				}
				binary.LittleEndian.PutUint32(pkt.CB[0:], uint32(cpu))
				binary.LittleEndian.PutUint32(pkt.CB[4:], 1)
				if _, err := c.Programs["arm"].Run(pkt); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					now.Add(1000) // a microsecond: some fire at run ends, some from ServeTimers
				}
			}
		}()
	}
	wg.Wait()
	now.Add(1_000_000)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		v := make([]byte, 32)
		idle := true
		for k := range uint32(2) {
			if err := c.Maps["due"].Lookup(binary.LittleEndian.AppendUint32(nil, k), v); err != nil {
				t.Fatal(err)
			}
			// A restart of an armed timer moves its deadline: fired
			// counts deadlines reached, at least one and at most armed.
			if f, a := binary.LittleEndian.Uint64(v[16:]), binary.LittleEndian.Uint64(v[24:]); f == 0 || f > a || a != rounds {
				idle = false
			}
		}
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timers not fired 10 s after the clock passed them")
		}
	}
	cancel()
	<-done
}

// TestServeTimers_FireAllocatesNothing: firing a due timer (through
// RunTimers, which ServeTimers calls) allocates nothing.
func TestServeTimers_FireAllocatesNothing(t *testing.T) {
	var now atomic.Uint64
	c := timerDue(t, 1, now.Load)
	defer c.Close()
	x, err := c.NewExecutor(0)
	if err != nil {
		t.Fatal(err)
	}
	pkt := new(skb.Packet)
	p := c.Programs["arm"]
	fires := 0
	round := func() {
		arm(t, x, p, pkt, 3, 1)
		now.Add(1000)
		k, err := c.RunTimers()
		if err != nil {
			t.Fatal(err)
		}
		fires += k
	}
	round() // the first arming creates the timer
	if n := testing.AllocsPerRun(2000, round); n != 0 || fires != 2002 {
		t.Errorf("%v allocations per arm-and-fire round (%d fired in 2002)", n, fires)
	}
}
