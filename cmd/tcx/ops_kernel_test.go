//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/ops"
)

// Objects the operator tests attach (committed clang-19 builds).
var (
	objCounter = filepath.Join("..", "..", "testdata", "progs", "ops", "pin_counter.o")
	objXDP     = filepath.Join("..", "..", "testdata", "progs", "ops", "xdp_pass.o")
	objQoS     = filepath.Join("..", "..", "testdata", "progs", "qos_mark.o")
	objL4      = filepath.Join("..", "..", "testdata", "progs", "l4_classify.o")
)

// opsEnv is one scenario's world: a fresh namespace with the veth pair
// veth0/veth1, a private bpffs and a private state directory, all gone when
// the test ends.
type opsEnv struct {
	t      *testing.T
	b      *kernel.Backend
	ns     *kernel.NetNS
	bpffs  string
	state  string
	nsPath string
}

func newOpsEnv(t *testing.T) *opsEnv {
	t.Helper()
	b := kerneltest.NewBackend(t)
	e := &opsEnv{t: t, b: b, ns: b.NetNS(), bpffs: b.PinDir(), state: t.TempDir()}
	e.nsPath = e.ns.Path()
	if _, _, err := e.ns.AddVethPair("veth0", "veth1"); err != nil {
		t.Fatal(err)
	}
	return e
}

// hostArgs are the flags that point a command at the scenario's world.
// Flags the command line gives already win.
func (e *opsEnv) hostArgs(given []string) []string {
	var out []string
	for _, f := range [][2]string{{"--netns", e.nsPath}, {"--bpffs", e.bpffs}, {"--state-dir", e.state}} {
		has := false
		for _, g := range given {
			has = has || g == f[0]
		}
		if !has {
			out = append(out, f[0], f[1])
		}
	}
	return out
}

// tcx runs the command in-process with the scenario's flags appended.
func (e *opsEnv) tcx(args ...string) (stdout, stderr string, code int) {
	var o, er bytes.Buffer
	code = run(context.Background(), append(args, e.hostArgs(args)...), &o, &er)
	return o.String(), er.String(), code
}

// ok runs a command that must succeed.
func (e *opsEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.tcx(args...)
	if code != 0 {
		e.t.Fatalf("tcx %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must fail with exit status 1 and a message
// containing every want.
func (e *opsEnv) fails(args []string, want ...string) string {
	e.t.Helper()
	out, errOut, code := e.tcx(args...)
	if code != 1 {
		e.t.Fatalf("tcx %s: exit %d, want 1\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			e.t.Errorf("tcx %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, errOut)
		}
	}
	return errOut
}

func (e *opsEnv) show(dev string) *ops.Snapshot {
	e.t.Helper()
	args := []string{"show", "--json"}
	if dev != "" {
		args = append(args, dev)
	}
	var s ops.Snapshot
	if err := json.Unmarshal([]byte(e.ok(args...)), &s); err != nil {
		e.t.Fatal(err)
	}
	return &s
}

func (e *opsEnv) hook(dir string) *ops.Hook { return e.hookOf("veth0", dir) }

func (e *opsEnv) hookOf(dev, dir string) *ops.Hook {
	e.t.Helper()
	s := e.show(dev)
	if len(s.Devices) != 1 || s.Devices[0].Name != dev {
		e.t.Fatalf("show %s: %+v", dev, s.Devices)
	}
	return s.Devices[0].Hook(dir)
}

// names are the programs of a tcx chain in order.
func names(as []ops.Attachment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Program.Name)
	}
	return out
}

// pins lists every file under the scenario's bpffs.
func (e *opsEnv) pins() []string {
	var out []string
	filepath.Walk(e.bpffs, func(p string, info os.FileInfo, err error) error {
		// maps.debug and progs.debug come with every bpffs mount.
		if err == nil && !info.IsDir() && !strings.HasSuffix(p, ".debug") {
			out = append(out, strings.TrimPrefix(p, e.bpffs))
		}
		return nil
	})
	return out
}

func (e *opsEnv) records() []string {
	names, _ := filepath.Glob(filepath.Join(e.state, "owners", "*.json"))
	return names
}

var linkLine = regexp.MustCompile(`with tcx link (\d+)`)
var pinLine = regexp.MustCompile(`pinned link at (\S+):`)

