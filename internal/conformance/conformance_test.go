package conformance

import (
	"fmt"
	"testing"
)

// TestConformance runs all 34 selftest scenarios of tc_opts.c and
// tc_links.c, each for ingress and egress, against every backend, and prints
// one summary line per backend.
func TestConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			defer func() {}()
			if b.require != nil {
				b.require(t)
			}
			r := Run(t, b.factory)
			summary := fmt.Sprintf("conformance %s: %d passed, %d failed", b.name, r.Passed, r.Failed)
			t.Log(summary)
			fmt.Println(summary)
		})
	}
}
