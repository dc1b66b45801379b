package ops

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestObjects_UpToDate rebuilds the operator tests' BPF objects
// (testdata/progs/ops) and compares them with the committed ones.
func TestObjects_UpToDate(t *testing.T) {
	for _, tool := range []string{"clang-19", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot rebuild testdata/progs/ops to compare", tool)
		}
	}
	dir, out := filepath.Join("..", "testdata", "progs", "ops"), t.TempDir()
	if b, err := exec.Command("make", "-s", "-B", "-C", dir, "OUT="+out).CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, b)
	}
	srcs, _ := filepath.Glob(filepath.Join(dir, "*.c"))
	if len(srcs) == 0 {
		t.Fatal("no sources")
	}
	for _, src := range srcs {
		obj := strings.TrimSuffix(filepath.Base(src), ".c") + ".o"
		fresh, err := os.ReadFile(filepath.Join(out, obj))
		committed, cerr := os.ReadFile(filepath.Join(dir, obj))
		if err != nil || cerr != nil || !bytes.Equal(fresh, committed) {
			t.Errorf("%s is stale or missing (%v, %v): run make -C testdata/progs/ops", obj, err, cerr)
		}
	}
}
