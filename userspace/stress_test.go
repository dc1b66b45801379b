package userspace_test

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/userspace"
)

// allocsOf reports the average number of heap allocations of op over n
// runs, with setup (allocating freely) done for all runs beforehand. The
// counter is process-wide, so a stray runtime allocation can land in a
// measurement: it takes the best of three rounds (an allocating op shows
// up in every round).
func allocsOf(n int, setup func(i int), op func(i int)) float64 {
	best := float64(n)
	for range 3 {
		for i := range n {
			setup(i)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range n {
			op(i)
		}
		runtime.ReadMemStats(&after)
		best = min(best, float64(after.Mallocs-before.Mallocs)/float64(n))
	}
	return best
}

func TestRuntime_Transmit_Allocs(t *testing.T) {
	e := newEnv(t)
	va, _, _ := e.rt.AddVethPair("va", "vb")
	var sum atomic.Uint32
	count := userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		sum.Add(uint32(p.Len()))
		p.Mark++
		return tcx.VerdictNext
	})
	for _, d := range []int{lo, va} {
		for _, dir := range dirs {
			for range 4 {
				p, _ := e.rt.NewProgram("count", count)
				e.mustAttach(d, dir, p, tcx.AttachOptions{})
			}
		}
	}
	isErr(t, e.rt.AddQdisc(va, userspace.QdiscClsact), nil)
	cls, _ := e.rt.NewProgram("cls", count)
	isErr(t, e.rt.AddFilter(va, tcx.Egress, userspace.Filter{Priority: 1, Program: cls}), nil)
	var p userspace.Packet
	buf := make([]byte, len(frame))
	if n := testing.AllocsPerRun(1000, func() {
		isErr(t, p.ResetXmit(frame, lo), nil)
		if out := e.rt.TransmitPacket(&p); out.Fate != userspace.Delivered || out.Packet.Mark != 8 {
			t.Fatalf("lo: %+v", out)
		}
		isErr(t, p.ResetXmit(frame, uint32(va)), nil)
		if out := e.rt.TransmitPacket(&p); out.Fate != userspace.Delivered || out.Packet.Mark != 5 {
			t.Fatalf("veth: %+v", out)
		}
	}); n != 0 {
		t.Errorf("packet path: %v allocs per run", n)
	}
	// Transmit and Receive borrow their packet from a sync.Pool, which the
	// race detector empties at random on purpose; count them without it.
	if !raceEnabled {
		if n := testing.AllocsPerRun(1000, func() {
			copy(buf, frame)
			if out := e.rt.Transmit(lo, buf); out.Fate != userspace.Delivered || len(out.Frame) != len(frame) {
				t.Fatalf("lo: %+v", out)
			}
			e.rt.Receive(lo, buf)
		}); n != 0 {
			t.Errorf("pooled packet path: %v allocs per run", n)
		}
	}
	if sum.Load() == 0 {
		t.Fatal("programs never ran")
	}
}

