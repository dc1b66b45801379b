package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Paths as the golden files show them: relative to cmd/tcx, where go test
// runs, so the output never depends on the checkout location.
const (
	objNat44     = progsDir + "/nat44.o"
	objL3Forward = progsDir + "/l3_forward.o"
	objICMPEcho  = progsDir + "/icmp_echo.o"
	// hexEcho is the ICMP echo request of the fixtures, as a user would
	// paste it: MAC addresses colon-separated, the rest spaced.
	hexEcho = "02:00:00:00:00:01 02:00:00:00:00:0a 08 00 " +
		"4500002012344000400114a70a0000020a000001080019270007000170696e670000000000000000000000000000"
)

// goldenEngines checks a test-run golden output on every engine: the
// interpreter and the compiler must print the same bytes, instruction
// counts included.
func goldenEngines(t *testing.T, name string, args ...string) {
	t.Helper()
	for _, e := range []string{"interp", "jit"} {
		t.Run(e, func(t *testing.T) { golden(t, name, append(args, "--engine", e)...) })
	}
}

// objCrypto is the kernel selftests' crypto_bench.o (third-party corpus).
const objCrypto = "../../testdata/thirdparty/selftests/progs/crypto_bench.o"

// A crypto context made by the object's syscall program, then 16 bytes
// encrypted into .bss (the bytes are compared with the kernel's by
// internal/testkit/thirdparty); strings set char arrays.
func TestRun_TestRunCryptoSyscall(t *testing.T) {
	goldenEngines(t, "testrun_crypto", "test-run", objCrypto, "--set", `cipher="ecb(aes)"`, "--set", `key="12345678testtest"`,
		"--set", "key_len=16", "--syscall", "crypto_setup", "--prog", "crypto_encrypt", "--hex", "31323334353637383132333435363700", "--dump-maps")
}

func TestRun_TestRunNat44(t *testing.T) {
	goldenEngines(t, "testrun_nat44", "test-run", objNat44, "--hex-file", fixtureHex, "--dump-maps")
}

func TestRun_TestRunL3ForwardPcap(t *testing.T) {
	goldenEngines(t, "testrun_l3_forward", "test-run", objL3Forward, "--prog", "l3_forward", "--pcap", fixturePcap,
		"--set", "out_ifindex=7", "--set", "next_hop_mac=02:00:00:00:00:99")
}

func TestRun_TestRunICMPEchoIfindex(t *testing.T) {
	goldenEngines(t, "testrun_icmp_echo", "test-run", objICMPEcho, "--hex", hexEcho, "--ifindex", "5", "--show-data")
}

func TestRun_TestRunQoSMarkCtx(t *testing.T) {
	goldenEngines(t, "testrun_qos_mark", "test-run", progsDir+"/qos_mark.o", "--hex-file", fixtureHex,
		"--ctx-cb", "3", "--ctx-mark", "0x10", "--ctx-priority", "6")
}

func TestRun_TestRunVlanPushLength(t *testing.T) {
	goldenEngines(t, "testrun_vlan_push", "test-run", progsDir+"/vlan_push.o", "--pcap", fixturePcap)
}

func TestRun_TestRunMapKinds(t *testing.T) {
	// per-CPU maps, a prog array filled by the ELF and a ring buffer
	goldenEngines(t, "testrun_maps", "test-run", progsDir+"/proto_counters.o", "--pcap", fixturePcap, "--dump-maps")
	goldenEngines(t, "testrun_tail_dispatch", "test-run", progsDir+"/tail_dispatch.o", "--prog", "tail_dispatch",
		"--pcap", fixturePcap, "--dump-maps")
	goldenEngines(t, "testrun_flow_events", "test-run", progsDir+"/flow_events.o", "--pcap", fixturePcap, "--dump-maps")
}