// attached parses the link ID and pin an attach printed.
func attached(t *testing.T, out string) (uint32, string) {
	t.Helper()
	m, p := linkLine.FindStringSubmatch(out), pinLine.FindStringSubmatch(out)
	if m == nil || p == nil {
		t.Fatalf("attach output names no link and pin:\n%s", out)
	}
	id, _ := strconv.ParseUint(m[1], 10, 32)
	return uint32(id), p[1]
}

func eq(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestCLI_E2E drives the operator commands in-process against the kernel,
// one scenario per fresh namespace, and counts the outcome.
func TestCLI_E2E(t *testing.T) {
	kerneltest.RequireKernel(t)
	scenarios := []struct {
		name string
		run  func(t *testing.T, e *opsEnv)
	}{
		{"attach_two_with_anchors_show_json", scenarioAttachTwo},
		{"link_update_swaps_in_place", scenarioLinkUpdate},
		{"detach_link_plain_head", scenarioDetach},
		{"plain_replace_and_expected_revision", scenarioPlainReplace},
		{"pinned_maps_reused", scenarioMapsReused},
		{"failed_attach_leaves_no_pins", scenarioFailedAttachNoPins},
		{"doctor_defunct_link_after_device_deleted", scenarioDoctorDefunct},
		{"doctor_duplicate_and_tcx_with_classic", scenarioDoctorDuplicate},
		{"legacy_attach_order_detach", scenarioLegacy},
		{"bad_input_exit_1_no_change", scenarioBadInput},
		{"ebusy_and_estale_explained", scenarioExplained},
		{"not_root_eperm_explained", scenarioNotRoot},
		{"bpftool_agrees", scenarioBpftool},
		{"show_host_read_only", scenarioShowHost},
		{"golden_human_output", scenarioGolden},
		{"foreign_xdp_netkit_holders", scenarioForeign},
		{"hook_limit_63", scenarioHookLimit},
		{"custom_pin_and_link_detach", scenarioCustomPin},
		{"traffic_order_set_update", scenarioTraffic},
	}
	failed := 0
	for _, sc := range scenarios {
		if !t.Run(sc.name, func(t *testing.T) { sc.run(t, newOpsEnv(t)) }) {
			failed++
		}
	}
	t.Logf("cli e2e: %d scenarios, %d failed", len(scenarios), failed)
}

func scenarioAttachTwo(t *testing.T, e *opsEnv) {
	first, pin1 := attached(t, e.ok("attach", "veth0", "ingress", objCounter, "--label", "counter"))
	second, pin2 := attached(t, e.ok("attach", "veth0", "ingress", objQoS, "--before", fmt.Sprintf("link:%d", first)))
	third, _ := attached(t, e.ok("attach", "veth0", "ingress", objL4, "--after", "pin:"+pin2))
	h := e.hook("ingress")
	if got := names(h.TCX); !eq(got, []string{"qos_mark", "l4_classify", "pin_counter"}) {
		t.Fatalf("chain %v, want qos_mark l4_classify pin_counter", got)
	}
	for i, want := range []struct {
		link uint32
		pin  string
	}{{second, pin2}, {third, ""}, {first, pin1}} {
		a := h.TCX[i]
		if a.Position != i || a.Link == nil || a.Link.ID != want.link {
			t.Errorf("position %d: %+v, want link %d", i, a, want.link)
			continue
		}
		if want.pin != "" && !eq(a.Link.Pins, []string{want.pin}) {
			t.Errorf("link %d pins %v, want %s", a.Link.ID, a.Link.Pins, want.pin)
		}
		if !strings.HasPrefix(a.Link.Pins[0], filepath.Join(e.bpffs, "tcx")+"/") {
			t.Errorf("link %d pinned at %v, not under bpffs/tcx", a.Link.ID, a.Link.Pins)
		}
		if a.Foreign || a.Owner == nil || a.Owner.PID != os.Getpid() || a.Owner.LinkID != a.Link.ID || a.Owner.ProgID != a.Program.ID {
			t.Errorf("position %d: owner %+v foreign %v, want this process's record", i, a.Owner, a.Foreign)
		}
		if a.Program.Type != "sched_cls" || len(a.Program.Tag) != 16 || time.Since(a.Program.LoadedAt) > time.Hour || time.Since(a.Program.LoadedAt) < 0 {
			t.Errorf("position %d: program %+v", i, a.Program)
		}
	}
	o := h.TCX[2].Owner
	sum, _ := exec.Command("sha256sum", objCounter).Output()
	if o.Label != "counter" || o.Command[1] != "attach" || !strings.HasPrefix(string(sum), o.SHA256) || o.Program != "pin_counter" {
		t.Errorf("record %+v (sha256sum %s)", o, sum)
	}
	if h.Revision != 4 { // 1 for an unused hook, +1 per attach
		t.Errorf("revision %d, want 4", h.Revision)
	}
}

func scenarioLinkUpdate(t *testing.T, e *opsEnv) {
	id, pin := attached(t, e.ok("attach", "veth0", "egress", objCounter))
	attached(t, e.ok("attach", "veth0", "egress", objQoS))
	before := e.hook("egress")
	out := e.ok("link", "update", pin, objL4)
	if !strings.Contains(out, fmt.Sprintf("tcx link %d on veth0 egress now runs program l4_classify", id)) {
		t.Errorf("update output:\n%s", out)
	}
	after := e.hook("egress")
	if got := names(after.TCX); !eq(got, []string{"l4_classify", "qos_mark"}) {
		t.Fatalf("chain after update %v", got)
	}
	a := after.TCX[0]
	if a.Link.ID != id || a.Program.ID == before.TCX[0].Program.ID || !eq(a.Link.Pins, []string{pin}) {
		t.Errorf("update did not keep link %d and its pin: %+v", id, a)
	}
	if a.Owner == nil || a.Owner.Program != "l4_classify" || a.Owner.ProgID != a.Program.ID {
		t.Errorf("record after update: %+v", a.Owner)
	}
	if after.TCX[1].Program.ID != before.TCX[1].Program.ID {
		t.Errorf("the other link changed")
	}
}

func scenarioDetach(t *testing.T, e *opsEnv) {
	id, pin := attached(t, e.ok("attach", "veth0", "ingress", objCounter))
	e.ok("attach", "veth0", "ingress", objQoS, "--plain")
	attached(t, e.ok("attach", "veth0", "ingress", objL4, "--before", "head"))
	h := e.hook("ingress")
	plain := h.TCX[2].Program.ID
	if h.TCX[2].Link != nil || h.TCX[2].Owner == nil || h.TCX[2].Owner.Kind != ops.KindPlain {
		t.Fatalf("plain attachment: %+v", h.TCX[2])
	}
	e.ok("detach", "veth0", "ingress", fmt.Sprintf("id:%d", plain))
	out := e.ok("detach", "veth0", "ingress", "pin:"+pin)
	if !strings.Contains(out, "removed pin "+pin) || !strings.Contains(out, fmt.Sprintf("detached tcx link %d", id)) {
		t.Errorf("detach output:\n%s", out)
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("pin %s still there: %v", pin, err)
	}
	e.ok("detach", "veth0", "ingress", "head")
	if h := e.hook("ingress"); len(h.TCX) != 0 {
		t.Errorf("hook not empty: %v", names(h.TCX))
	}
	if r := e.records(); len(r) != 0 {
		t.Errorf("records left: %v", r)
	}
	if p := e.pins(); len(p) != 1 || p[0] != "/tcx_ops_packets" {
		t.Errorf("pins left: %v (want only the shared map)", p)
	}
}

func scenarioPlainReplace(t *testing.T, e *opsEnv) {
	e.ok("attach", "veth0", "ingress", objQoS, "--plain")
	h := e.hook("ingress")
	old := h.TCX[0].Program.ID
	e.ok("attach", "veth0", "ingress", objL4, "--plain", "--replace", fmt.Sprintf("id:%d", old), "--expected-revision", fmt.Sprint(h.Revision))
	h2 := e.hook("ingress")
	if got := names(h2.TCX); !eq(got, []string{"l4_classify"}) || h2.Revision != h.Revision+1 {
		t.Errorf("after replace: %v revision %d", got, h2.Revision)
	}
}

func scenarioMapsReused(t *testing.T, e *opsEnv) {
	out1 := e.ok("attach", "veth0", "ingress", objCounter)
	out2 := e.ok("attach", "veth0", "egress", objCounter, "--set", "verdict=0")
	mp := filepath.Join(e.bpffs, "tcx_ops_packets")
	if !strings.Contains(out1, "pinned map "+mp) || !strings.Contains(out2, "reused pinned map "+mp) {
		t.Errorf("map pinning not reported:\n%s%s", out1, out2)
	}
	pin, err := kernel.PinnedObject(mp)
	if err != nil || pin.Kind != kernel.PinnedMap {
		t.Fatalf("pinned map: %+v %v", pin, err)
	}
	// Both programs use the one pinned map (bpftool's map_ids would say the
	// same; the kernel is asked here through the object's ID).
	s := e.show("veth0")
	in, eg := s.Devices[0].Ingress.TCX[0].Program.ID, s.Devices[0].Egress.TCX[0].Program.ID
	if in == eg {
		t.Fatalf("one program on both hooks")
	}
	bt := requireBpftool(t)
	for _, id := range []uint32{in, eg} {
		if bt == "" {
			break
		}
		out, err := exec.Command(bt, "prog", "show", "id", fmt.Sprint(id), "-j").Output()
		if err != nil {
			t.Fatalf("bpftool: %v", err)
		}
		if !strings.Contains(string(out), fmt.Sprintf("%d", pin.ID)) {
			t.Errorf("program %d does not use map %d: %s", id, pin.ID, out)
		}
	}
	// --map-pin-dir puts them elsewhere (and creates the directory).
	dir := filepath.Join(e.bpffs, "myapp", "maps")
	out3 := e.ok("attach", "veth1", "ingress", objCounter, "--map-pin-dir", dir)
	if p, err := kernel.PinnedObject(filepath.Join(dir, "tcx_ops_packets")); err != nil || p.ID == pin.ID || !strings.Contains(out3, "pinned map "+dir) {
		t.Errorf("--map-pin-dir: %+v %v\n%s", p, err, out3)
	}
}

func scenarioFailedAttachNoPins(t *testing.T, e *opsEnv) {
	before := e.pins()
	e.fails([]string{"attach", "veth0", "ingress", objCounter, "--after", "id:4000000000"}, "ENOENT", "id:4000000000 is not attached to veth0 ingress")
	if after := e.pins(); !eq(before, after) {
		t.Errorf("pins changed by a failed attach: %v -> %v", before, after)
	}
	if r := e.records(); len(r) != 0 {
		t.Errorf("records after a failed attach: %v", r)
	}
	if h := e.hook("ingress"); len(h.TCX) != 0 || h.Revision != 1 {
		t.Errorf("hook changed: %+v", h)
	}
}

func doctor(t *testing.T, e *opsEnv) (*ops.Report, int) {
	out, errOut, code := e.tcx("doctor", "--json")
	var r ops.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor: %v\n%s%s", err, out, errOut)
	}
	return &r, code
}

