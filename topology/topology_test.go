package topology_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/internal/testkit/dptraffic"
	"github.com/tcxgo/tcx/topology"
	"github.com/tcxgo/tcx/userspace"
)

const yamlText = `workers: 2
objects:
  - name: acl1
    path: ../testdata/progs/dp_acl.o
    share: [dp_acl_hits]
  - name: acl2
    path: ../testdata/progs/dp_acl.o
    share: [dp_acl_hits]
    set: { blocked_port: 22 }
  - name: fwd
    path: ../testdata/progs/dp_redirect.o
    set: { out_ifindex: "@b" }
devices:
  - name: a
    veth: b
    ingress:
      - { object: acl1, program: dp_acl, link: first }
      - { object: fwd, program: dp_redirect, link: last }
      - { object: acl2, program: dp_acl, link: second, after: first }
      - { object: acl2, program: dp_acl, link: zeroth, position: head }
  - name: b
`

// Chains follow their anchors, maps listed under share are one map,
// "@DEVICE" gives the device's ifindex, and workers sets the CPUs.
func TestBuild(t *testing.T) {
	topo, err := topology.Parse("x/t.yaml", []byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	topo.Dir = "."
	b, err := topo.Build(topology.BuildOptions{NoPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Objects["acl1"].Maps["dp_acl_hits"] != b.Objects["acl2"].Maps["dp_acl_hits"] {
		t.Error("dp_acl_hits is not shared")
	}
	if b.Objects["acl1"].NumCPU() != 2 {
		t.Errorf("NumCPU %d, want 2", b.Objects["acl1"].NumCPU())
	}
	tr := &datapath.Tracer{}
	for _, p := range b.Programs {
		p.Trace(tr)
	}
	out := b.Runtime.Receive(b.Devices[0].Ifindex, dptraffic.ARP(dptraffic.InsideMAC, dptraffic.InsideIP, dptraffic.ServerIP))
	var names []string
	for _, s := range tr.Steps {
		names = append(names, s.Program)
	}
	if len(names) < 4 || strings.Join(names[:4], ",") != "zeroth,first,second,last" {
		t.Errorf("chain ran %v, want zeroth,first,second,last first", names)
	}
	// b is a's veth peer: redirected to b's egress, the frame crosses back
	// to a's ingress, again and again, until the hop limit ends it.
	if out.Fate != userspace.Looped || len(names)%4 != 0 {
		t.Errorf("fate %s after %d program runs; want looped after whole chains", out.Fate, len(names))
	}
	val := make([]byte, 5)
	if err := b.Objects["fwd"].Maps[".rodata"].Lookup(make([]byte, 4), val); err != nil {
		t.Fatal(err)
	}
	if got := int(binary.NativeEndian.Uint32(val)); got != b.Devices[1].Ifindex {
		t.Errorf("out_ifindex %d, want b's ifindex %d", got, b.Devices[1].Ifindex)
	}
}

// Validation errors carry file, line and column.
func TestParse_Errors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"devices:\n  - name: a\n  - name: a\n", "t.yaml:3:11: devices[1].name: device \"a\" declared twice"},
		{"devices:\n  - name: this-name-is-too-long\n", "t.yaml:2:11: devices[0].name"},
		{"devices:\n  - name: a\n    mtu: 20\n", "t.yaml:3:10: devices[0].mtu: mtu 20"},
		{"devices:\n  - name: a\n    veth: zz\n", "t.yaml:3:11: devices[0].veth: veth peer \"zz\""},
		{"devices:\n  - name: a\n    ingress:\n      - { object: o, program: p, position: middle }\n", `position "middle"`},
		{"workers: 1000\ndevices: [{name: a}]\n", "t.yaml:1:10: workers: workers 1000"},
		{"objects: [{name: o}]\ndevices: [{name: a}]\n", `object "o" has no path`},
	} {
		_, err := topology.Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.yaml, err, tc.want)
		}
		var te *topology.Error
		if err != nil && !errors.As(err, &te) {
			t.Errorf("%q: %T is not a *topology.Error", tc.yaml, err)
		}
	}
}

const nsYAML = `namespaces: [b, c]
objects:
  - name: p1
    path: ../testdata/progs/dp_peer.o
    set: { peer_ifindex: "@veth0" }
    share: [dp_peer_seen_map]
  - name: p2
    path: ../testdata/progs/dp_peer.o
    set: { peer_ifindex: "@b/eth0" }
    share: [dp_peer_seen_map]
devices:
  - name: eth0
    ingress: [{ object: p1, program: dp_peer }]
  - name: veth0
    veth: b/eth0
  - name: eth0
    netns: b
    ingress: [{ object: p2, program: dp_peer_seen }]
  - name: x
    netns: c
    veth: c/y
  - name: y
    netns: c
`

