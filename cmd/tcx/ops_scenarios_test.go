//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/ops"
)

// scenarioNotRoot runs the command as nobody: the kernel refuses with
// EPERM, and tcx says that root is needed.
func scenarioNotRoot(t *testing.T, e *opsEnv) {
	if os.Getuid() != 0 {
		t.Skip("needs root to drop to nobody")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for d := filepath.Dir(dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "tcx")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	abs, _ := filepath.Abs(objQoS)
	cmd := exec.Command(bin, "attach", "veth0", "ingress", abs, "--netns", e.nsPath, "--bpffs", e.bpffs, "--state-dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("as nobody: %v\n%s", cmd.ProcessState, out)
	}
	if !strings.Contains(string(out), "needs root") || !strings.Contains(string(out), "run tcx as root") {
		t.Errorf("as nobody:\n%s", out)
	}
	// Reading the host's hooks needs privileges too.
	cmd = exec.Command(bin, "show", "--bpffs", e.bpffs, "--state-dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "EPERM: reading BPF hooks needs root") {
		t.Errorf("show as nobody: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// scenarioForeign shows what others attached: an XDP program put there by
// iproute2, a netkit pair's chains and a tcx link only a process holds.
func scenarioForeign(t *testing.T, e *opsEnv) {
	xdp, _ := filepath.Abs(objXDP)
	if out, err := exec.Command("nsenter", "--net="+e.nsPath, "ip", "link", "set", "dev", "veth1", "xdpgeneric", "obj", xdp, "sec", "xdp").CombinedOutput(); err != nil {
		t.Fatalf("ip link set xdpgeneric: %v\n%s", err, out)
	}
	netkit := true
	if err := e.ns.AddNetkitPair("nk0", "nk1"); errors.Is(err, syscall.EOPNOTSUPP) {
		netkit = false
		t.Logf("netkit part not checked: this kernel has no netkit (CONFIG_NETKIT): %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	spec, err := ebpf.LoadCollectionSpec(objQoS)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := e.b.LoadCollection(spec, kernel.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	ifindex, _ := e.ns.Ifindex("veth0")
	l, err := tcx.AttachLink(e.b, ifindex, tcx.Egress, coll.Programs["qos_mark"], nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := e.show("")
	devs := map[string]ops.Device{}
	for _, d := range s.Devices {
		devs[d.Name] = d
	}
	if x := devs["veth1"].XDP; x == nil || x.Mode != "generic" || x.Program.Name != "xdp_pass" || x.Program.Type != "xdp" {
		t.Errorf("veth1 xdp: %+v", x)
	}
	if nk := devs["nk0"].Netkit; netkit && (nk == nil || nk.Primary.Revision != 1 || len(nk.Primary.Programs) != 0 || nk.Peer.Programs == nil) {
		t.Errorf("nk0 netkit: %+v", nk)
	}
	if netkit && devs["nk1"].Netkit != nil {
		t.Errorf("the peer end shows netkit chains (they are the primary's)")
	}
	eg := devs["veth0"].Egress.TCX
	if len(eg) != 1 || !eg[0].Foreign || eg[0].Owner != nil || eg[0].Link.ID != l.ID() || len(eg[0].Link.Pins) != 0 {
		t.Fatalf("foreign link: %+v", eg)
	}
	held := false
	for _, h := range eg[0].Link.Holders {
		held = held || (h.PID == os.Getpid() && h.FD == l.(*kernel.Link).FD())
	}
	if !held {
		t.Errorf("holders %+v lack this process (pid %d fd %d)", eg[0].Link.Holders, os.Getpid(), l.(*kernel.Link).FD())
	}
	if bt := requireBpftool(t); bt != "" {
		out, err := exec.Command("nsenter", "--net="+e.nsPath, bt, "net", "show", "dev", "veth1", "-j").Output()
		if err != nil {
			t.Fatal(err)
		}
		var res []struct {
			XDP []struct {
				ID   uint32 `json:"id"`
				Mode string `json:"mode"`
			} `json:"xdp"`
		}
		if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 || len(res[0].XDP) != 1 {
			t.Fatalf("bpftool net show: %v %s", err, out)
		}
		if x := res[0].XDP[0]; x.ID != devs["veth1"].XDP.Program.ID || x.Mode != "generic" {
			t.Errorf("bpftool says xdp %+v, tcx show %+v", x, devs["veth1"].XDP)
		}
	}
}

// scenarioHookLimit fills a hook to the kernel's 63 programs: doctor warns
// near the limit and fails at it, and the 64th attach is ERANGE, explained,
// leaving nothing behind.
func scenarioHookLimit(t *testing.T, e *opsEnv) {
	attach := func(n int) {
		for i := 0; i < n; i++ {
			e.ok("attach", "veth0", "egress", objCounter, "--plain")
		}
	}
	attach(tcx.MaxPrograms - 8)
	r, code := doctor(t, e)
	if f := findings(r, ops.CheckHookLimit); code != 0 || len(f) != 1 || f[0].Severity != ops.SevWarning || !strings.Contains(f[0].Message, "55 tcx programs") {
		t.Errorf("doctor at 55: exit %d %+v", code, f)
	}
	attach(8)
	r, code = doctor(t, e)
	if f := findings(r, ops.CheckHookLimit); code != 2 || len(f) != 1 || f[0].Severity != ops.SevProblem {
		t.Errorf("doctor at 63: exit %d %+v", code, f)
	}
	pins, recs := e.pins(), e.records()
	e.fails([]string{"attach", "veth0", "egress", objCounter}, "ERANGE: veth0 egress already holds 63 programs")
	if !eq(e.pins(), pins) || len(e.records()) != len(recs) {
		t.Errorf("the refused attach left pins %v or records", e.pins())
	}
	if h := e.hook("egress"); len(h.TCX) != tcx.MaxPrograms {
		t.Errorf("%d programs on the hook", len(h.TCX))
	}
}

// scenarioCustomPin pins a link where the operator says, creating the
// directories; a failed attach removes the directories it made.
func scenarioCustomPin(t *testing.T, e *opsEnv) {
	pin := filepath.Join(e.bpffs, "myapp", "v1", "ingress")
	id, got := attached(t, e.ok("attach", "veth0", "ingress", objQoS, "--pin", pin))
	if got != pin {
		t.Fatalf("pinned at %s, want %s", got, pin)
	}
	if p, err := kernel.PinnedObject(pin); err != nil || p.ID != id {
		t.Errorf("pin %s: %+v %v", pin, p, err)
	}
	e.fails([]string{"attach", "veth0", "ingress", objL4, "--pin", pin}, "EEXIST", "something is pinned there already")
	other := filepath.Join(e.bpffs, "other", "deep", "pin")
	e.fails([]string{"attach", "veth0", "ingress", objL4, "--pin", other, "--after", "id:4000000000"}, "ENOENT")
	if _, err := os.Stat(filepath.Join(e.bpffs, "other")); !os.IsNotExist(err) {
		t.Errorf("a failed attach left its pin directory: %v", err)
	}
	out := e.ok("link", "detach", pin)
	if !strings.Contains(out, fmt.Sprintf("detached tcx link %d", id)) || !strings.Contains(out, "removed pin "+pin) {
		t.Errorf("link detach:\n%s", out)
	}
	if h := e.hook("ingress"); len(h.TCX) != 0 || len(e.records()) != 0 {
		t.Errorf("after link detach: %v, records %v", names(h.TCX), e.records())
	}
}

// scenarioTraffic sends packets over lo through programs attached with the
// CLI: the pinned counter they share counts every program that ran, so
// order, --set and link update are seen on real traffic.
func scenarioTraffic(t *testing.T, e *opsEnv) {
	counter := func() uint64 {
		t.Helper()
		m, err := kernel.LoadPinnedMap(filepath.Join(e.bpffs, "tcx_ops_packets"))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var n uint64
		if err := m.Lookup(uint32(0), &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ping := func(delivered bool, ran uint64) {
		t.Helper()
		before := counter()
		err := e.ns.Ping(300 * time.Millisecond)
		if delivered && err != nil || !delivered && !errors.Is(err, syscall.ETIMEDOUT) {
			t.Errorf("ping: %v, want delivered=%v", err, delivered)
		}
		if got := counter() - before; got != ran {
			t.Errorf("%d programs ran, want %d (chain %v)", got, ran, names(e.hookOf("lo", "ingress").TCX))
		}
	}
	e.ok("attach", "lo", "ingress", objCounter)
	ping(true, 1)
	_, dropper := attached(t, e.ok("attach", "lo", "ingress", objCounter, "--set", "verdict=2"))
	ping(false, 2) // the first passes it on (TCX_NEXT), the second drops
	e.ok("link", "update", dropper, objCounter)
	ping(true, 2)
	e.ok("attach", "lo", "ingress", objCounter, "--set", "verdict=2", "--before", "head")
	ping(false, 1) // dropped at the head: nothing after it runs
}