// TestRun_TestRunTunnelMetadata shows the tunnel metadata a program
// attaches (key, flags, Geneve option), in text and JSON.
func TestRun_TestRunTunnelMetadata(t *testing.T) {
	// IPv4 10.1.2.7 -> 198.51.100.9, TOS 0x28 (DSCP 10), UDP.
	frame := "02:00:00:00:00:01 02:00:00:00:00:0a 08 00 45 28 00 1c 00 01 00 00 40 11 00 00" +
		" 0a 01 02 07 c6 33 64 09 30 39 00 35 00 08 00 00"
	goldenEngines(t, "testrun_tunnel_md", "test-run", progsDir+"/tunnel_md.o", "--hex", frame, "--dump-maps")
	goldenEngines(t, "testrun_tunnel_md_json", "test-run", progsDir+"/tunnel_md.o", "--hex", frame, "--json")
}

func TestRun_TestRunList(t *testing.T) {
	golden(t, "testrun_list", "test-run", progsDir+"/tail_dispatch.o", "--list")
	golden(t, "testrun_list_variables", "test-run", progsDir+"/config_filter.o", "--list")
	golden(t, "testrun_list_json", "test-run", objL3Forward, "--list", "--json")
}

func TestRun_TestRunJSON(t *testing.T) {
	goldenEngines(t, "testrun_json", "test-run", objNat44, "--hex", hexEcho, "--hex-file", fixtureHex, "--json", "--dump-maps")
}

func TestRun_TestRunHelp(t *testing.T) {
	golden(t, "testrun_help", "test-run", "--help")
}

// TestRun_TestRunSockets: the socket lookups of a kernel selftest find a
// --socket listener (lookup_status 1 in .bss) and miss without one (0).
func TestRun_TestRunSockets(t *testing.T) {
	const obj = "../../testdata/thirdparty/selftests/progs/vrf_socket_lookup.o"
	const syn = "020000000002 020000000001 0800 4500002800010000400600007f0000017f000001 9c40 1f90 00000000 00000000 5002ffff00000000"
	golden(t, "testrun_sockets", "test-run", obj, "--prog", "tc_socket_lookup", "--socket", "tcp listen 127.0.0.1:8080 cookie=7",
		"--socket", "udp 127.0.0.1:53", "--hex", syn, "--dump-maps")
	golden(t, "testrun_nosockets", "test-run", obj, "--prog", "tc_socket_lookup", "--hex", syn, "--dump-maps")
}

// TestRun_TestRunSkAssign: test_assign_reuse assigns the socket of its
// sockmap at tc ingress (the skb's sk becomes its cookie); as
// BPF_PROG_TEST_RUN's skb, not at ingress, it gets -EOPNOTSUPP and drops.
func TestRun_TestRunSkAssign(t *testing.T) {
	args := []string{"test-run", "../../testdata/thirdparty/selftests/progs/test_assign_reuse.o", "--prog", "tc_main",
		"--set", "dest_port=4321", "--socket", "tcp 127.0.0.1:4321 127.0.0.1:40000 cookie=5", "--sockmap", "sk_map:0=5",
		"--hex", "020000000002 020000000001 0800 4500002800010000400600007f0000017f000001 9c40 10e1 00000000 00000000 5002ffff00000000"}
	golden(t, "testrun_sk_assign", append(args, "--at-ingress")...)
	golden(t, "testrun_sk_assign_testrun", args...)
}

