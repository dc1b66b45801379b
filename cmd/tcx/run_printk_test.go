package main

import (
	"strings"
	"testing"
)

// Without --printk and without a trace, bpf_printk lines go to stderr, one
// line per call, and not to stdout.
func TestRun_PrintkStderr(t *testing.T) {
	code, stdout, errOut := runTool(t, "run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "pcap:../../testdata/datapath/demo.pcap",
		"--set", "blocked_port=80", "--no-timings")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(errOut, "dp_acl: drop tcp port 80\n"); n != 2 {
		t.Errorf("stderr has %d printk drop lines, want 2:\n%s", n, errOut)
	}
	if strings.Contains(stdout, "dp_acl: drop") {
		t.Errorf("printk output on stdout:\n%s", stdout)
	}
}

// The sink completes a line without allocating once its buffer has grown.
func TestPrintkSink_ZeroAllocs(t *testing.T) {
	var got strings.Builder
	got.Grow(1 << 20)
	p := &printkSink{w: &got}
	msg := []byte("dp_acl: drop tcp port 80")
	allocs := testing.AllocsPerRun(1000, func() {
		if n, err := p.Write(msg); err != nil || n != len(msg) {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per printk line, want 0", allocs)
	}
	if !strings.HasPrefix(got.String(), "dp_acl: drop tcp port 80\ndp_acl: drop tcp port 80\n") {
		t.Errorf("lines %q", got.String()[:60])
	}
}
