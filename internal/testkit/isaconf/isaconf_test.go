package isaconf

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/internal/vm/amd64"
)

// corpusDir is the corpus committed under testdata/bpf_conformance (MIT,
// see its ORIGIN.md), so every clone runs it.
const corpusDir = "../../../testdata/bpf_conformance/tests"

// skips lists corpus files this runtime documents as unsupported, with why.
// It is empty: everything passes, callx included (opt-in AllowCallx).
var skips = map[string]string{}

func TestCase_Run_Corpus(t *testing.T) { corpus(t, vm.EngineInterp, "bpf_conformance:") }

// TestCase_Run_CorpusJIT runs the corpus compiled to machine code; a
// program the compiler declined counts as failed, not as interpreted.
func TestCase_Run_CorpusJIT(t *testing.T) {
	if !amd64.Supported {
		t.Skipf("no compiler for %s/%s: the interpreter runs everywhere else", runtime.GOOS, runtime.GOARCH)
	}
	corpus(t, vm.EngineJIT, "bpf_conformance (jit):")
}

// label is the summary line's prefix, colon included, as it is printed.
func corpus(t *testing.T, e vm.Engine, label string) {
	dir := corpusDir
	files, err := filepath.Glob(filepath.Join(dir, "*.data"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var passed, failed, skipped int
	for _, f := range files {
		c, err := ParseFile(f)
		if err != nil {
			t.Errorf("%v", err)
			failed++
			continue
		}
		if why, ok := skips[c.Name]; ok {
			fmt.Printf("bpf_conformance: skip %s: %s\n", c.Name, why)
			skipped++
			continue
		}
		ok := t.Run(c.Name, func(t *testing.T) { check(t, c, e) })
		if ok {
			passed++
		} else {
			failed++
		}
	}
	fmt.Printf("%s %d passed, %d failed, %d skipped\n", label, passed, failed, skipped)
	if passed+failed+skipped != len(files) || len(files) == 0 {
		t.Errorf("counted %d of %d files", passed+failed+skipped, len(files))
	}
}

func check(t *testing.T, c *Case, e vm.Engine) {
	r0, p, err := c.RunOn(e)
	if p != nil && e == vm.EngineJIT {
		if ok, why := p.Compiled(); !ok {
			t.Errorf("not compiled: %s", why)
		}
	}
	switch {
	case c.Error != "":
		if err == nil {
			t.Errorf("want error %q, got r0 = %#x", c.Error, r0)
		}
	case err != nil:
		t.Errorf("run: %v", err)
	case !c.HasResult:
		t.Errorf("no -- result section")
	case r0 != c.Result:
		t.Errorf("r0 = %#x, want %#x", r0, c.Result)
	}
}
