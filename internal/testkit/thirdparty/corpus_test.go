package thirdparty_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcxgo/tcx/internal/testkit/thirdparty"
)

// TestCorpus_SourcesAndLicences: every object of the corpus has its C
// source beside it, every source states its licence (an SPDX line, or the
// file is one ORIGIN.md names), and every directory says where it came
// from and carries the licence texts.
func TestCorpus_SourcesAndLicences(t *testing.T) {
	dirs := append([]string{thirdparty.RejectedDir}, thirdparty.Dirs...)
	for _, dir := range dirs {
		objs, err := thirdparty.Objects(dir)
		if err != nil {
			t.Fatal(err)
		}
		root := dir
		for _, err := os.Stat(filepath.Join(root, "ORIGIN.md")); err != nil && root != "."; _, err = os.Stat(filepath.Join(root, "ORIGIN.md")) {
			root = filepath.Dir(root)
		}
		origin, err := os.ReadFile(filepath.Join(root, "ORIGIN.md"))
		if err != nil {
			t.Fatalf("%s: no ORIGIN.md above it", dir)
		}
		licences, _ := filepath.Glob(filepath.Join(root, "LICENSE*"))
		more, _ := filepath.Glob(filepath.Join(root, "LICENSES", "*"))
		if len(licences)+len(more) == 0 {
			t.Errorf("%s: no licence texts", root)
		}
		for _, obj := range objs {
			src := strings.TrimSuffix(obj, ".o") + ".c"
			if filepath.Base(obj) == "bpf_bpfel.o" { // bpf2go names the object after the Go package
				src = filepath.Join(dir, "tcx.c")
			}
			text, err := os.ReadFile(src)
			if err != nil {
				t.Errorf("%s: no source: %v", obj, err)
				continue
			}
			if !strings.Contains(string(text), "SPDX-License-Identifier") && !strings.Contains(string(origin), filepath.Base(src)) {
				t.Errorf("%s states no licence and ORIGIN.md does not name it", src)
			}
		}
	}
}
