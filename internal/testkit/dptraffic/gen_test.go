package dptraffic

import (
	"bytes"
	"flag"
	"testing"

	"github.com/tcxgo/tcx/port"
)

var update = flag.Bool("update", false, "rewrite testdata/datapath/demo.pcap and fib_router.pcap")

const (
	demoPcap   = "../../../testdata/datapath/demo.pcap"
	routerPcap = "../../../testdata/datapath/fib_router.pcap"
)

// The committed demo capture is what Demo builds (go test -update
// rewrites it).
func TestDemoPcapUpToDate(t *testing.T) { pcapUpToDate(t, demoPcap, Demo()) }

// The router demo's capture is what RouterDemo builds.
func TestRouterPcapUpToDate(t *testing.T) { pcapUpToDate(t, routerPcap, RouterDemo()) }

func pcapUpToDate(t *testing.T, path string, want []port.Frame) {
	if *update {
		if err := WritePcap(path, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := port.ReadPcapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s has %d frames, want %d (run with -update)", path, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i].Data) || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("%s: frame %d differs (run with -update)", path, i)
		}
	}
}
