package conformance

import (
	"fmt"
	"testing"
)

type backendCase struct {
	name    string
	factory Factory
	// require gates the backend: it skips the test (or fails it, with
	// TCX_REQUIRE_KERNEL=1) when the backend cannot run here.
	require func(t *testing.T)
}

func backends() []backendCase {
	return []backendCase{
		{name: "userspace", factory: NewUserspaceEnv},
		{name: "kernel", factory: NewKernelEnv, require: requireKernel},
	}
}

// TestConformance runs all 34 selftest scenarios of tc_opts.c and
// tc_links.c, each for ingress and egress (68 cases), against every backend
// and prints one summary line per backend:
//
//	conformance userspace: 68 passed, 0 failed
//	conformance kernel: 68 passed, 0 failed
func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			var r Result
			// Deferred so that a skipped backend still reports (0 and 0).
			defer func() {
				summary := fmt.Sprintf("conformance %s: %d passed, %d failed", b.name, r.Passed, r.Failed)
				if t.Skipped() {
					summary += " (skipped)"
				}
				t.Log(summary)
				fmt.Println(summary)
			}()
			if b.require != nil {
				b.require(t)
			}
			r = Run(t, b.factory)
		})
	}
}
