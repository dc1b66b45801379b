package conformance

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

var (
	diffSeed = flag.Uint64("diff.seed", 0, "seed of the differential test (0: $TCX_DIFF_SEED, else time-based)")
	diffOps  = flag.Int("diff.ops", 0, "operations of the differential test (0: $TCX_DIFF_OPS, else 10000)")
	diffSkip = flag.String("diff.skip", "", "comma-separated operation kinds the differential test leaves out")
)

// seedAndOps resolves the replay knobs: flag, then environment, then default.
func seedAndOps(t *testing.T) (uint64, int) {
	seed, ops := *diffSeed, *diffOps
	if seed == 0 {
		if s := os.Getenv("TCX_DIFF_SEED"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("TCX_DIFF_SEED: %v", err)
			}
			seed = v
		} else {
			seed = uint64(time.Now().UnixNano())
		}
	}
	if ops == 0 {
		ops = 10000
		if s := os.Getenv("TCX_DIFF_OPS"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("TCX_DIFF_OPS: %v", err)
			}
			ops = v
		}
	}
	return seed, ops
}

// TestDifferential drives the userspace runtime and the kernel with the same
// random operation sequence and fails on any difference in a result or in
// the state that follows it.
func TestDifferential(t *testing.T) {
	requireKernel(t)
	seed, ops := seedAndOps(t)
	t.Logf("differential seed %d (replay: -diff.seed=%d or TCX_DIFF_SEED=%d)", seed, seed, seed)
	res, err := Differential(seed, ops, *diffSkip, NewUserspaceEnv, NewKernelEnv, func(report string) { t.Error(report) })
	if err != nil {
		t.Fatalf("differential (seed %d) after %d ops: %v", seed, res.Ops, err)
	}
	keys := slices.Sorted(maps.Keys(res.Outcomes))
	for _, k := range keys {
		t.Logf("  %6d  %s", res.Outcomes[k], k)
	}
	summary := fmt.Sprintf("differential: %d ops, %d divergences", res.Ops, res.Divergences)
	t.Log(summary)
	fmt.Println(summary)
	if res.Divergences > maxReports {
		t.Errorf("%d more divergences not shown (seed %d)", res.Divergences-maxReports, seed)
	}
}
