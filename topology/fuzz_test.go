package topology_test

import (
	"os"
	"testing"

	"github.com/tcxgo/tcx/topology"
)

// FuzzParse: any bytes give a topology or an error, never a panic, and
// every error from a file names a line.
func FuzzParse(f *testing.F) {
	demo, err := os.ReadFile("../testdata/datapath/demo.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	f.Add([]byte(yamlText))
	f.Add([]byte(nsYAML))
	f.Add([]byte(routesYAML))
	f.Add([]byte("devices:\n  - name: a\n    veth: a\n"))
	f.Add([]byte("workers: [\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := topology.Parse("f.yaml", src)
		if te, ok := err.(*topology.Error); ok && te.File != "f.yaml" {
			t.Errorf("error names file %q", te.File)
		}
	})
}
