package datapath_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/port"
	"github.com/tcxgo/tcx/userspace"
)

// The bpf_redirect_peer topology, the same in the kernel and in the
// userspace runtime: namespace A's pa1 is the peer of pa0 in a middle
// namespace M, B's pb1 the peer of pb0; pc0 and pc1 are a veth pair
// inside M. dp_peer on pa0's ingress sends A's frames to pb0's peer (into
// B), and on pb0's ingress B's frames to pa0's peer (into A); the cases
// change one attachment.
type peerAttach struct {
	dev    string // where dp_peer is attached
	egress bool
	target string // the device whose peer it redirects to (in dev's namespace)
	flags  uint64
}

type peerCase struct {
	name   string
	attach []peerAttach
	pass   bool
}

var (
	peerForward = peerAttach{dev: "pa0", target: "pb0"}
	peerReverse = peerAttach{dev: "pb0", target: "pa0"}
	peerCases   = []peerCase{
		{"redirect_peer both ways between A and B", []peerAttach{peerForward, peerReverse}, true},
		{"replies redirected to a veth whose peer is in the same namespace", []peerAttach{peerForward, {dev: "pb0", target: "pc0"}}, false},
		{"replies redirected to the peer of lo, which has none", []peerAttach{peerForward, {dev: "pb0", target: "lo"}}, false},
		{"replies redirected with flags 1", []peerAttach{peerForward, {dev: "pb0", target: "pa0", flags: 1}}, false},
		{"A's frames also redirected from pa1's egress (to pa1's own peer)", []peerAttach{peerForward, peerReverse, {dev: "pa1", egress: true, target: "pa1"}}, false},
	}
)

// peerEnv is one backend's side of the topology.
type peerEnv struct {
	name string
	// attach loads dp_peer set for a and attaches it; the link goes with
	// the returned function.
	attach func(a peerAttach) (func(), error)
}

// runPeerCases runs every case on env: ping A to B, and for a passing
// case a TCP connection whose accepted peer must be A's own address.
func runPeerCases(t *testing.T, l *lab, env peerEnv) []string {
	srv := listen(t, l.b, addrB, []int{8080}, nil)
	var out []string
	for _, c := range peerCases {
		var detach []func()
		for _, a := range c.attach {
			d, err := env.attach(a)
			if err != nil {
				t.Fatalf("%s: %s: attach at %s: %v", env.name, c.name, a.dev, err)
			}
			detach = append(detach, d)
		}
		ok := l.ping(l.nameA, addrB)
		if ok {
			ok = l.ping(l.nameA, addrB) // the first may wait for nothing; two make it steady
		}
		outcome := fmt.Sprintf("ping=%v", ok)
		if c.pass {
			tcpOK, err := attempt(l, scenario{from: "a", kind: "tcp", to: addrB, port: 8080})
			if err != nil {
				t.Fatal(err)
			}
			outcome += fmt.Sprintf(" tcp=%v peer=%s", tcpOK, srv.peer("tcp:8080"))
		}
		for _, d := range detach {
			d()
		}
		want := fmt.Sprintf("ping=%v", c.pass)
		if c.pass {
			want += " tcp=true peer=" + addrA
		}
		if outcome != want {
			t.Errorf("%s: %s: %s, want %s", env.name, c.name, outcome, want)
		} else {
			t.Logf("%s: %s: %s", env.name, c.name, outcome)
		}
		out = append(out, outcome)
	}
	return out
}

// peerSpec is dp_peer set to redirect to target with flags.
func peerProgSet(t *testing.T, target int, flags uint64) map[string]any {
	t.Helper()
	return map[string]any{"peer_ifindex": uint32(target), "peer_flags": flags}
}