func TestRuntime_Detach_Allocs(t *testing.T) {
	e := newEnv(t)
	const n = 60
	p := e.progs(n)
	links := make([]tcx.Link, n)
	if a := allocsOf(n, func(i int) {
		e.mustAttach(lo, tcx.Ingress, p[i], tcx.AttachOptions{})
	}, func(i int) {
		if err := e.rt.Detach(lo, tcx.Ingress, p[i], tcx.DetachOptions{}); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("detach: %v allocs", a)
	}
	if a := allocsOf(n, func(i int) {
		links[i] = e.mustLink(lo, tcx.Egress, p[i], tcx.LinkOptions{})
	}, func(i int) {
		if err := links[i].Close(); err != nil { // last reference: release
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("link release: %v allocs", a)
	}
	if a := allocsOf(n, func(i int) {
		links[i] = e.mustLink(lo, tcx.Egress, p[i], tcx.LinkOptions{})
	}, func(i int) {
		if err := links[i].Detach(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("link detach: %v allocs", a)
	}
}

// TestRuntime_Stress pushes packets through hooks while other goroutines
// attach, detach, replace, create, update and close links. Each packet must
// see a consistent chain: every program on the hook is a counter that
// returns NEXT, and a marker program at the head (swapped by replace and
// link update) must run exactly once per pass. Run it with -race.
func TestRuntime_Stress(t *testing.T) {
	rt := userspace.New()
	va, vb, _ := rt.AddVethPair("va", "vb")
	isErr(t, rt.AddQdisc(vb, userspace.QdiscClsact), nil)
	var headRuns atomic.Int64
	head := func() tcx.Program {
		p, _ := rt.NewProgram("head", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
			headRuns.Add(1)
			p.Mark = 1
			return tcx.VerdictNext
		}))
		return p
	}
	body := func() tcx.Program {
		p, _ := rt.NewProgram("body", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
			if p.Mark != 1 {
				p.Mark = 2 // ran before the head: a torn chain
			}
			return tcx.VerdictNext
		}))
		return p
	}
	check := func(p *userspace.Packet) int32 {
		if p.Mark == 2 {
			return tcx.VerdictDrop
		}
		return tcx.VerdictNext
	}
	checker, _ := rt.NewProgram("check", userspace.RunnerFunc(check))
	isErr(t, rt.AddFilter(vb, tcx.Ingress, userspace.Filter{Priority: 1, Program: checker}), nil)
	h1, h2 := head(), head()
	isErr(t, rt.Attach(va, tcx.Egress, h1, tcx.AttachOptions{}), nil)
	hl := func() tcx.Link {
		l, err := rt.CreateLink(vb, tcx.Ingress, h2, tcx.LinkOptions{Flags: tcx.FlagBefore})
		isErr(t, err, nil)
		return l
	}()

	var stop atomic.Bool
	var wg sync.WaitGroup
	var sent, passes, changes atomic.Int64
	errc := make(chan error, 16)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(frame)) // Transmit writes the result back
			for !stop.Load() {
				out := rt.Transmit(va, buf)
				if out.Fate != userspace.Delivered {
					errc <- errors.New("packet dropped: torn chain seen")
					return
				}
				sent.Add(1)
				passes.Add(2) // va egress and vb ingress each have one head
			}
		}()
	}
	writer := func(dev int, dir tcx.Direction, seed int) {
		defer wg.Done()
		mine := []tcx.Program{body(), body(), body()}
		var links []tcx.Link
		for i := 0; !stop.Load(); i++ {
			p := mine[(i+seed)%len(mine)]
			var err error
			switch (i + seed) % 6 {
			case 0:
				err = rt.Attach(dev, dir, p, tcx.AttachOptions{Flags: tcx.FlagAfter})
			case 1:
				err = rt.Detach(dev, dir, p, tcx.DetachOptions{})
			case 2:
				var l tcx.Link
				if l, err = rt.CreateLink(dev, dir, p, tcx.LinkOptions{}); err == nil {
					links = append(links, l)
				}
			case 3:
				if len(links) > 0 {
					err = links[0].Update(mine[(i+1)%len(mine)], tcx.UpdateOptions{})
				}
			case 4:
				if len(links) > 0 {
					err = links[0].Close()
					links = links[1:]
				}
			case 5:
				err = rt.Attach(dev, dir, mine[(i+2)%len(mine)], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p})
			}
			if err == nil {
				changes.Add(1)
			}
			if err != nil && !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EBUSY) {
				errc <- err
				return
			}
			runtime.Gosched()
		}
		for _, l := range links {
			l.Close()
		}
	}
	wg.Add(3)
	go writer(va, tcx.Egress, 0)
	go writer(vb, tcx.Ingress, 3)
	go func() { // swap the heads in place, again and again
		defer wg.Done()
		h3 := head()
		a, b := h1, h3
		for !stop.Load() {
			if err := rt.Attach(va, tcx.Egress, b, tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: a}); err != nil {
				errc <- err
				return
			}
			a, b = b, a
			if err := hl.Update(b, tcx.UpdateOptions{}); err != nil {
				errc <- err
				return
			}
			hl.Update(h2, tcx.UpdateOptions{})
			runtime.Gosched()
		}
	}()
	for (sent.Load() < 3000 || changes.Load() < 1000) && len(errc) == 0 {
		runtime.Gosched()
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if headRuns.Load() != passes.Load() {
		t.Errorf("heads ran %d times for %d hook passes", headRuns.Load(), passes.Load())
	}
	if changes.Load() == 0 {
		t.Error("writers changed nothing")
	}
	t.Logf("%d packets, %d successful changes", sent.Load(), changes.Load())
}
