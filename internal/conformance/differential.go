package conformance

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// DiffResult summarises a differential run.
type DiffResult struct {
	Ops         int
	Divergences int
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
func Differential(seed uint64, ops int, newA, newB Factory, report func(string)) (DiffResult, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var res DiffResult
	a, b, err := newPair(newA, newB)
	if err != nil {
		return res, err
	}
	defer func() { closePair(a, b) }()
	start := 0
	var history []string
	for i := range ops {
		o := generate(rng)
		history = append(history, fmt.Sprintf("#%d %v", i, o))
		if len(history) > historyLen {
			history = history[1:]
		}
		ra, rb := a.apply(o, i), b.apply(o, i)
		sa, sb := a.snapshot(), b.snapshot()
		res.Ops++
		if ra == rb && sa == sb {
			continue
		}
		res.Divergences++
		if res.Divergences <= maxReports {
			report(describe(seed, i, start, o, history, a, b, ra, rb, sa, sb))
		}
		closePair(a, b)
		if a, b, err = newPair(newA, newB); err != nil {
			return res, err
		}
		start, history = i+1, nil
	}
	return res, nil
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

func describe(seed uint64, i, start int, o op, history []string, a, b *replica, ra, rb, sa, sb string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "divergence: seed=%d op=#%d (backends fresh since #%d): %v\n", seed, i, start, o)
	fmt.Fprintf(&s, "  replay: go test ./internal/conformance/ -run TestDifferential -diff.seed=%d -diff.ops=%d\n", seed, i+1)
	fmt.Fprintf(&s, "  %-9s result: %s\n", a.env.Name(), ra)
	fmt.Fprintf(&s, "  %-9s result: %s\n", b.env.Name(), rb)
	if sa != sb {
		la, lb := strings.Split(sa, "\n"), strings.Split(sb, "\n")
		for j := range max(len(la), len(lb)) {
			x, y := line(la, j), line(lb, j)
			if x != y {
				fmt.Fprintf(&s, "  state %-9s %s\n  state %-9s %s\n", a.env.Name()+":", x, b.env.Name()+":", y)
			}
		}
	}
	s.WriteString("  operations since the backends were fresh (last ones):\n")
	for _, h := range history {
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