func findings(r *ops.Report, check string) []ops.Finding {
	var out []ops.Finding
	for _, f := range r.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

func scenarioDoctorDefunct(t *testing.T, e *opsEnv) {
	id, pin := attached(t, e.ok("attach", "veth0", "ingress", objCounter))
	if r, code := doctor(t, e); code != 0 || r.Problems != 0 {
		t.Fatalf("doctor on a healthy hook: exit %d %+v", code, r)
	}
	ifindex, err := e.ns.Ifindex("veth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ns.DeleteDevice(ifindex); err != nil {
		t.Fatal(err)
	}
	r, code := doctor(t, e)
	if code != 2 {
		t.Errorf("doctor exit %d, want 2", code)
	}
	d := findings(r, ops.CheckDefunctLink)
	if len(d) != 1 || d[0].LinkID != id || !eq(d[0].Pins, []string{pin}) || d[0].Device != "veth0" {
		t.Errorf("defunct findings %+v, want link %d pinned at %s", d, id, pin)
	}
	if s := findings(r, ops.CheckStaleRecord); len(s) != 1 || s[0].LinkID != id {
		t.Errorf("stale record findings %+v", s)
	}
	// The fix doctor gives frees the link.
	if err := os.Remove(pin); err != nil {
		t.Fatal(err)
	}
	if r, _ := doctor(t, e); len(findings(r, ops.CheckDefunctLink)) != 0 {
		t.Errorf("defunct link still reported after removing its pin")
	}
}

func scenarioDoctorDuplicate(t *testing.T, e *opsEnv) {
	// The same program on one hook as a tcx program and twice as a cls_bpf
	// filter: made through the library, as other loaders would.
	spec, err := ebpf.LoadCollectionSpec(objQoS)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := e.b.LoadCollection(spec, kernel.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	prog := coll.Programs["qos_mark"]
	ifindex, _ := e.ns.Ifindex("veth0")
	if err := tcx.AttachProgram(e.b, ifindex, tcx.Ingress, prog, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.ns.AddQdisc(ifindex, kernel.QdiscClsact); err != nil {
		t.Fatal(err)
	}
	for _, prio := range []uint16{10, 20} {
		if err := e.ns.AddFilter(ifindex, tcx.Ingress, prio, 1, prog); err != nil {
			t.Fatal(err)
		}
	}
	r, code := doctor(t, e)
	if code != 2 {
		t.Errorf("doctor exit %d, want 2", code)
	}
	dup := findings(r, ops.CheckDuplicate)
	if len(dup) != 1 || dup[0].ProgID != prog.ID() || dup[0].Device != "veth0" || dup[0].Direction != "ingress" ||
		!strings.Contains(dup[0].Message, "runs 3 times") {
		t.Errorf("duplicate findings %+v", dup)
	}
	mix := findings(r, ops.CheckTCXClassic)
	if len(mix) != 1 || !strings.Contains(mix[0].Message, "tcx runs first") {
		t.Errorf("tcx+classic findings %+v", mix)
	}
	h := e.hook("ingress")
	if len(h.TCX) != 1 || !h.TCX[0].Foreign || len(h.Classic) != 2 || !h.Classic[0].Foreign || h.Classic[0].Priority != 10 {
		t.Errorf("show of foreign attachments: %+v", h)
	}
}

func scenarioLegacy(t *testing.T, e *opsEnv) {
	outA := e.ok("attach", "veth0", "ingress", objCounter, "--legacy")
	if !strings.Contains(outA, "classic cls_bpf filter prio 1000") || !strings.Contains(outA, "--legacy") {
		t.Errorf("legacy attach output:\n%s", outA)
	}
	a := e.hook("ingress").Classic[0].Program.ID
	e.ok("attach", "veth0", "ingress", objQoS, "--legacy", "--before", fmt.Sprintf("id:%d", a))
	e.ok("attach", "veth0", "ingress", objL4, "--legacy", "--after", "prio:1000")
	h := e.hook("ingress")
	var got []string
	for _, c := range h.Classic {
		got = append(got, fmt.Sprintf("%s@%d", c.Program.Name, c.Priority))
		if c.Foreign || c.Owner == nil || c.Owner.Kind != ops.KindClassic || !c.DirectAction {
			t.Errorf("filter %+v", c)
		}
	}
	if !eq(got, []string{"qos_mark@999", "pin_counter@1000", "l4_classify@1001"}) || len(h.TCX) != 0 || h.Qdisc != "clsact" {
		t.Fatalf("legacy order %v (tcx %d, qdisc %q)", got, len(h.TCX), h.Qdisc)
	}
	if bt := bpftoolNet(t, e); bt != nil {
		var ids []string
		for _, f := range bt {
			ids = append(ids, fmt.Sprintf("%s:%d", f.Name, f.ID))
		}
		var want []string
		for _, c := range h.Classic {
			want = append(want, fmt.Sprintf("%s:%d", c.Program.Name, c.Program.ID))
		}
		if !eq(ids, want) {
			t.Errorf("bpftool net show %v, tcx show %v", ids, want)
		}
	}
	// --replace takes over a filter's priority and handle.
	e.ok("attach", "veth0", "ingress", objCounter, "--legacy", "--replace", "prio:1001")
	if c := e.hook("ingress").Classic; len(c) != 3 || c[2].Priority != 1001 || c[2].Program.Name != "pin_counter" ||
		c[2].Owner == nil || c[2].Owner.ProgID != c[2].Program.ID {
		t.Errorf("after legacy replace: %+v", c)
	}
	e.ok("detach", "veth0", "ingress", fmt.Sprintf("id:%d", a), "--legacy")
	e.ok("detach", "veth0", "ingress", "prio:999")
	e.ok("detach", "veth0", "ingress", "head", "--legacy")
	if h := e.hook("ingress"); len(h.Classic) != 0 {
		t.Errorf("filters left: %+v", h.Classic)
	}
	if r := e.records(); len(r) != 0 {
		t.Errorf("records left: %v", r)
	}
}

type bpftoolFilter struct {
	Name string `json:"name"`
	ID   uint32 `json:"id"`
	Kind string `json:"kind"`
}

// bpftoolNet is `bpftool net show dev veth0 -j` in the scenario's
// namespace: the classic tc filters (bpftool 7.1 does not know tcx).
func bpftoolNet(t *testing.T, e *opsEnv) []bpftoolFilter {
	t.Helper()
	bt := requireBpftool(t)
	if bt == "" {
		return nil
	}
	out, err := exec.Command("nsenter", "--net="+e.nsPath, bt, "net", "show", "dev", "veth0", "-j").Output()
	if err != nil {
		t.Fatalf("bpftool net show: %v", err)
	}
	var res []struct {
		TC []bpftoolFilter `json:"tc"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 {
		t.Fatalf("bpftool net show: %v %s", err, out)
	}
	var ingress []bpftoolFilter
	for _, f := range res[0].TC {
		if f.Kind == "clsact/ingress" {
			ingress = append(ingress, f)
		}
	}
	return ingress
}

// requireBpftool finds bpftool; without it the comparison is skipped,
// except in CI (TCX_REQUIRE_KERNEL=1), which installs it.
func requireBpftool(t *testing.T) string {
	bt, err := exec.LookPath("bpftool")
	if err != nil {
		bt, err = exec.LookPath("/usr/sbin/bpftool")
	}
	if err != nil {
		if os.Getenv("TCX_REQUIRE_KERNEL") == "1" {
			t.Fatalf("TCX_REQUIRE_KERNEL=1 but no bpftool: %v", err)
		}
		t.Logf("no bpftool to compare with: %v", err)
		return ""
	}
	return bt
}

func scenarioBpftool(t *testing.T, e *opsEnv) {
	bt := requireBpftool(t)
	if bt == "" {
		t.Skip("no bpftool")
	}
	attached(t, e.ok("attach", "veth0", "ingress", objCounter))
	attached(t, e.ok("attach", "veth0", "ingress", objQoS, "--before", "head"))
	h := e.hook("ingress")
	out, err := exec.Command(bt, "link", "show", "-j").Output()
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		ID     uint32 `json:"id"`
		Type   any    `json:"type"`
		ProgID uint32 `json:"prog_id"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatal(err)
	}
	byID := map[uint32]uint32{}
	for _, l := range links {
		byID[l.ID] = l.ProgID
	}
	for _, a := range h.TCX {
		if p, ok := byID[a.Link.ID]; !ok || p != a.Program.ID {
			t.Errorf("bpftool link show: link %d runs prog %d (found %v); tcx show says %d", a.Link.ID, p, ok, a.Program.ID)
		}
		out, err := exec.Command(bt, "prog", "show", "id", fmt.Sprint(a.Program.ID), "-j").Output()
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			ID       uint32 `json:"id"`
			Type     string `json:"type"`
			Name     string `json:"name"`
			Tag      string `json:"tag"`
			LoadedAt int64  `json:"loaded_at"`
		}
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		// bpftool rounds the load time down to the second.
		if p.Name != a.Program.Name || p.Tag != a.Program.Tag || p.Type != a.Program.Type || absDiff(p.LoadedAt, a.Program.LoadedAt.Unix()) > 1 {
			t.Errorf("bpftool prog show %+v; tcx show %+v", p, a.Program)
		}
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

func scenarioShowHost(t *testing.T, e *opsEnv) {
	// Pins are looked for only in the scenario's bpffs: opening every pin
	// of the machine would hold other tests' links for a moment.
	var o, er bytes.Buffer
	if code := run(context.Background(), []string{"show", "--json", "--state-dir", e.state, "--bpffs", e.bpffs}, &o, &er); code != 0 {
		t.Fatalf("show of the host: exit %d: %s", code, er.String())
	}
	var s ops.Snapshot
	if err := json.Unmarshal(o.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	if s.Schema != ops.SchemaShow || s.NetNS.Name != "host" || !strings.Contains(self, fmt.Sprint(s.NetNS.Inode)) {
		t.Errorf("host snapshot %+v (own netns %s)", s.NetNS, self)
	}
	found := false
	for _, d := range s.Devices {
		found = found || d.Name == "lo"
	}
	if !found {
		t.Errorf("host has no lo: %+v", s.Devices)
	}
	if _, err := os.Stat(filepath.Join(e.state, "owners")); !os.IsNotExist(err) {
		t.Errorf("show wrote to the state directory")
	}
	// The human form too.
	o.Reset()
	if code := run(context.Background(), []string{"show", "lo", "--state-dir", e.state, "--bpffs", e.bpffs}, &o, &er); code != 0 || !strings.Contains(o.String(), "lo (ifindex 1") {
		t.Errorf("show lo: %d %s", code, o.String())
	}
}

func scenarioBadInput(t *testing.T, e *opsEnv) {
	_, pin := attached(t, e.ok("attach", "veth0", "ingress", objCounter))
	notELF := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notELF, []byte("not an object\n"), 0o644)
	notBPFFS := t.TempDir()
	before, pins, recs := e.hook("ingress"), e.pins(), e.records()
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"attach", "nosuchdev", "ingress", objQoS}, []string{"ENODEV", `no device "nosuchdev"`}},
		{[]string{"attach", "veth0", "sideways", objQoS}, []string{`hook "sideways": want ingress or egress`}},
		{[]string{"attach", "veth0", "ingress", "/nonexistent/prog.o"}, []string{"ENOENT", "object /nonexistent/prog.o does not exist"}},
		{[]string{"attach", "veth0", "ingress", notELF}, []string{"is not an ELF object"}},
		{[]string{"attach", "veth0", "ingress", "/proc/self/exe"}, []string{"not BPF"}},
		{[]string{"attach", "veth0", "ingress", objXDP}, []string{"program xdp_pass", "is of type xdp", `tc hooks run sched_cls programs`}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--prog", "nope"}, []string{`has no program "nope"`}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--before", "id:123456789"}, []string{"ENOENT", "id:123456789 is not attached"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--after", "link:123456789"}, []string{"ENOENT", "link:123456789 is not attached"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--before", "pin:/nonexistent"}, []string{"nothing is pinned at /nonexistent"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--before", "sideways"}, []string{"want id:N, link:N, pin:PATH"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--before", "head", "--after", "tail"}, []string{"at most one of"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--replace", "head"}, []string{"needs --plain"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--set", "nope=1"}, []string{"--set nope"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--bpffs", notBPFFS}, []string{"bpffs is not mounted at " + notBPFFS}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--netns", "tcx-no-such-ns"}, []string{"ENOENT", `unknown network namespace "tcx-no-such-ns"`}},
		{[]string{"attach", "veth0", "ingress"}, []string{"attach takes DEV, a hook"}},
		{[]string{"detach", "veth0", "ingress", "id:123456789"}, []string{"ENOENT", "id:123456789 is not attached to veth0 ingress"}},
		{[]string{"detach", "veth0", "ingress", "prio:7"}, []string{"ENOENT", "not a classic cls_bpf filter"}},
		{[]string{"link", "update", "/nonexistent/pin", objQoS}, []string{"nothing is pinned at /nonexistent/pin"}},
		{[]string{"link", "detach", filepath.Join(e.bpffs, "tcx_ops_packets")}, []string{"is not a pinned BPF link"}},
		{[]string{"show", "nosuchdev"}, []string{"ENODEV"}},
		{[]string{"doctor", "--netns", "/etc/hostname"}, []string{"is not a network namespace"}},
		// The record cannot be written (the state directory is a file):
		// nothing changes.
		{[]string{"attach", "veth0", "ingress", objQoS, "--state-dir", notELF}, []string{"ownership record", "not a directory"}},
		{[]string{"attach", "veth0", "ingress", objQoS, "--legacy", "--state-dir", notELF}, []string{"ownership record", "not a directory"}},
		{[]string{"link", "update", pin, objQoS, "--state-dir", notELF}, []string{"ownership record", "(nothing was updated)"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[:2], "_"), func(t *testing.T) {
			e2 := *e
			e2.t = t
			e2.fails(c.args, c.want...)
		})
	}
	after := e.hook("ingress")
	if after.TCX[0].Program.ID != before.TCX[0].Program.ID || len(after.Classic) != 0 {
		t.Errorf("bad input left another program on the hook: %+v", after)
	}
	if after.Revision != before.Revision || !eq(names(after.TCX), names(before.TCX)) || !eq(e.pins(), pins) || !eq(e.records(), recs) {
		t.Errorf("bad input changed something: revision %d->%d, pins %v->%v, records %v->%v",
			before.Revision, after.Revision, pins, e.pins(), recs, e.records())
	}
}