func runPeerKernel(t *testing.T) []string {
	l := newLab(t)
	mid, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer mid.Close()
	midPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), mid.FD())
	if _, _, err := mid.AddVethPairTo("pa0", l.a, "pa1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mid.AddVethPairTo("pb0", l.b, "pb1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mid.AddVethPair("pc0", "pc1"); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"pa0", "pb0", "pc0", "pc1"} {
		inNS(t, midPath, "ip", "link", "set", dev, "up")
	}
	l.ip(l.nameA, "addr", "add", addrA+"/24", "dev", "pa1")
	l.ip(l.nameB, "addr", "add", addrB+"/24", "dev", "pb1")
	l.ip(l.nameA, "link", "set", "pa1", "up")
	l.ip(l.nameB, "link", "set", "pb1", "up")
	// The frames keep pkt_type from the first eth_type_trans (pa0's, pb0's)
	// across redirect_peer: addressed to those ends they are PACKET_HOST.
	l.ip(l.nameA, "neigh", "replace", addrB, "lladdr", l.mac(mid, "pa0"), "dev", "pa1", "nud", "permanent")
	l.ip(l.nameB, "neigh", "replace", addrA, "lladdr", l.mac(mid, "pb0"), "dev", "pb1", "nud", "permanent")
	bm, err := kernel.New(mid, kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	ba, err := kernel.New(l.a, kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ba.Close()
	return runPeerCases(t, l, peerEnv{name: "kernel", attach: func(a peerAttach) (func(), error) {
		ns, b := mid, bm
		if a.dev == "pa1" {
			ns, b = l.a, ba
		}
		dev, err := ns.Ifindex(a.dev)
		if err != nil {
			return nil, err
		}
		target, err := ns.Ifindex(a.target)
		if err != nil {
			return nil, err
		}
		c := loadKernel(t, b, "dp_peer.o", peerProgSet(t, target, a.flags))
		dir := tcx.Ingress
		if a.egress {
			dir = tcx.Egress
		}
		link, err := tcx.AttachLink(b, dev, dir, c.Programs["dp_peer"], tcx.Tail(), 0)
		if err != nil {
			return nil, err
		}
		return func() { link.Close(); c.Close() }, nil
	}})
}

func runPeerUserspace(t *testing.T) ([]string, []datapath.Counters) {
	l := newLab(t)
	rtM, rtA, rtB := userspace.New(), userspace.New(), userspace.New()
	if _, _, err := rtM.AddVethPairTo("pa0", rtA, "pa1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rtM.AddVethPairTo("pb0", rtB, "pb1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rtM.AddVethPair("pc0", "pc1"); err != nil {
		t.Fatal(err)
	}
	// A's and B's stacks are TAPs, the host sides of pa1 and pb1.
	var devs []*datapath.Device
	for _, d := range []struct {
		rt        *userspace.Runtime
		name, tap string
		ns        string
	}{{rtA, "pa1", "tpa", l.pathA}, {rtB, "pb1", "tpb", l.pathB}} {
		idx, _ := d.rt.Ifindex(d.name)
		host, err := port.OpenTAP(d.tap, port.Options{NetNS: d.ns})
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, &datapath.Device{Name: d.name, Ifindex: idx, Runtime: d.rt, Host: host})
	}
	dp, err := datapath.New(datapath.Config{Runtime: rtM, Devices: devs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("datapath: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("datapath did not stop within 10s of cancel")
		}
	}()
	l.ip(l.nameA, "addr", "add", addrA+"/24", "dev", "tpa")
	l.ip(l.nameB, "addr", "add", addrB+"/24", "dev", "tpb")
	// The TAPs are the stacks' devices: frames reach B's stack addressed
	// to tpb.
	l.ip(l.nameA, "neigh", "replace", addrB, "lladdr", l.mac(l.b, "tpb"), "dev", "tpa", "nud", "permanent")
	l.ip(l.nameB, "neigh", "replace", addrA, "lladdr", l.mac(l.a, "tpa"), "dev", "tpb", "nud", "permanent")
	spec, err := engine.LoadCollectionSpec(progs + "dp_peer.o")
	if err != nil {
		t.Fatal(err)
	}
	outcomes := runPeerCases(t, l, peerEnv{name: "userspace", attach: func(a peerAttach) (func(), error) {
		rt := rtM
		if a.dev == "pa1" {
			rt = rtA
		}
		dev, _ := rt.Ifindex(a.dev)
		target, ok := rt.Ifindex(a.target)
		if !ok {
			return nil, fmt.Errorf("no device %s", a.target)
		}
		s := spec.Copy()
		for k, v := range peerProgSet(t, target, a.flags) {
			if err := s.Variables[k].Set(v); err != nil {
				return nil, err
			}
		}
		c, err := engine.NewCollection(s, engine.Options{NumCPU: 2, Engine: testEngine})
		if err != nil {
			return nil, err
		}
		h, err := rt.NewProgram("dp_peer", engine.NewRunner(c.Programs["dp_peer"]))
		if err != nil {
			return nil, err
		}
		dir := tcx.Ingress
		if a.egress {
			dir = tcx.Egress
		}
		link, err := tcx.AttachLink(rt, dev, dir, h, tcx.Tail(), 0)
		if err != nil {
			return nil, err
		}
		return func() { link.Close(); h.Close(); c.Close() }, nil
	}})
	return outcomes, dp.Stats()
}

// TestRedirectPeer: bpf_redirect_peer through the userspace datapath (two
// runtimes' veth ends with TAP host sides, across a third runtime) and
// through the kernel's tcx between the same namespaces: real ping and TCP
// pass or fail alike, for a good redirect and for each redirect the kernel
// refuses (a peer in the same namespace, a device without a peer, flags,
// from egress).
func TestRedirectPeer(t *testing.T) {
	us, stats := runPeerUserspace(t)
	kn := runPeerKernel(t)
	failed := 0
	for i, c := range peerCases {
		if us[i] != kn[i] {
			failed++
			t.Errorf("%s: userspace %s, kernel %s", c.name, us[i], kn[i])
		}
	}
	var st []string
	for i, c := range stats {
		st = append(st, fmt.Sprintf("%s: from host %d, delivered %d, dropped %d", []string{"pa1", "pb1"}[i], c.HostFrames, c.Delivered, c.Dropped))
	}
	t.Logf("userspace devices: %s", strings.Join(st, "; "))
	fmt.Printf("datapath redirect_peer: %d cases, %d differ from the kernel\n", len(peerCases), failed)
}
