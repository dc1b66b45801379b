package kernel_test

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest/probes"
	"github.com/tcxgo/tcx/kernel"
)

// env is one test's kernel: a backend in a fresh netns, lo, and the shared
// seen map all probes of the test write.
type env struct {
	t    *testing.T
	b    *kernel.Backend
	ns   *kernel.NetNS
	lo   int
	seen *kernel.Map
}

func newEnv(t *testing.T) *env {
	t.Helper()
	checkFDs(t)
	b := kerneltest.NewBackend(t)
	e := &env{t: t, b: b, ns: b.NetNS()}
	var err error
	if e.lo, err = e.ns.Ifindex("lo"); err != nil {
		t.Fatal(err)
	}
	if e.seen, err = b.NewMap(probes.SeenSpec()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.seen.Close() })
	return e
}

// checkFDs fails t if the process holds other fds after t's cleanups than
// before it started: every fd the backend opens must be closed again.
func checkFDs(t *testing.T) {
	t.Helper()
	// The runtime creates its netpoller fds (epoll, eventfd) on the first
	// pollable file; make that happen before the snapshot.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	before := openFDs(t)
	t.Cleanup(func() {
		after := openFDs(t)
		var leaked []string
		for fd, target := range after {
			if before[fd] != target {
				leaked = append(leaked, fd+" -> "+target)
			}
		}
		if len(leaked) > 0 {
			t.Errorf("leaked fds: %v", leaked)
		}
	})
}

func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]string{}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil { // the fd ReadDir itself used is gone by now
			fds[e.Name()] = target
		}
	}
	return fds
}

// probe loads a new program "tcN" returning verdict (a new program ID per
// call); it is closed when the test ends unless the test closes it first.
func (e *env) probe(n int, verdict int32) *kernel.Program {
	e.t.Helper()
	c, err := e.b.LoadCollection(probes.Spec(probes.Probe{N: n, Verdict: verdict}),
		kernel.LoadOptions{Maps: map[string]*kernel.Map{probes.SeenMap: e.seen}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c.Programs[probes.Probe{N: n}.Name()]
}

// tc is probe n with the selftests' verdict.
func (e *env) tc(n int) *kernel.Program { return e.probe(n, probes.SelftestVerdict(n)) }

// link creates a link that is closed when the test ends.
func (e *env) link(ifindex int, dir tcx.Direction, p tcx.Program, o tcx.LinkOptions) tcx.Link {
	e.t.Helper()
	l, err := e.b.CreateLink(ifindex, dir, p, o)
	if err != nil {
		e.t.Fatalf("create link for %s: %v", p.Name(), err)
	}
	e.t.Cleanup(func() { l.Close() })
	return l
}

func (e *env) attach(ifindex int, dir tcx.Direction, p tcx.Program, o tcx.AttachOptions) {
	e.t.Helper()
	if err := e.b.Attach(ifindex, dir, p, o); err != nil {
		e.t.Fatalf("attach %s: %v", p.Name(), err)
	}
}

func (e *env) detach(ifindex int, dir tcx.Direction, p tcx.Program, o tcx.DetachOptions) {
	e.t.Helper()
	if err := e.b.Detach(ifindex, dir, p, o); err != nil {
		e.t.Fatalf("detach: %v", err)
	}
}

// entry is one expected chain slot.
type entry struct {
	prog tcx.Program
	link tcx.Link
}

// chain checks the hook's programs, links and revision.
func (e *env) chain(ifindex int, dir tcx.Direction, rev uint64, want ...entry) {
	e.t.Helper()
	c, err := tcx.QueryChain(e.b, ifindex, dir)
	if err != nil {
		e.t.Fatalf("query %d %s: %v", ifindex, dir, err)
	}
	var w []tcx.Entry
	for _, s := range want {
		x := tcx.Entry{ProgramID: s.prog.ID()}
		if s.link != nil {
			x.LinkID = s.link.ID()
		}
		w = append(w, x)
	}
	if c.Revision != rev || !slices.Equal(c.Entries, w) {
		e.t.Errorf("hook %d %s: chain %v revision %d, want %v revision %d", ifindex, dir, c.Entries, c.Revision, w, rev)
	}
}

func p(prog tcx.Program) entry                 { return entry{prog: prog} }
func pl(prog tcx.Program, link tcx.Link) entry { return entry{prog: prog, link: link} }

// ran reports which of the probes 0..n set their seen slot.
func (e *env) ran(n int) []int {
	e.t.Helper()
	var got []int
	for i := 0; i <= n; i++ {
		var v uint32
		if err := e.seen.Lookup(uint32(i), &v); err != nil {
			e.t.Fatal(err)
		}
		if v != 0 {
			got = append(got, i)
		}
	}
	return got
}

func (e *env) resetSeen() {
	e.t.Helper()
	for i := uint32(0); i <= probes.MaxProbe; i++ {
		if err := e.seen.Update(i, uint32(0)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// traffic pings 127.0.0.1 (which must get through) and checks that exactly
// the probes in want ran.
func (e *env) traffic(want ...int) {
	e.t.Helper()
	e.resetSeen()
	if err := e.ns.Ping(10 * time.Second); err != nil {
		e.t.Fatalf("ping: %v", err)
	}
	if got := e.ran(probes.MaxProbe); !slices.Equal(got, want) {
		e.t.Errorf("probes that ran: %v, want %v", got, want)
	}
}

// waitSeen waits until probe n ran: an event, with a bound only against
// hanging forever.
func (e *env) waitSeen(n int) {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if slices.Contains(e.ran(n), n) {
			return
		}
	}
	e.t.Fatalf("probe %d never ran", n)
}

func wantErrno(t *testing.T, err error, want syscall.Errno, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %s", what, err, errnoName(want))
	}
}

func errnoName(e syscall.Errno) string { return e.Error() + " (errno " + strconv.Itoa(int(e)) + ")" }

func closeOK(t *testing.T, o interface{ Close() error }) {
	t.Helper()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}

// queryErr is the error of a query of lo's ingress hook.
func (e *env) queryErr(o tcx.QueryOptions) error {
	_, err := e.b.Query(e.lo, tcx.Ingress, o)
	return err
}