func scenarioExplained(t *testing.T, e *opsEnv) {
	id, pin := attached(t, e.ok("attach", "veth0", "ingress", objCounter))
	h := e.hook("ingress")
	prog := h.TCX[0].Program.ID
	e.fails([]string{"detach", "veth0", "ingress", fmt.Sprintf("id:%d", prog)},
		fmt.Sprintf("EBUSY: program %d is held by link %d (pinned at %s); detach the link instead", prog, id, pin))
	e.fails([]string{"attach", "veth0", "ingress", objQoS, "--expected-revision", "1"},
		fmt.Sprintf("ESTALE: veth0 ingress is at revision %d, not 1", h.Revision), fmt.Sprintf("--expected-revision %d", h.Revision))
	if after := e.hook("ingress"); after.Revision != h.Revision {
		t.Errorf("a refused request changed the hook")
	}
}

// normalisers make the human output of a scenario comparable across runs:
// IDs, tags, times and pids change, the rest must not.
var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b(prog|program|link|id|pid|inode) \d+`), "$1 #"},
	{regexp.MustCompile(`\b(id|link):\d+`), "$1:#"},
	{regexp.MustCompile(`\b(link|program) \d+`), "$1 #"},
	{regexp.MustCompile(`-(pin_counter|qos_mark|l4_classify)-\d+`), "-$1-#"},
	{regexp.MustCompile(`tag [0-9a-f]{16}`), "tag #"},
	{regexp.MustCompile(`sha256 [0-9a-f]{12}…`), "sha256 #"},
	{regexp.MustCompile(`\b(ns|link)-\d+`), "$1-#"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ`), "TIME"},
}

