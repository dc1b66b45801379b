package tcx_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGoModTidy keeps go.mod as `go mod tidy` writes it: a module the
// project imports directly is a direct requirement, not "// indirect", and
// nothing unused is required. go.mod was tidied once (issue 9) and drifted
// back when topology began importing go-yaml and the encoder test x/arch;
// this test is what keeps it tidy. `go mod tidy -diff` prints the
// difference and exits 1 when go.mod or go.sum is not tidy; any other
// failure (no go tool, modules it cannot fetch offline) skips, saying why.
func TestGoModTidy(t *testing.T) {
	if testing.Short() {
		t.Skip("go mod tidy loads every package and test of the module; not in -short mode")
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to run go mod tidy with: %v", err)
	}
	cmd := exec.Command(gotool, "mod", "tidy", "-diff")
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && stdout.Len() > 0:
		t.Errorf("go.mod or go.sum is not tidy (run go mod tidy):\n%s", stdout.String())
	default:
		t.Skipf("go mod tidy -diff could not run: %v\n%s", err, strings.TrimSpace(stderr.String()))
	}
}
