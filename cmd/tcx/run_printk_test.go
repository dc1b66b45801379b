package main

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Without --printk and without a trace, bpf_printk lines go to stderr, one
// line per call, and not to stdout.
func TestRun_PrintkStderr(t *testing.T) {
	code, stdout, errOut := runTool(t, "run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "pcap:../../testdata/datapath/demo.pcap",
		"--set", "blocked_port=80", "--no-timings")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(errOut, "dp_acl: drop tcp port 80\n"); n != 2 {
		t.Errorf("stderr has %d printk drop lines, want 2:\n%s", n, errOut)
	}
	if strings.Contains(stdout, "dp_acl: drop") {
		t.Errorf("printk output on stdout:\n%s", stdout)
	}
}

// The sink queues a line without allocating once started, and the writer
// gets every line, one write each, by stop.
func TestPrintkSink_ZeroAllocs(t *testing.T) {
	var got strings.Builder
	got.Grow(1 << 20)
	p := &printkSink{w: &got}
	p.start()
	msg := []byte("dp_acl: drop tcp port 80")
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := p.Write(msg); err != nil || n != len(msg) {
			t.Fatal(n, err)
		}
	})
	dropped := p.stop()
	if allocs != 0 {
		t.Errorf("%v allocations per printk line, want 0", allocs)
	}
	// AllocsPerRun calls 101 times; lines the writer could not keep up
	// with are dropped and counted, none lost silently.
	if n := uint64(strings.Count(got.String(), "dp_acl: drop tcp port 80\n")); n+dropped != 101 || n == 0 {
		t.Errorf("%d lines written, %d dropped; want 101 in all", n, dropped)
	}
	if _, err := p.Write(msg); err != nil {
		t.Errorf("write after stop: %v", err)
	}
}

// A writer that blocks does not block the packet path: Write returns at
// once, lines beyond the queue are counted as dropped, and the queued ones
// come out when the writer moves again.
func TestPrintkSink_BlockedWriter(t *testing.T) {
	w := &gateWriter{open: make(chan struct{})}
	p := &printkSink{w: w}
	p.start()
	const n = printkLines + 500
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			p.Write([]byte("line"))
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang guard
		t.Fatal("Write blocked behind a blocked writer")
	}
	close(w.open)
	dropped := p.stop()
	// One line may be in the writer's hands when it blocked.
	if dropped < 500-1 || dropped > 500 || uint64(w.lines.Load())+dropped != n {
		t.Errorf("%d lines written, %d dropped of %d; want %d dropped (one fewer if the writer held one)", w.lines.Load(), dropped, n, 500)
	}
}

// gateWriter blocks every write until open is closed.
type gateWriter struct {
	open  chan struct{}
	lines atomic.Int64
}

func (w *gateWriter) Write(b []byte) (int, error) {
	<-w.open
	w.lines.Add(1)
	return len(b), nil
}