// Each namespace is a runtime with its own ifindexes; veth pairs cross
// them (a pair inside one namespace numbers the peer first, as veth's
// newlink registers it first); "@NS/DEVICE" and unique names resolve; shared maps are shared
// across namespaces.
func TestBuild_Namespaces(t *testing.T) {
	topo, err := topology.Parse("x/t.yaml", []byte(nsYAML))
	if err != nil {
		t.Fatal(err)
	}
	topo.Dir = "."
	b, err := topo.Build(topology.BuildOptions{NoPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(b.Runtimes) != 3 || b.Runtimes["default"] != b.Runtime || b.Runtimes["b"] == b.Runtime || b.Runtimes["c"] == b.Runtimes["b"] {
		t.Fatalf("runtimes %v", b.Runtimes)
	}
	want := []struct {
		label   string
		rt      *userspace.Runtime
		ifindex int
	}{{"eth0", b.Runtime, 2}, {"veth0", b.Runtime, 3}, {"b/eth0", b.Runtimes["b"], 2}, {"c/x", b.Runtimes["c"], 3}, {"c/y", b.Runtimes["c"], 2}}
	for i, w := range want {
		d := b.Devices[i]
		if b.Labels[i] != w.label || d.Runtime != w.rt || d.Ifindex != w.ifindex {
			t.Errorf("device %d: %s ifindex %d; want %s ifindex %d in its namespace's runtime", i, b.Labels[i], d.Ifindex, w.label, w.ifindex)
		}
	}
	if b.Objects["p1"].Maps["dp_peer_seen_map"] != b.Objects["p2"].Maps["dp_peer_seen_map"] {
		t.Error("dp_peer_seen_map is not shared across namespaces")
	}
	for obj, want := range map[string]int{"p1": 3, "p2": 2} {
		val := make([]byte, 20)
		if err := b.Objects[obj].Maps[".rodata"].Lookup(make([]byte, 4), val); err != nil {
			t.Fatal(err)
		}
		if got := int(binary.NativeEndian.Uint32(val)); got != want {
			t.Errorf("%s: peer_ifindex %d, want %d", obj, got, want)
		}
	}
	// The redirect crosses from the default namespace's eth0 into b.
	out := b.Runtime.Receive(b.Devices[0].Ifindex, dptraffic.ARP(dptraffic.InsideMAC, dptraffic.InsideIP, dptraffic.ServerIP))
	if out.Fate != userspace.Delivered || out.Runtime != b.Runtimes["b"] || out.Ifindex != 2 {
		t.Errorf("fate %s at ifindex %d of %p; want delivered at b's eth0", out.Fate, out.Ifindex, out.Runtime)
	}

	// "@eth0" names two devices: refused with the way out.
	amb := strings.Replace(nsYAML, `"@veth0"`, `"@eth0"`, 1)
	topo, err = topology.Parse("x/t.yaml", []byte(amb))
	if err != nil {
		t.Fatal(err)
	}
	topo.Dir = "."
	if _, err := topo.Build(topology.BuildOptions{NoPorts: true}); err == nil || !strings.Contains(err.Error(), `t.yaml:5:26: objects[0].set.peer_ifindex: set peer_ifindex: device "eth0" is in several namespaces (b/eth0, default/eth0): write @NS/eth0`) {
		t.Errorf("ambiguous @eth0: %v", err)
	}
}

// Namespace mistakes carry file, line and column.
func TestParse_NamespaceErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"devices:\n  - name: a\n    netns: zz\n", `t.yaml:3:12: devices[0].netns: unknown namespace "zz"`},
		{"devices:\n  - name: a\n    netns: /run/netns/a\n", `devices[0].netns: unknown namespace "/run/netns/a": declare it under namespaces (a kernel namespace for TAP and AF_PACKET ports is port_netns)`},
		{"namespaces: [b]\ndevices:\n  - name: a\n    veth: zz/a\n", `t.yaml:4:11: devices[0].veth: veth peer "zz/a": no namespace "zz" is declared`},
		{"namespaces: [b]\ndevices:\n  - name: a\n    veth: b/q\n  - name: q\n", `t.yaml:4:11: devices[0].veth: veth peer "b/q" is not a device declared in namespace b`},
		{"namespaces: [b]\ndevices:\n  - name: a\n    netns: b\n  - name: a\n    netns: b\n", `t.yaml:5:11: devices[1].name: device "a" declared twice in namespace b`},
		{"namespaces: [b, b]\ndevices: [{name: a}]\n", `t.yaml:1:17: namespaces[1]: namespace "b" declared twice`},
		{"namespaces: [default]\ndevices: [{name: a}]\n", `namespaces[0]: namespace "default" always exists`},
		{"namespaces: [a/b]\ndevices: [{name: a}]\n", `namespaces[0]: namespace name "a/b"`},
		{"namespaces: [b]\ndevices:\n  - name: a\n    veth: b/a\n  - name: a\n    netns: b\n    veth: c\n  - name: c\n    netns: b\n", `devices[0].veth: veth peer "b/a" is paired with "c"`},
	} {
		_, err := topology.Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.yaml, err, tc.want)
		}
	}
	// The same name in two namespaces is two devices.
	if _, err := topology.Parse("t.yaml", []byte("namespaces: [b]\ndevices:\n  - name: a\n    veth: b/a\n  - name: a\n    netns: b\n")); err != nil {
		t.Errorf("a veth pair a, b/a: %v", err)
	}
}