func (e *opsEnv) normalise(s string) string {
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	s = strings.NewReplacer(e.bpffs, "$BPFFS", e.nsPath, "$NETNS", e.state, "$STATE", repo, "$REPO").Replace(s)
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// scenarioGolden records a session of the commands in their human form and
// compares it with testdata/ops_session.golden.
func scenarioGolden(t *testing.T, e *opsEnv) {
	var session strings.Builder
	step := func(args ...string) string {
		out, errOut, code := e.tcx(args...)
		fmt.Fprintf(&session, "$ tcx %s\n%s%s", strings.Join(args, " "), out, errOut)
		if code != 0 {
			fmt.Fprintf(&session, "[exit %d]\n", code)
		}
		return out
	}
	id, pin := attached(t, step("attach", "veth0", "ingress", objCounter, "--label", "counter"))
	step("attach", "veth0", "ingress", objQoS, "--before", fmt.Sprintf("link:%d", id))
	step("attach", "veth0", "egress", objL4, "--plain")
	step("attach", "veth0", "egress", objQoS, "--legacy")
	step("show", "veth0")
	step("link", "update", pin, objL4)
	step("detach", "veth0", "ingress", "head")
	step("detach", "veth0", "egress", "tail")
	step("detach", "veth0", "egress", "prio:1000")
	ifindex, _ := e.ns.Ifindex("veth0")
	e.ns.DeleteDevice(ifindex)
	step("doctor")
	os.Remove(pin)
	got := e.normalise(session.String())
	path := filepath.Join("testdata", "ops_session.golden")
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("session differs from %s:\n%s", path, got)
	}
}