// TestRun_TestRunErrors runs bad invocations and compares what they print on
// stderr with testdata/testrun_errors.golden, one "$ args" block per case.
// Each must exit 1 and print nothing on stdout.
func TestRun_TestRunErrors(t *testing.T) {
	cases := [][]string{
		{objNat44, "--prog", "nat66", "--hex", hexEcho},
		{objNat44, "--socket", "tcp 10.0.0.1:80", "--hex", hexEcho},
		{objNat44, "--socket", "tcp listen 10.0.0.1:80 cookie=3", "--sockmap", "conntrack:0=3", "--hex", hexEcho},
		{progsDir + "/tail_dispatch.o", "--hex", hexEcho},
		{objNat44, "--hex", "02:00:00:00:00:01 02:00:00:00:00:0a 08 00 45 0g"},
		{objNat44, "--hex", "0200000000010"},
		{objNat44, "--hex", "02:00:00:00:00:01"},
		{objNat44, "--hex", "02:00:00:00:00:01 02:00:00:00:00:0a 08 00 45 00 00 14"},
		{objNat44, "--hex", "02:00:00:00:00:01 02:00:00:00:00:0a 86 dd" + strings.Repeat(" 00", 39)},
		{objNat44, "--hex", "02:00:00:00:00:01 02:00:00:00:00:0a 88 b5" + strings.Repeat("00", 3700)},
		{objNat44},
		{objNat44, "--pcap", "testdata/testrun/missing.pcap"},
		{objNat44, "--pcap", fixtureHex},
		{objNat44, "--hex-file", fixturePcap},
		{progsDir + "/missing.o", "--hex", hexEcho},
		{"testdata/testrun/frames.hex", "--list"},
		{objNat44, "--repeat", "0", "--hex", hexEcho},
		{objNat44, "--ctx-cb", "1,2,3,4,5,6", "--hex", hexEcho},
		{objNat44, "--ctx-cb", "4294967296", "--hex", hexEcho},
		{objNat44, "--hex", hexEcho, "--ifindex", "3", "--ctx-mark", "x"},
		{objNat44, objICMPEcho, "--hex", hexEcho},
		{objNat44, "--set", "nat_adr=1", "--hex", hexEcho},
		{objNat44, "--set", "port_base=70000", "--hex", hexEcho},
		{objNat44, "--set", "port_base", "--hex", hexEcho},
		{objNat44, "--set", "nat_addr=2001:db8::1", "--hex", hexEcho},
		{objICMPEcho, "--set", "x=1", "--hex", hexEcho},
		{objNat44, "--syscall", "setup", "--hex", hexEcho},
		{objCrypto, "--prog", "crypto_encrypt", "--syscall", "setup", "--hex", hexEcho},
		{objCrypto, "--prog", "crypto_encrypt", "--set", `cipher="` + strings.Repeat("x", 128) + `"`, "--hex", hexEcho},
	}
	var got bytes.Buffer
	for _, args := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"test-run"}, args...), &stdout, &stderr)
		if code != 1 {
			t.Errorf("tcx test-run %q: exit %d, want 1", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("tcx test-run %q printed on stdout: %s", args, stdout.String())
		}
		shown := strings.Join(args, " ")
		if len(shown) > 120 {
			shown = shown[:117] + "..."
		}
		fmt.Fprintf(&got, "$ tcx test-run %s\n%s\n", shown, stderr.String())
	}
	compareGolden(t, "testrun_errors", got.Bytes())
}

// compareGolden is golden's comparison for output the test assembled.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	if !compareFile(t, filepath.Join("testdata", name+".golden"), got) {
		t.Logf("got:\n%s", got)
	}
}

// compareFile fails t unless the file at path holds got; with -update it
// writes got there first. It reports whether they matched.
func compareFile(t *testing.T, path string, got []byte) bool {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the test produced (run with -update)", path)
		return false
	}
	return true
}

// runJSON runs tcx with args (which must include --json) and decodes stdout.
func runJSON(t *testing.T, args ...string) testRunReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("tcx %q: exit %d: %s", args, code, stderr.String())
	}
	var rep testRunReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("tcx %q: %v\n%s", args, err, stdout.String())
	}
	return rep
}

