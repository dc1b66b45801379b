package thirdparty_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/thirdparty"
	"github.com/tcxgo/tcx/kernel"
)

// checkedReasons are the verifier messages of what the engine's load-time
// checks cover.
var checkedReasons = regexp.MustCompile(`combined stack size|tail_calls are not allowed|Caller passes invalid args|doesn't return scalar|expects pointer to ctx|modified ctx ptr|invalid access to packet|outside of the packet`)

// TestThirdParty_LoadTimeChecks loads every tc program of the rejected
// selftests and of the corpus on its own into the kernel and into the
// engine (default options, then Strict): a program the engine warns about
// must be one the kernel refuses (no false alarm), Strict must refuse
// exactly the programs with warnings, with EACCES, and the programs the
// kernel refuses for a reason the checks cover are counted as caught or
// missed ("when provable": the checks are cheap, not a verifier).
func TestThirdParty_LoadTimeChecks(t *testing.T) {
	kerneltest.RequireKernel(t)
	var objs []string
	for _, dir := range append([]string{thirdparty.RejectedDir}, thirdparty.Dirs...) {
		o, err := thirdparty.Objects(dir)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	var nprogs, covered, caught, falseAlarms int
	for _, obj := range objs {
		_, tcOnly, err := thirdparty.Specs(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range sortedKeys(tcOnly.Programs) {
			one := tcOnly.Copy()
			one.Programs = map[string]*ebpf.ProgramSpec{name: one.Programs[name]}
			id := filepath.Base(obj) + "/" + name
			coll, eerr := engine.NewCollection(one, engine.Options{NumCPU: 1})
			if eerr != nil {
				continue // refused for another reason (helpers, kfuncs, ...)
			}
			warns := checkWarnings(coll)
			coll.Close()
			nprogs++
			kern, kerr := kernel.NewTestRunner(one)
			if kerr == nil {
				kern.Close()
			}
			isCovered := kerr != nil && checkedReasons.MatchString(kerr.Error())
			if isCovered {
				covered++
			}
			switch {
			case len(warns) > 0 && kerr == nil:
				falseAlarms++
				t.Errorf("%s: the kernel loads it, the engine warns: %v", id, warns)
			case len(warns) > 0:
				caught++
				t.Logf("%s: caught: %v (kernel: %v)", id, warns[0], firstLine(kerr))
			case isCovered:
				t.Logf("%s: missed: the kernel refuses it (%v), the engine's checks do not see it", id, firstLine(kerr))
			}
			_, serr := engine.NewCollection(one, engine.Options{NumCPU: 1, Strict: true})
			if (serr != nil) != (len(warns) > 0) || (serr != nil && !errors.Is(serr, syscall.EACCES)) {
				t.Errorf("%s: strict load: %v, with %d warnings by default", id, serr, len(warns))
			}
		}
	}
	line := fmt.Sprintf("load-time checks: %d programs, %d refused by the kernel for a checked reason, %d caught, %d false alarms", nprogs, covered, caught, falseAlarms)
	fmt.Println(line)
	t.Log(line)
	if caught < 5 {
		t.Errorf("caught %d programs; the rejected selftests hold at least 5 the checks see", caught)
	}
}

func checkWarnings(c *engine.Collection) []engine.Warning {
	var out []engine.Warning
	for _, w := range c.Warnings {
		if w.Check != engine.CheckSkipped {
			out = append(out, w)
		}
	}
	return out
}

func firstLine(err error) string {
	s := err.Error()
	if m := checkedReasons.FindString(s); m != "" {
		return m
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
