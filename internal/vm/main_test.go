package vm_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/internal/vm/amd64"
)

// engineEnv names the engine the package's tests load programs with:
// unset or "interp" is the interpreter, "jit" the compiler.
const engineEnv = "VM_TEST_ENGINE"

// engineOpts sets the engine of the run (see engineEnv) on opts that
// name none.
func engineOpts(opts vm.Options) vm.Options {
	if opts.Engine == vm.EngineInterp && os.Getenv(engineEnv) == "jit" {
		opts.Engine = vm.EngineJIT
	}
	return opts
}

// TestMain runs every test of the package twice where the compiler runs:
// in the interpreter, then in a child process with VM_TEST_ENGINE=jit, so
// the whole interpreter suite (faults, limits, calls, helpers, the fuzz
// seeds) also holds for compiled code. A child keeps a crash of compiled
// code from taking the parent's report with it. Fuzzing, benchmarks,
// listing and coverage runs are not repeated.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code != 0 || !amd64.Supported || os.Getenv(engineEnv) != "" || !repeatable() {
		os.Exit(code)
	}
	fmt.Printf("internal/vm: the same tests on the JIT (%s=jit)\n", engineEnv)
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), engineEnv+"=jit")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Printf("internal/vm on the JIT: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func repeatable() bool {
	for _, name := range []string{"test.fuzz", "test.bench", "test.list", "test.coverprofile", "test.cpuprofile", "test.memprofile"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	f := flag.Lookup("test.fuzzworker")
	return f == nil || f.Value.String() != "true"
}
