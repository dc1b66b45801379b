package conformance

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DiffResult summarises a differential run.
type DiffResult struct {
	Ops         int
	Divergences int
	// Outcomes counts "kind outcome" (e.g. "attach ENOENT") on the first
	// backend, to show what the generated sequence covered.
	Outcomes map[string]int
}

// maxReports bounds how many divergences are described in full.
const maxReports = 20

// historyLen is how many preceding operations a report repeats.
const historyLen = 12

// Differential applies ops operations generated from seed to two backends in
// lockstep and compares every outcome and, after every operation, the full
// observable state. A divergence is reported (with the seed, the operation's
// index and everything needed to replay it) through report, and both
// backends are then rebuilt from scratch, so that later divergences are
// independent findings rather than echoes of the first one.
//
// Operations of the kinds in skip (comma-separated names such as
// "link_pin,link_unpin") are never generated, to look past a known
// divergence.
func Differential(seed uint64, ops int, skip string, newA, newB Factory, report func(string)) (DiffResult, error) {
	skipped, err := parseKinds(skip)
	if err != nil {
		return DiffResult{}, err
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d := divergence{seed: seed, skip: skip}
	res := DiffResult{Outcomes: map[string]int{}}
	a, b, err := newPair(newA, newB)
	if err != nil {
		return res, err
	}
	defer func() { closePair(a, b) }()
	for i := range ops {
		o := generate(rng, skipped)
		d.history = append(d.history, fmt.Sprintf("#%d %v", i, o))
		if len(d.history) > historyLen {
			d.history = d.history[1:]
		}
		d.classic = a.classicState()
		ra, rb := a.apply(o, i), b.apply(o, i)
		sa, sb := a.snapshot(), b.snapshot()
		if ra == rb && sa != sb && (o.kind.unlinksPin() || aliveOnly(sa, sb)) {
			sa, sb = settle(a, b, sa, sb)
		}
		res.Ops++
		res.Outcomes[o.kind.String()+" "+strings.Fields(ra + " ?")[0]]++
		if ra == rb && sa == sb {
			continue
		}
		res.Divergences++
		if res.Divergences <= maxReports {
			report(d.describe(i, o, [2]*replica{a, b}, [2]string{ra, rb}, [2]string{sa, sb}))
		}
		closePair(a, b)
		if a, b, err = newPair(newA, newB); err != nil {
			return res, err
		}
		d.start, d.history = i+1, nil
	}
	return res, nil
}

// settleTimeout bounds the wait for the kernel's deferred releases. It is
// generous on purpose: it only runs out when the states really differ.
const settleTimeout = 2 * time.Second

// settle waits until both states agree or settleTimeout passed. Removing a
// pin can drop a link's last reference, and the kernel drops a bpffs
// inode's reference from an RCU callback (bpf_free_inode) and frees the
// link from a workqueue (bpf_link_put): the link leaves its chain some time
// after the unlink returned, while the userspace runtime releases it at
// once. Likewise a deleted cls_bpf filter drops its program from an RCU
// work item (tcf_queue_work), and a released link drops its program only
// when it is freed, so a program whose last other reference goes in the
// meantime (a closed handle, a detach, a filter delete) keeps its ID for a
// moment: whenever two states differ in nothing but the programs alive,
// the test waits too. Every other release (closing a handle, detaching) is
// synchronous in both.
func settle(a, b *replica, sa, sb string) (string, string) {
	for deadline := time.Now().Add(settleTimeout); sa != sb && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		sa, sb = a.snapshot(), b.snapshot()
	}
	return sa, sb
}

// aliveOnly reports whether two snapshots differ in nothing but their last
// line, the programs alive.
func aliveOnly(sa, sb string) bool {
	ka, _, _ := strings.Cut(sa, aliveHeader)
	kb, _, _ := strings.Cut(sb, aliveHeader)
	return ka == kb
}

// divergence is what a report needs besides the diverging operation.
type divergence struct {
	seed    uint64
	skip    string
	start   int      // index of the first operation on the current backends
	history []string // the last operations since start
	classic string   // the first backend's classic tc state before the op
}

func newPair(newA, newB Factory) (*replica, *replica, error) {
	a, err := newSide(newA)
	if err != nil {
		return nil, nil, err
	}
	b, err := newSide(newB)
	if err != nil {
		a.close()
		return nil, nil, err
	}
	// The first snapshots record the starting revisions.
	a.snapshot()
	b.snapshot()
	return a, b, nil
}

func newSide(f Factory) (*replica, error) {
	env, err := f()
	if err != nil {
		return nil, fmt.Errorf("create env: %w", err)
	}
	r, err := newReplica(env)
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("%s: %w", env.Name(), err)
	}
	return r, nil
}

func closePair(a, b *replica) {
	if a != nil {
		a.close()
	}
	if b != nil {
		b.close()
	}
}

func (d *divergence) describe(i int, o op, sides [2]*replica, results, states [2]string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "divergence: seed=%d op=#%d (backends fresh since #%d): %v\n", d.seed, i, d.start, o)
	fmt.Fprintf(&s, "  replay: go test ./internal/conformance/ -run TestDifferential -diff.seed=%d -diff.ops=%d", d.seed, i+1)
	if d.skip != "" {
		fmt.Fprintf(&s, " -diff.skip=%s", d.skip)
	}
	s.WriteString("\n")
	for k, r := range sides {
		fmt.Fprintf(&s, "  %-9s result: %s\n", r.env.Name(), results[k])
	}
	fmt.Fprintf(&s, "  classic tc before the operation (%s): %s\n", sides[0].env.Name(), d.classic)
	if states[0] != states[1] {
		la, lb := strings.Split(states[0], "\n"), strings.Split(states[1], "\n")
		for j := range max(len(la), len(lb)) {
			if x, y := line(la, j), line(lb, j); x != y {
				fmt.Fprintf(&s, "  state %-10s %s\n  state %-10s %s\n", sides[0].env.Name()+":", x, sides[1].env.Name()+":", y)
			}
		}
	}
	s.WriteString("  operations since the backends were fresh (last ones):\n")
	for _, h := range d.history {
		fmt.Fprintf(&s, "    %s\n", h)
	}
	return s.String()
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}
