package conformance

import (
	"testing"

	"github.com/tcxgo/tcx"
)

// scenario is one selftest of tc_opts.c or tc_links.c, named after it.
type scenario struct {
	name string
	run  func(h *hook)
}

// scenarios lists every selftest of tc_opts.c (20) and tc_links.c (14) in
// the order of spec section 3. Selftests with parameters (chain_classic,
// delete_empty, max, ingress) run their variants as subtests of one case.
func scenarios() []scenario {
	return []scenario{
		{"tc_opts_basic", tcOptsBasic},
		{"tc_opts_before", tcOptsBefore},
		{"tc_opts_after", tcOptsAfter},
		{"tc_opts_revision", tcOptsRevision},
		{"tc_opts_chain_classic", tcOptsChainClassic},
		{"tc_opts_replace", tcOptsReplace},
		{"tc_opts_invalid", tcOptsInvalid},
		{"tc_opts_prepend", tcOptsPend(fBefore)},
		{"tc_opts_append", tcOptsPend(fAfter)},
		{"tc_opts_dev_cleanup", tcOptsDevCleanup},
		{"tc_opts_mixed", tcOptsMixed},
		{"tc_opts_demixed", tcOptsDemixed},
		{"tc_opts_detach", tcOptsDetach},
		{"tc_opts_detach_before", tcOptsDetachBefore},
		{"tc_opts_detach_after", tcOptsDetachAfter},
		{"tc_opts_delete_empty", tcOptsDeleteEmpty},
		{"tc_opts_chain_mixed", tcOptsChainMixed},
		{"tc_opts_max", tcOptsMax},
		{"tc_opts_query", tcOptsQuery},
		{"tc_opts_query_attach", tcOptsQueryAttach},

		{"tc_links_basic", tcLinksBasic},
		{"tc_links_before", tcLinksBefore},
		{"tc_links_after", tcLinksAfter},
		{"tc_links_revision", tcLinksRevision},
		{"tc_links_chain_classic", tcLinksChainClassic},
		{"tc_links_replace", tcLinksReplace},
		{"tc_links_invalid", tcLinksInvalid},
		{"tc_links_prepend", tcLinksPend(fBefore)},
		{"tc_links_append", tcLinksPend(fAfter)},
		{"tc_links_dev_cleanup", tcLinksDevCleanup},
		{"tc_links_chain_mixed", tcLinksChainMixed},
		{"tc_links_ingress", tcLinksIngress},
		{"tc_links_dev_chain0", tcLinksDevChain0},
		{"tc_links_dev_mixed", tcLinksDevMixed},
	}
}

// Result counts the scenario cases (scenario x direction) of one backend.
type Result struct {
	Passed, Failed int
}

// Run runs every scenario in both directions against fresh Envs from newEnv,
// each case as the subtest <scenario>/<direction>, and counts the outcomes.
func Run(t *testing.T, newEnv Factory) Result {
	var r Result
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			for _, dir := range []tcx.Direction{tcx.Ingress, tcx.Egress} {
				if t.Run(dir.String(), func(t *testing.T) { runCase(t, newEnv, s, dir) }) {
					r.Passed++
				} else {
					r.Failed++
				}
			}
		})
	}
	return r
}

func runCase(t *testing.T, newEnv Factory, s scenario, dir tcx.Direction) {
	env, err := newEnv()
	if err != nil {
		t.Fatalf("create env: %v", err)
	}
	// Cleanups run last-in first-out: devices the scenario made, then its
	// links and programs, then the Env itself.
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("close env: %v", err)
		}
	})
	h := newHook(t, env, dir)
	t.Cleanup(h.destroy)
	s.run(h)
}
