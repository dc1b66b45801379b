package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcxgo/tcx/port"
)

// A router on bpf_fib_lookup: fib_router.yaml's devices, addresses,
// routes and neighbours feed the FIB dp_fib_fwd looks up; each frame of
// fib_router.pcap is forwarded out of the device the lookup named with
// the MACs it returned, dropped (blackhole, unreachable, prohibit) or
// passed up (no route, the router's own address, no neighbour, too big).
// datapath's TestFibRouter_Kernel checks the same program and routes
// against the kernel's tcx.
func TestRun_FibRouter(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runTool(t, "run", "--topology", "../../testdata/datapath/fib_router.yaml", "--trace", "--dump-maps", "--no-timings", "--record-dir", dir, "--engine", testEngine)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	goldenText(t, "run_fib_router", strings.ReplaceAll(out, dir, "OUT"))
	r1, err := port.ReadPcapFile(filepath.Join(dir, "r1-transmitted.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	// The first frame, to 192.168.5.5 through 10.1.0.254 on r1: the
	// gateway's MAC, r1's, TTL 63.
	if len(r1) == 0 {
		t.Fatal("nothing left by r1")
	}
	f := r1[0].Data
	if !bytes.Equal(f[:12], []byte{2, 0, 0, 0, 0xfe, 1, 2, 0, 0, 0, 1, 1}) || f[14+8] != 63 {
		t.Errorf("first frame out of r1: % x", f[:24])
	}
}
