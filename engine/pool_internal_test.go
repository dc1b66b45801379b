package engine

import (
	"encoding/binary"
	"runtime"
	"sync"
	"testing"

	"github.com/tcxgo/tcx/skb"
)

// poolCounter is dp_count (a per-CPU array counted with plain loads and
// stores) on a collection of two CPUs.
func poolCounter(t *testing.T) (*Collection, *Program) {
	t.Helper()
	spec, err := LoadCollectionSpec("../testdata/progs/dp_count.o")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCollection(spec, Options{NumCPU: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.Programs["dp_count"]
}

// countedPackets sums dp_count's packets over every slot and CPU.
func countedPackets(t *testing.T, c *Collection) uint64 {
	t.Helper()
	m := c.Maps["dp_counts"]
	vals := make([]byte, c.NumCPU()*16)
	var n uint64
	for slot := range uint32(4) {
		if err := m.Lookup(binary.NativeEndian.AppendUint32(nil, slot), vals); err != nil {
			t.Fatal(err)
		}
		for cpu := range c.NumCPU() {
			n += binary.NativeEndian.Uint64(vals[cpu*16:])
		}
	}
	return n
}

func poolFrame() []byte {
	f := make([]byte, 60)
	copy(f, []byte{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00, 0x45})
	return f
}

// TestPool_Oversubscribed runs a per-CPU counter from 16 goroutines on a
// collection of 2 CPUs (run with -race), half the runs on any free CPU and
// half on a chosen one: no increment is lost, so no two runs ever shared
// a CPU, and every run got an executor.
func TestPool_Oversubscribed(t *testing.T) {
	const workers, perWorker = 16, 400
	c, p := poolCounter(t)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var pkt skb.Packet
			for i := range perWorker {
				if err := pkt.ResetTestRun(poolFrame(), nil, nil); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if _, err := p.Run(&pkt); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				// Every other run wants one CPU, as a chain's later
				// programs do (Runner).
				s, err := c.acquireCPU((w + i) % c.NumCPU())
				if err != nil {
					t.Error(err)
					return
				}
				_, err = s.x.Run(p, &pkt)
				c.pool.release(s)
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := countedPackets(t, c); got != workers*perWorker {
		t.Fatalf("counted %d packets over the CPUs, ran %d", got, workers*perWorker)
	}
	t.Logf("executor pool: %d goroutines on %d CPUs, %d runs, %d counted", workers, c.NumCPU(), workers*perWorker, countedPackets(t, c))
}

// TestPool_WaitersPark: while every executor is taken, runs wait parked
// (registered in waiting, not spinning through the slots) and each
// release lets them through until all have run.
func TestPool_WaitersPark(t *testing.T) {
	const waiters = 8
	c, p := poolCounter(t)
	var held []*poolSlot
	for range c.NumCPU() {
		s, err := c.acquire()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
	}
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			var pkt skb.Packet
			if err := pkt.ResetTestRun(poolFrame(), nil, nil); err != nil {
				t.Error(err)
				return
			}
			if _, err := p.Run(&pkt); err != nil {
				t.Error(err)
			}
		})
	}
	for c.pool.waiting.Load() != waiters {
		// Each waiter registers once before parking; the count holds at 8
		// only if they stay parked rather than return or spin.
		runtime.Gosched()
	}
	if n := countedPackets(t, c); n != 0 {
		t.Fatalf("%d runs happened while every executor was held", n)
	}
	for _, s := range held {
		c.pool.release(s)
	}
	wg.Wait()
	if n := countedPackets(t, c); n != waiters {
		t.Fatalf("%d runs after the release, want %d", n, waiters)
	}
	if w := c.pool.waiting.Load(); w != 0 {
		t.Fatalf("%d runs still registered as waiting", w)
	}
}

// TestPool_CPUWaitersPark: runs that want one CPU (a chain keeping its
// trip's CPU) park while it is taken, other CPUs stay free for the rest,
// and a release of that CPU lets them all through, one at a time.
func TestPool_CPUWaitersPark(t *testing.T) {
	const waiters = 6
	c, p := poolCounter(t)
	held, err := c.acquireCPU(1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() {
			s, err := c.acquireCPU(1)
			if err != nil {
				t.Error(err)
				return
			}
			var pkt skb.Packet
			if err := pkt.ResetTestRun(poolFrame(), nil, nil); err != nil {
				t.Error(err)
			}
			if _, err := s.x.Run(p, &pkt); err != nil {
				t.Error(err)
			}
			c.pool.release(s)
		})
	}
	for c.pool.cpuWaiting[1].Load() != waiters {
		runtime.Gosched()
	}
	// CPU 0 is free to anyone else meanwhile.
	var pkt skb.Packet
	if err := pkt.ResetTestRun(poolFrame(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(&pkt); err != nil {
		t.Fatal(err)
	}
	if n := countedPackets(t, c); n != 1 {
		t.Fatalf("%d runs while CPU 1 was held, want the one on CPU 0", n)
	}
	c.pool.release(held)
	wg.Wait()
	if n := countedPackets(t, c); n != waiters+1 {
		t.Fatalf("%d runs after the release, want %d", n, waiters+1)
	}
	if w := c.pool.cpuWaiting[1].Load(); w != 0 {
		t.Fatalf("%d runs still registered as waiting for CPU 1", w)
	}
}
