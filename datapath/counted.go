package datapath

import (
	"sync/atomic"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/userspace"
)

// Counted wraps a program's runner with counters: runs, verdicts, faults
// and time spent. It is what a datapath attaches to the runtime.
type Counted struct {
	Name string
	// Runtime is the runtime (namespace) whose hook runs it, copied into
	// its Steps so that their ifindexes name a device; nil is unknown.
	Runtime *userspace.Runtime
	inner   userspace.Runner
	faults  func() uint64
	tracer  atomic.Pointer[Tracer]
	runs    atomic.Uint64
	ns      atomic.Uint64
	// verdicts: NEXT, PASS, DROP, REDIRECT, other
	verdicts [5]atomic.Uint64
}

// Count wraps r; faults, if not nil, reports the program's fault counter
// (engine.Program.Faults).
func Count(name string, r userspace.Runner, faults func() uint64) *Counted {
	return &Counted{Name: name, inner: r, faults: faults}
}

// Trace makes the runner report its steps to t (nil stops it).
func (c *Counted) Trace(t *Tracer) { c.tracer.Store(t) }

// ProgramStats are one program's counters.
type ProgramStats struct {
	Name     string `json:"name"`
	Runs     uint64 `json:"runs"`
	Faults   uint64 `json:"faults"`
	Next     uint64 `json:"next"`
	Pass     uint64 `json:"pass"`
	Drop     uint64 `json:"drop"`
	Redirect uint64 `json:"redirect"`
	Other    uint64 `json:"other"`
	// Nanos is the total time spent in the program.
	Nanos uint64 `json:"nanos"`
}

// Stats returns the counters so far.
func (c *Counted) Stats() ProgramStats {
	s := ProgramStats{Name: c.Name, Runs: c.runs.Load(), Nanos: c.ns.Load(),
		Next: c.verdicts[0].Load(), Pass: c.verdicts[1].Load(), Drop: c.verdicts[2].Load(),
		Redirect: c.verdicts[3].Load(), Other: c.verdicts[4].Load()}
	if c.faults != nil {
		s.Faults = c.faults()
	}
	return s
}

// Run runs the wrapped program and counts.
func (c *Counted) Run(p *userspace.Packet) int32 {
	t := c.tracer.Load()
	var faults uint64
	if t != nil {
		t.pre = append(t.pre[:0], p.Data()...)
		if c.faults != nil {
			faults = c.faults()
		}
	}
	start := time.Now()
	v := c.inner.Run(p)
	c.ns.Add(uint64(time.Since(start)))
	c.runs.Add(1)
	switch v {
	case tcx.VerdictNext:
		c.verdicts[0].Add(1)
	case tcx.VerdictPass:
		c.verdicts[1].Add(1)
	case tcx.VerdictDrop:
		c.verdicts[2].Add(1)
	case tcx.VerdictRedirect:
		c.verdicts[3].Add(1)
	default:
		c.verdicts[4].Add(1)
	}
	if t != nil {
		d := p.Data()
		st := Step{Program: c.Name, Verdict: v, Changed: changed(t.pre, d), LenDelta: len(d) - len(t.pre), Device: int(p.Ifindex), Runtime: c.Runtime, Ingress: p.Direction() == tcx.Ingress}
		if v == tcx.VerdictRedirect {
			st.Redirect = int(p.PendingRedirect().Ifindex)
		}
		if c.faults != nil && c.faults() != faults {
			st.Fault = true
		}
		t.Steps = append(t.Steps, st)
	}
	return v
}

// changed counts the bytes that differ, over the shorter length.
func changed(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// Tracer collects the steps of one frame from the Counted runners that
// share it. Tracing serialises the datapath (Config.Trace).
type Tracer struct {
	Steps []Step
	pre   []byte
}

// Step is one program run.
type Step struct {
	Program string
	// Device (ifindex), its runtime (Counted.Runtime) and hook the
	// program ran on; Redirect is in the same runtime.
	Device  int
	Runtime *userspace.Runtime
	Ingress bool
	Verdict int32
	// Redirect is the target ifindex of a TCX_REDIRECT verdict.
	Redirect int
	// Changed counts the bytes the program rewrote; LenDelta how the
	// length changed.
	Changed, LenDelta int
	// Fault: the program broke a memory rule or a limit and was stopped
	// (its verdict is then TC_ACT_SHOT).
	Fault bool
}