// TestTestRun_Repeat_SharesOneSkb checks that --repeat runs the program N
// times on the same skb, as BPF_PROG_TEST_RUN's repeat does: l3_forward
// decrements the TTL once per run, so the output frame has TTL 64-N.
func TestTestRun_Repeat_SharesOneSkb(t *testing.T) {
	for _, n := range []int{1, 3, 10} {
		rep := runJSON(t, "test-run", objL3Forward, "--pcap", fixturePcap, "--repeat", fmt.Sprint(n), "--json")
		p := rep.Packets[0] // UDP, TTL 64
		if p.Repeat != n {
			t.Errorf("repeat %d: report says %d", n, p.Repeat)
		}
		if ttl := p.DataOut[14+8]; int(ttl) != 64-n {
			t.Errorf("repeat %d: TTL after the runs %d, want %d", n, ttl, 64-n)
		}
		if p.NsPerRun <= 0 {
			t.Errorf("repeat %d: no ns/run measured: %v", n, p.NsPerRun)
		}
	}
	// Without --repeat nothing is timed, so outputs stay comparable.
	if rep := runJSON(t, "test-run", objL3Forward, "--pcap", fixturePcap, "--json"); rep.Packets[0].NsPerRun != 0 {
		t.Errorf("ns_per_run %v without --repeat", rep.Packets[0].NsPerRun)
	}
}

// TestTestRun_InputsCombine checks the order of inputs (--pcap, then
// --hex-file, then --hex) and that the same frame gives the same result
// whichever way it came in.
func TestTestRun_InputsCombine(t *testing.T) {
	rep := runJSON(t, "test-run", objICMPEcho, "--hex", hexEcho, "--hex-file", fixtureHex, "--pcap", fixturePcap, "--json")
	n := len(fixtureFrames(t))
	if len(rep.Packets) != 2*n+1 {
		t.Fatalf("%d packets, want %d", len(rep.Packets), 2*n+1)
	}
	wantOrigins := []string{fixturePcap + " #3", fixtureHex + ":7", "--hex #1"}
	var echoes []packetReport
	for _, p := range rep.Packets {
		if p.Retval == 7 {
			echoes = append(echoes, p)
		}
	}
	if len(echoes) != 3 {
		t.Fatalf("%d redirected echo replies, want 3: %+v", len(echoes), echoes)
	}
	for i, p := range echoes {
		if p.Origin != wantOrigins[i] {
			t.Errorf("echo %d from %q, want %q", i, p.Origin, wantOrigins[i])
		}
		if !bytes.Equal(p.DataOut, echoes[0].DataOut) || p.Redirect == nil || p.Redirect.Ifindex != 1 || !p.Redirect.Taken {
			t.Errorf("echo %d: %+v differs from the first", i, p)
		}
	}
}

// TestRunPackets_Fault_ReportsErrorAndShot runs a program that reads past
// the packet without a bounds check (the verifier would refuse it; the
// engine stops it at run time): the report carries the fault, the verdict
// is TC_ACT_SHOT and the command fails.
func TestRunPackets_Fault_ReportsErrorAndShot(t *testing.T) {
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{},
		Programs: map[string]*ebpf.ProgramSpec{"oob": {
			Name: "oob", Type: ebpf.SchedCLS, License: "GPL",
			Instructions: asm.Instructions{
				asm.LoadMem(asm.R2, asm.R1, 76, asm.Word), // skb->data
				asm.LoadMem(asm.R0, asm.R2, 4000, asm.Byte),
				asm.Return(),
			},
		}},
	}
	frames := []frame{{origin: "x", data: fixtureFrames(t)[0].data}}
	rep, err := runPackets(t.Context(), spec, "oob", frames, &testRunOptions{object: "oob", repeat: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Packets[0]
	if p.Error == "" || p.Retval != 2 || p.Action != "TC_ACT_SHOT" {
		t.Errorf("fault not reported: %+v", p)
	}
	if rep.faults() != 1 {
		t.Errorf("faults() = %d, want 1", rep.faults())
	}
	var out bytes.Buffer
	writeReport(&out, rep, &testRunOptions{})
	if !strings.Contains(out.String(), "  error     "+p.Error) {
		t.Errorf("text output does not show the error:\n%s", out.String())
	}
}

// TestREADME_TestRunExamples runs the "$ tcx test-run ..." examples of the
// README's console blocks from the repository root and requires exactly the
// output shown, so the README never shows made-up results.
func TestREADME_TestRunExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir("../..")
	n := 0
	for _, block := range strings.Split(string(readme), "```console\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		cmdline, want, _ := strings.Cut(block, "\n")
		if !strings.HasPrefix(cmdline, "$ tcx test-run ") {
			continue
		}
		args, err := splitShellWords(strings.TrimPrefix(cmdline, "$ tcx "))
		if err != nil {
			t.Fatalf("%s: %v", cmdline, err)
		}
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit %d: %s", cmdline, code, stderr.String())
		}
		if stdout.String() != want {
			t.Errorf("README shows for %s:\n%s\nbut the command prints:\n%s", cmdline, want, stdout.String())
		}
		n++
	}
	if n < 2 {
		t.Errorf("%d test-run examples found in the README, want at least 2", n)
	}
}

