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
