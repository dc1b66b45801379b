package engine_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/tcxgo/tcx/engine"
)

// TestOptions_Engine: the engine a program runs on is the one asked for,
// auto compiles exactly where the compiler runs, and a program that does
// not run compiled says why. Both engines give the same run.
func TestOptions_Engine(t *testing.T) {
	native := runtime.GOOS == "linux" && runtime.GOARCH == "amd64"
	spec := corpusSpec(t, "l4_classify")
	type outcome struct {
		retval uint32
		data   string
	}
	var results []outcome
	for _, c := range []struct {
		e        engine.Engine
		compiled bool
		why      string
	}{
		{engine.EngineInterp, false, "interpreter chosen"},
		{engine.EngineJIT, native, "no compiler"},
		{engine.EngineAuto, native, "no compiler"},
	} {
		coll := newCollection(t, spec, engine.Options{NumCPU: 1, Engine: c.e})
		p := coll.Programs["l4_classify"]
		ok, why := p.Compiled()
		if ok != c.compiled || (!ok && !strings.Contains(why, c.why)) {
			t.Errorf("%v: Compiled() = %v, %q; want %v (%q)", c.e, ok, why, c.compiled, c.why)
		}
		for _, f := range frames(20, 1) {
			rv, data, _, err := p.TestRun(f, nil)
			if err != nil {
				t.Fatalf("%v: %v", c.e, err)
			}
			results = append(results, outcome{rv, string(data)})
		}
	}
	for i := range results {
		if results[i] != results[i%20] {
			t.Errorf("run %d: %+v, interpreter %+v", i, results[i], results[i%20])
		}
	}
	for _, name := range []string{"auto", "interp", "jit"} {
		e, err := engine.ParseEngine(name)
		if err != nil || e.String() != name {
			t.Errorf("ParseEngine(%q) = %v, %v", name, e, err)
		}
	}
	if _, err := engine.ParseEngine("llvm"); err == nil {
		t.Error("ParseEngine accepted llvm")
	}
}
