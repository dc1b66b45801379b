package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcxgo/tcx/port"
)

// runTool runs tcx with args and returns exit code, stdout and stderr.
func runTool(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// goldenText compares text with testdata/<name>.golden (-update rewrites).
func goldenText(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s", path, got)
	}
}

const demoTopology = "../../testdata/datapath/demo.yaml"

// testEngine is the engine the run tests use (the default).
const testEngine = "auto"

// The demo: trace, summary, maps and recordings of the bundled topology.
func TestRun_DemoTopology(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runTool(t, "run", "--topology", demoTopology, "--trace", "--dump-maps", "--no-timings", "--record-dir", dir, "--engine", testEngine)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	goldenText(t, "run_demo", strings.ReplaceAll(out, dir, "OUT"))

	// The recordings hold what the summary says, with the NAT's rewrite.
	tx, err := port.ReadPcapFile(filepath.Join(dir, "eth1-transmitted.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := port.ReadPcapFile(filepath.Join(dir, "eth0-dropped.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tx) != 7 || len(dropped) != 1 {
		t.Fatalf("recorded %d transmitted, %d dropped; want 7 and 1", len(tx), len(dropped))
	}
	if src := tx[1].Data[26:30]; !bytes.Equal(src, []byte{192, 0, 2, 1}) {
		t.Errorf("ping leaves with source %v, want the NAT's 192.0.2.1", src)
	}
}

// --json gives one trip line per frame and a summary line, all JSON.
func TestRun_DemoJSON(t *testing.T) {
	code, out, errOut := runTool(t, "run", "--topology", demoTopology, "--json", "--trace-filter", "fate=dropped", "--record-dir", t.TempDir(), "--engine", testEngine)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one dropped trip and a summary, got %d lines:\n%s", len(lines), out)
	}
	var trip struct {
		Trip struct {
			Fate   string   `json:"fate"`
			Printk []string `json:"printk"`
			Steps  []struct {
				Program string `json:"program"`
				Code    int32  `json:"code"`
			} `json:"steps"`
		} `json:"trip"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &trip); err != nil {
		t.Fatal(err)
	}
	if trip.Trip.Fate != "dropped" || len(trip.Trip.Steps) != 2 || trip.Trip.Steps[1].Program != "acl" || trip.Trip.Steps[1].Code != 2 {
		t.Errorf("dropped trip: %+v", trip.Trip)
	}
	if len(trip.Trip.Printk) != 1 || !strings.Contains(trip.Trip.Printk[0], "9090") {
		t.Errorf("printk of the drop: %q", trip.Trip.Printk)
	}
	var sum struct {
		Summary struct {
			Devices []struct {
				Name     string
				RxErrors uint64 `json:"rx_errors"`
			} `json:"devices"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Summary.Devices) != 2 || sum.Summary.Devices[0].RxErrors != 2 {
		t.Errorf("summary: %+v", sum.Summary)
	}
}

