package dptraffic

import (
	"bytes"
	"flag"
	"testing"

	"github.com/tcxgo/tcx/port"
)

var update = flag.Bool("update", false, "rewrite testdata/datapath/demo.pcap")

const demoPcap = "../../../testdata/datapath/demo.pcap"

// The committed demo capture is what Demo builds (go test -update
// rewrites it).
func TestDemoPcapUpToDate(t *testing.T) {
	if *update {
		if err := WritePcap(demoPcap, Demo()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := port.ReadPcapFile(demoPcap)
	if err != nil {
		t.Fatal(err)
	}
	want := Demo()
	if len(got) != len(want) {
		t.Fatalf("%s has %d frames, Demo %d (run with -update)", demoPcap, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i].Data) || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("frame %d differs (run with -update)", i)
		}
	}
}