// splitShellWords splits a command line on spaces, keeping double-quoted
// words together: enough for the README's examples, which quote only hex.
func splitShellWords(s string) ([]string, error) {
	var words []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			words = append(words, s[1:end+1])
			s = s[end+2:]
			continue
		}
		word, rest, _ := strings.Cut(s, " ")
		words = append(words, word)
		s = rest
	}
	return words, nil
}

// TestRunPackets_Canceled_StopsLongRepeats: ^C (a canceled context) ends a
// long --repeat instead of running it out.
func TestRunPackets_Canceled_StopsLongRepeats(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec(objL3Forward)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	frames := []frame{{origin: "f", data: fixtureFrames(t)[0].data}}
	_, err = runPackets(ctx, spec, "l3_forward", frames, &testRunOptions{object: "x", repeat: 1 << 30})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "after 4096 runs") {
		t.Errorf("error %v, want context.Canceled after 4096 runs", err)
	}
}

// TestTestRun_Strict: a program the kernel's verifier refuses (its
// bpf-to-bpf calls need 544 bytes of stack) runs with a warning, and
// --strict refuses it, saying why.
func TestTestRun_Strict(t *testing.T) {
	const obj = "../../testdata/thirdparty/selftests/rejected/test_global_func1.o"
	var got bytes.Buffer
	for _, args := range [][]string{
		{"test-run", obj, "--hex", hexEcho},
		{"test-run", obj, "--hex", hexEcho, "--strict"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		fmt.Fprintf(&got, "$ tcx %s\nexit %d\n%s%s\n", strings.Join(args[1:], " "), code, stdout.String(), stderr.String())
	}
	compareGolden(t, "testrun_strict", got.Bytes())
}

// TestTestRun_ThirdParty runs programs nobody here wrote: a kernel
// selftest's encapsulation, whose section name only its test script
// knows (taken as a classifier, as tc(8) does), and an object whose only
// tc program sits beside XDP programs (picked without --prog).
func TestTestRun_ThirdParty(t *testing.T) {
	const dir = "../../testdata/thirdparty/selftests/progs/"
	tcp8000 := "02:00:00:00:00:01 02:00:00:00:00:0a 0800 45000028000100004006f97a0a0000010a000002 04d21f40000000000000000050022000917c0000"
	var got bytes.Buffer
	for _, args := range [][]string{
		{"test-run", dir + "test_tc_tunnel.o", "--prog", "__encap_ipip_none", "--hex", tcp8000},
		{"test-run", dir + "test_xdp_do_redirect.o", "--hex", tcp8000},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		fmt.Fprintf(&got, "$ tcx %s\nexit %d\n%s%s\n", strings.Join(args[1:], " "), code, stdout.String(), stderr.String())
	}
	compareGolden(t, "testrun_thirdparty", got.Bytes())
}