// The flags-only form: one program on a capture, recording what it
// delivers.
func TestRun_FlagsOnly(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "delivered.pcap")
	code, stdout, errOut := runTool(t, "run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "pcap:../../testdata/datapath/demo.pcap",
		"--set", "blocked_port=80", "--record-delivered", out, "--no-timings", "--printk", filepath.Join(dir, "printk"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	goldenText(t, "run_flags", strings.ReplaceAll(stdout, dir, "OUT"))
	frames, err := port.ReadPcapFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 6 { // 8 good frames, 2 TCP to port 80 dropped
		t.Errorf("delivered %d frames, want 6", len(frames))
	}
	printk, err := os.ReadFile(filepath.Join(dir, "printk"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(printk), "dp_acl: drop tcp port 80\n"); n != 2 {
		t.Errorf("--printk file has %d drop lines, want 2:\n%s", n, printk)
	}
}

var lineCol = regexp.MustCompile(`\.yaml:\d+:\d+: `)

// Bad input: each error names what is wrong, and where.
func TestRun_BadInput(t *testing.T) {
	dir := t.TempDir()
	progs, _ := filepath.Abs("../../testdata/progs")
	xdp, _ := filepath.Abs("../../testdata/datapath/xdp_pass.o")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		body = strings.ReplaceAll(body, "PROGS", progs)
		body = strings.ReplaceAll(body, "XDP", xdp)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dev := "devices:\n  - name: eth0\n    ingress:\n      - { object: acl, program: dp_acl }\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
		lineCol    bool
	}{
		{"malformed", "workers: [1\n", []string{"malformed.yaml:1:"}, true},
		{"unknown key", "workers: 1\ndevcies: []\n", []string{"key.yaml:2:1", "devcies"}, true},
		{"wrong type", "workers: many\n", []string{"type.yaml:1:10"}, true},
		{"undeclared object", "devices:\n  - name: eth0\n    ingress:\n      - { object: nope, program: x }\n", []string{"object.yaml:4:19", `object "nope" is not declared`}, true},
		{"bad anchor", "objects:\n  - { name: acl, path: PROGS/dp_acl.o }\n" + dev + "      - { object: acl, program: dp_acl, link: b, after: zz }\n", []string{"anchor.yaml:7:57", `no link "zz" earlier`}, true},
		{"missing object", "objects:\n  - { name: acl, path: PROGS/nope.o }\n" + dev, []string{"object.yaml:2:24", "no such file"}, true},
		{"missing program", "objects:\n  - { name: acl, path: PROGS/dp_acl.o }\n" + strings.Replace(dev, "program: dp_acl", "program: dp_nope", 1), []string{"program.yaml:6:33", `no tc program "dp_nope"`, "(it has: dp_acl)"}, true},
		{"wrong program type", "objects:\n  - { name: acl, path: XDP }\n" + dev, []string{"type.yaml:2:", `program "xdp_pass" is XDP`, "not a tc program"}, true},
		{"bad variable", "objects:\n  - { name: acl, path: PROGS/dp_acl.o, set: { blocked_port: 70000 } }\n" + dev, []string{"variable.yaml:2:", "does not fit in 2 bytes"}, true},
		{"port that cannot be opened", "objects:\n  - { name: acl, path: PROGS/dp_acl.o }\n" + strings.Replace(dev, "name: eth0", "name: eth0\n    wire: afpacket:tcx-no-such", 1), []string{"opened.yaml:5:11", "afpacket:tcx-no-such", "no such network interface"}, true},
		{"bad port spec", "devices:\n  - name: eth0\n    host: pcap:x.pcap\n", []string{"spec.yaml:3:11", "read only"}, true},
		{"veth with wire", "devices:\n  - { name: a, veth: b, wire: discard }\n  - { name: b }\n", []string{"wire.yaml:2:", "a veth end has no wire"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := write(strings.Fields(tc.name)[len(strings.Fields(tc.name))-1]+".yaml", tc.yaml)
			code, _, errOut := runTool(t, "run", "--topology", file)
			if code == 0 {
				t.Fatal("exit 0")
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tc.lineCol && !lineCol.MatchString(errOut) {
				t.Errorf("no line:column in %q", errOut)
			}
			if strings.Contains(errOut, "panic") {
				t.Errorf("panicked: %s", errOut)
			}
		})
	}
}

// Flag mistakes are explained.
func TestRun_BadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "run needs --topology FILE, or --object and --wire"},
		{[]string{"run", "--object", "../../testdata/progs/dp_nat.o", "--wire", "discard"}, "has 2 programs (dp_dnat, dp_snat): choose one with --program"},
		{[]string{"run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "discard", "--hook", "sideways"}, `--hook "sideways"`},
		{[]string{"run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "discard", "--trace-filter", "colour=red"}, `unknown key "colour"`},
		{[]string{"run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "bogus:x"}, `port "bogus:x"`},
	} {
		code, _, errOut := runTool(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("tcx %v: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestRun_RunHelp(t *testing.T) { golden(t, "run_help", "run", "--help") }

// A live run ends at --duration with the progress line drawn and the
// summary printed (the same path as SIGINT: the context ends).
func TestRun_DurationProgress(t *testing.T) {
	start := time.Now()
	code, out, errOut := runTool(t, "run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "discard", "--duration", "1200ms", "--progress", "always")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to stop", d)
	}
	if !strings.Contains(errOut, "in 0 (0/s)") || !strings.Contains(out, "devices:") {
		t.Errorf("progress %q, summary %q", errOut, out)
	}
}

// --trace-filter terms select trips of the demo capture (8 frames reach
// the programs; the runt and the oversized frame are receive errors).
func TestRun_TraceFilter(t *testing.T) {
	for _, tc := range []struct {
		filter string
		trips  int
	}{
		{"", 8},
		{"fate=transmitted", 7},
		{"fate=dropped proto=tcp port=9090", 1},
		{"proto=tcp", 4},
		{"proto=udp", 2},
		{"proto=ipv6", 1},
		{"proto=arp", 1},
		{"proto=icmp", 1},
		{"host=10.0.0.3", 1},
		{"port=53", 2},
		{"dev=eth1", 7},
		{"prog=fwd", 7},
		{"fate=delivered", 0},
	} {
		args := []string{"run", "--topology", demoTopology, "--json", "--record-dir", t.TempDir(), "--trace"}
		if tc.filter != "" {
			args = append(args, "--trace-filter", tc.filter)
		}
		code, out, errOut := runTool(t, args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", tc.filter, code, errOut)
		}
		if n := strings.Count(out, `{"trip":`); n != tc.trips {
			t.Errorf("--trace-filter %q: %d trips, want %d", tc.filter, n, tc.trips)
		}
	}
}

// TestRun_LoadTimeChecks: an object the kernel's verifier refuses (its
// bpf-to-bpf calls need 544 bytes of stack) runs in tcx run with the
// finding on stderr, and --strict refuses it with EACCES, saying why, as
// test-run does (TestTestRun_Strict).
func TestRun_LoadTimeChecks(t *testing.T) {
	const obj = "../../testdata/thirdparty/selftests/rejected/test_global_func1.o"
	args := []string{"run", "--object", obj, "--program", "global_func1", "--wire", "pcap:../../testdata/datapath/demo.pcap", "--no-timings", "--progress", "never"}
	code, _, errOut := runTool(t, args...)
	const warning = `warning: object obj: program "global_func1": insn 20: combined stack size of 3 calls is 544. Too large [stack-depth]`
	if code != 0 || !strings.Contains(errOut, warning+"\n") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 0 and %s", code, errOut, warning)
	}
	code, _, errOut = runTool(t, append(args, "--strict")...)
	if code == 0 || !strings.Contains(errOut, "combined stack size of 3 calls is 544") || !strings.Contains(errOut, "permission denied") ||
		!strings.Contains(errOut, "without --strict it runs, with a warning") {
		t.Errorf("--strict: exit %d, stderr:\n%s\nwant a refusal naming the check", code, errOut)
	}
}
