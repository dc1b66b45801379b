package datapath_test

import (
	"context"
	"encoding/binary"
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
	mark   uint32 // set_mark: IPv4 frames get this mark and priority mark+1
	seen   bool   // dp_peer_seen instead: records what arrives
}

// peerSeen is dp_peer's struct peer_seen.
type peerSeen struct {
	Frames, PktTypeBefore, PktType, Mark, Priority, IngressIsDev uint32
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
		{"redirect_peer both ways between A and B", []peerAttach{{dev: "pa0", target: "pb0", mark: 0x77}, peerReverse, {dev: "pb1", seen: true}}, true},
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
	// the returned function, the other reads its dp_peer_seen_map.
	attach func(a peerAttach) (func(), func() peerSeen, error)
}

// runPeerCases runs every case on env: ping A to B, and for a passing
// case a TCP connection whose accepted peer must be A's own address.
func runPeerCases(t *testing.T, l *lab, env peerEnv) []string {
	srv := listen(t, l.b, addrB, []int{8080}, nil)
	var out []string
	for _, c := range peerCases {
		var (
			detach     []func()
			sent, seen func() peerSeen
		)
		for _, a := range c.attach {
			d, read, err := env.attach(a)
			if err != nil {
				t.Fatalf("%s: %s: attach at %s: %v", env.name, c.name, a.dev, err)
			}
			detach = append(detach, d)
			switch {
			case a.seen:
				seen = read
			case a.mark != 0:
				sent = read
			}
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
		if seen != nil {
			// What B's side saw of A's redirected IPv4 frames.
			before, got := sent(), seen()
			outcome += fmt.Sprintf(" seen: frames>0=%v pkt_type %d->%d mark=%#x priority=%#x ingress_ifindex=ifindex:%v",
				got.Frames > 0, before.PktTypeBefore, got.PktType, got.Mark, got.Priority, got.IngressIsDev == 1)
		}
		for _, d := range detach {
			d()
		}
		want := fmt.Sprintf("ping=%v", c.pass)
		if c.pass {
			want += " tcp=true peer=" + addrA
		}
		if seen != nil {
			// Addressed to the far end's MAC, the frames are OTHERHOST (3)
			// where they are redirected; skb_scrub_packet(skb, false)
			// makes them PACKET_HOST and keeps mark and priority.
			want += " seen: frames>0=true pkt_type 3->0 mark=0x77 priority=0x78 ingress_ifindex=ifindex:true"
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

// peerProgSet is dp_peer's configuration for a, its target at ifindex
// target.
func peerProgSet(a peerAttach, target int) map[string]any {
	return map[string]any{"peer_ifindex": uint32(target), "peer_flags": a.flags, "set_mark": a.mark}
}

func peerProgName(a peerAttach) string {
	if a.seen {
		return "dp_peer_seen"
	}
	return "dp_peer"
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
	// A addresses B's own MAC and B A's: the redirecting ends (pa0, pb0)
	// take the frames as PACKET_OTHERHOST.
	l.ip(l.nameA, "neigh", "replace", addrB, "lladdr", l.mac(l.b, "pb1"), "dev", "pa1", "nud", "permanent")
	l.ip(l.nameB, "neigh", "replace", addrA, "lladdr", l.mac(l.a, "pa1"), "dev", "pb1", "nud", "permanent")
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
	bb, err := kernel.New(l.b, kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	return runPeerCases(t, l, peerEnv{name: "kernel", attach: func(a peerAttach) (func(), func() peerSeen, error) {
		ns, b := mid, bm
		switch a.dev {
		case "pa1":
			ns, b = l.a, ba
		case "pb1":
			ns, b = l.b, bb
		}
		dev, err := ns.Ifindex(a.dev)
		if err != nil {
			return nil, nil, err
		}
		target := 0
		if a.target != "" {
			if target, err = ns.Ifindex(a.target); err != nil {
				return nil, nil, err
			}
		}
		c := loadKernel(t, b, "dp_peer.o", peerProgSet(a, target))
		dir := tcx.Ingress
		if a.egress {
			dir = tcx.Egress
		}
		link, err := tcx.AttachLink(b, dev, dir, c.Programs[peerProgName(a)], tcx.Tail(), 0)
		if err != nil {
			return nil, nil, err
		}
		read := func() peerSeen {
			var v peerSeen
			if err := c.Maps["dp_peer_seen_map"].Lookup(uint32(0), &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		return func() { link.Close(); c.Close() }, read, nil
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
	// The TAPs are the stacks' devices: A addresses B's own MAC (tpb's)
	// and B A's, which the runtime's pa0 and pb0 take as OTHERHOST.
	l.ip(l.nameA, "neigh", "replace", addrB, "lladdr", l.mac(l.b, "tpb"), "dev", "tpa", "nud", "permanent")
	l.ip(l.nameB, "neigh", "replace", addrA, "lladdr", l.mac(l.a, "tpa"), "dev", "tpb", "nud", "permanent")
	spec, err := engine.LoadCollectionSpec(progs + "dp_peer.o")
	if err != nil {
		t.Fatal(err)
	}
	outcomes := runPeerCases(t, l, peerEnv{name: "userspace", attach: func(a peerAttach) (func(), func() peerSeen, error) {
		rt := rtM
		switch a.dev {
		case "pa1":
			rt = rtA
		case "pb1":
			rt = rtB
		}
		dev, _ := rt.Ifindex(a.dev)
		target := 0
		if a.target != "" {
			var ok bool
			if target, ok = rt.Ifindex(a.target); !ok {
				return nil, nil, fmt.Errorf("no device %s", a.target)
			}
		}
		s := spec.Copy()
		for k, v := range peerProgSet(a, target) {
			if err := s.Variables[k].Set(v); err != nil {
				return nil, nil, err
			}
		}
		c, err := engine.NewCollection(s, engine.Options{NumCPU: 2, Engine: testEngine})
		if err != nil {
			return nil, nil, err
		}
		name := peerProgName(a)
		h, err := rt.NewProgram(name, engine.NewRunner(c.Programs[name]))
		if err != nil {
			return nil, nil, err
		}
		dir := tcx.Ingress
		if a.egress {
			dir = tcx.Egress
		}
		link, err := tcx.AttachLink(rt, dev, dir, h, tcx.Tail(), 0)
		if err != nil {
			return nil, nil, err
		}
		read := func() peerSeen {
			b := make([]byte, 24)
			if err := c.Maps["dp_peer_seen_map"].Lookup(make([]byte, 4), b); err != nil {
				t.Fatal(err)
			}
			var v peerSeen
			if _, err := binary.Decode(b, binary.NativeEndian, &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		return func() { link.Close(); h.Close(); c.Close() }, read, nil
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
