package userspace_test

import (
	"errors"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/userspace"
)

// env is a runtime with probe programs tc1..tcN in the style of the kernel
// selftests' test_tc_link.c: each counts its runs and returns a verdict.
type env struct {
	t    *testing.T
	rt   *userspace.Runtime
	runs []*atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, rt: userspace.New()}
}

// prog loads a probe returning verdict; its run count is e.seen(handle).
func (e *env) prog(verdict int32) tcx.Program {
	e.t.Helper()
	n := new(atomic.Int64)
	p, err := e.rt.NewProgram("probe", userspace.RunnerFunc(func(*userspace.Packet) int32 {
		n.Add(1)
		return verdict
	}))
	if err != nil {
		e.t.Fatal(err)
	}
	e.runs = append(e.runs, n)
	return p
}

// progs loads n probes returning NEXT.
func (e *env) progs(n int) []tcx.Program {
	ps := make([]tcx.Program, n)
	for i := range ps {
		ps[i] = e.prog(tcx.VerdictNext)
	}
	return ps
}

// ran returns how often each probe ran since the last call, then resets.
func (e *env) ran() []int64 {
	out := make([]int64, len(e.runs))
	for i, n := range e.runs {
		out[i] = n.Swap(0)
	}
	return out
}

func (e *env) mustAttach(ifindex int, dir tcx.Direction, p tcx.Program, opts tcx.AttachOptions) {
	e.t.Helper()
	if err := e.rt.Attach(ifindex, dir, p, opts); err != nil {
		e.t.Fatalf("attach %d: %v", p.ID(), err)
	}
}

func (e *env) mustLink(ifindex int, dir tcx.Direction, p tcx.Program, opts tcx.LinkOptions) tcx.Link {
	e.t.Helper()
	l, err := e.rt.CreateLink(ifindex, dir, p, opts)
	if err != nil {
		e.t.Fatalf("link %d: %v", p.ID(), err)
	}
	return l
}

// chain queries a hook and checks its program IDs, link IDs and revision.
func (e *env) chain(ifindex int, dir tcx.Direction, rev uint64, progs []tcx.Program, links []tcx.Link) {
	e.t.Helper()
	c, err := tcx.QueryChain(e.rt, ifindex, dir)
	if err != nil {
		e.t.Fatalf("query: %v", err)
	}
	var want []tcx.Entry
	for i, p := range progs {
		en := tcx.Entry{ProgramID: p.ID()}
		if i < len(links) && links[i] != nil {
			en.LinkID = links[i].ID()
		}
		want = append(want, en)
	}
	if !slices.Equal(c.Entries, want) || c.Revision != rev {
		e.t.Fatalf("chain %v rev %d, want %v rev %d", c.Entries, c.Revision, want, rev)
	}
}

func (e *env) count(ifindex int, dir tcx.Direction) uint32 {
	e.t.Helper()
	res, err := e.rt.Query(ifindex, dir, tcx.QueryOptions{})
	if err != nil {
		e.t.Fatalf("query: %v", err)
	}
	return res.Count
}

func isErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		t.Fatalf("error %v does not wrap an errno", err)
	}
}

const lo = 1

var dirs = []tcx.Direction{tcx.Ingress, tcx.Egress}

// perDir runs f once per direction, as every selftest does.
func perDir(t *testing.T, f func(t *testing.T, dir tcx.Direction)) {
	for _, dir := range dirs {
		t.Run(dir.String(), func(t *testing.T) { f(t, dir) })
	}
}

func nones(n int) []tcx.Link { return make([]tcx.Link, n) }
