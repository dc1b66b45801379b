package datapath_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/topology"
)

// The e2e network: host A (10.0.0.1) and host B (10.0.0.2) on one link.
// Frames A sends run, on B's side of the link, the ACL (TCP to 9090
// dropped) and the static NAT's dp_snat (10.0.0.1 leaves as 10.0.0.100);
// frames B sends run dp_dnat on A's side (10.0.0.100 back to 10.0.0.1).
// B reaches 10.0.0.100 through a static neighbour entry for A's MAC.
const addrA, addrB, addrNAT = "10.0.0.1", "10.0.0.2", "10.0.0.100"

// scenario is one real connection attempt and what the programs decide.
type scenario struct {
	name string
	// from: "a" or "b"; kind: ping, tcp, udp
	from, kind, to string
	port           int
	pass           bool
	// peer is the source address the receiver must see (rewritten
	// headers), for tcp and udp that pass.
	peer string
}

// testEngine is the engine the datapath tests use (the default).
const testEngine = engine.EngineAuto

var scenarios = []scenario{
	{"ping A to B", "a", "ping", addrB, 0, true, ""},
	{"ping B to the NAT address", "b", "ping", addrNAT, 0, true, ""},
	{"ping B to A's own address (ping matches the reply by ICMP id, so the rewritten source does not matter)", "b", "ping", addrA, 0, true, ""},
	{"tcp B to A's own address:9090 (the SYN-ACK comes back from the NAT address)", "b", "tcp", addrA, 9090, false, ""},
	{"tcp A to B:8080", "a", "tcp", addrB, 8080, true, addrNAT},
	{"tcp A to B:9090 (ACL)", "a", "tcp", addrB, 9090, false, ""},
	{"tcp B to the NAT address:9090", "b", "tcp", addrNAT, 9090, true, addrB},
	{"udp A to B:5353", "a", "udp", addrB, 5353, true, addrNAT},
}

// hosts is one side's listeners: what each server saw.
type hosts struct {
	mu    sync.Mutex
	peers map[string]string // "tcp:PORT" or "udp:PORT" -> remote address
	close []func()
}

func (h *hosts) saw(key, addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.peers[key] = addr
}

func (h *hosts) peer(key string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peers[key]
}

// listen starts TCP and UDP servers inside ns (sockets made on the
// namespace's thread belong to it; they are served from any goroutine).
func listen(t *testing.T, ns *kernel.NetNS, addr string, tcpPorts []int, udpPorts []int) *hosts {
	h := &hosts{peers: map[string]string{}}
	for _, p := range tcpPorts {
		var ln net.Listener
		if err := ns.Do(func() (err error) {
			ln, err = net.Listen("tcp4", net.JoinHostPort(addr, fmt.Sprint(p)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("tcp:%d", p)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				h.saw(key, c.RemoteAddr().(*net.TCPAddr).IP.String())
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		h.close = append(h.close, func() { ln.Close() })
	}
	for _, p := range udpPorts {
		var pc net.PacketConn
		if err := ns.Do(func() (err error) {
			pc, err = net.ListenPacket("udp4", net.JoinHostPort(addr, fmt.Sprint(p)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("udp:%d", p)
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				h.saw(key, from.(*net.UDPAddr).IP.String())
				pc.WriteTo(buf[:n], from)
			}
		}()
		h.close = append(h.close, func() { pc.Close() })
	}
	t.Cleanup(func() {
		for _, c := range h.close {
			c()
		}
	})
	return h
}

// attempt runs one scenario; true if it got through (and back).
func attempt(l *lab, s scenario) (bool, error) {
	ns, name := l.a, l.nameA
	if s.from == "b" {
		ns, name = l.b, l.nameB
	}
	switch s.kind {
	case "ping":
		return l.ping(name, s.to), nil
	case "tcp":
		var ok bool
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp4", net.JoinHostPort(s.to, fmt.Sprint(s.port)), 1500*time.Millisecond)
			if err != nil {
				return nil
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 5)
			_, err = c.Read(buf)
			ok = err == nil && string(buf) == "hello"
			return nil
		})
		return ok, err
	case "udp":
		var ok bool
		err := ns.Do(func() error {
			c, err := net.Dial("udp4", net.JoinHostPort(s.to, fmt.Sprint(s.port)))
			if err != nil {
				return err
			}
			defer c.Close()
			for range 3 { // the first may wait for ARP
				c.Write([]byte("ping"))
				c.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
				buf := make([]byte, 16)
				if n, err := c.Read(buf); err == nil && string(buf[:n]) == "ping" {
					ok = true
					return nil
				}
			}
			return nil
		})
		return ok, err
	}
	return false, errors.New("unknown scenario kind")
}

// runScenarios runs every scenario and reports the ones whose outcome
// differs from what the programs decide. The returned slice is the outcome
// of each (passed or not, and the peer the server saw).
func runScenarios(t *testing.T, l *lab, backend string) (outcomes []string, failed int) {
	srvB := listen(t, l.b, addrB, []int{8080, 9090}, []int{5353})
	srvA := listen(t, l.a, addrA, []int{9090}, nil)
	for _, s := range scenarios {
		ok, err := attempt(l, s)
		if err != nil {
			t.Fatalf("%s: %s: %v", backend, s.name, err)
		}
		peer := ""
		if ok && s.kind != "ping" {
			srv := srvB
			if s.from == "b" {
				srv = srvA
			}
			peer = srv.peer(fmt.Sprintf("%s:%d", s.kind, s.port))
		}
		outcome := fmt.Sprintf("pass=%v peer=%s", ok, peer)
		outcomes = append(outcomes, outcome)
		want := fmt.Sprintf("pass=%v peer=%s", s.pass, s.peer)
		if outcome != want {
			failed++
			t.Errorf("%s: %s: %s, want %s", backend, s.name, outcome, want)
		} else {
			t.Logf("%s: %s: %s", backend, s.name, outcome)
		}
	}
	return outcomes, failed
}

// e2eTopology joins A and B through the userspace runtime: a veth pair
// va/vb whose host sides are TAPs in the namespaces.
func e2eTopology(l *lab) *topology.Topology {
	return &topology.Topology{
		Workers: 2,
		Dir:     ".",
		Objects: []topology.Object{
			{Name: "acl", Path: progs + "dp_acl.o", Set: map[string]any{"blocked_port": 9090}},
			{Name: "nat", Path: progs + "dp_nat.o", Set: map[string]any{"inside_addr": addrA, "outside_addr": addrNAT}},
		},
		Devices: []topology.Device{
			{Name: "va", Veth: "vb", Host: "tap:tapa", PortNetNS: l.pathA,
				Ingress: []topology.Entry{{Object: "nat", Program: "dp_dnat"}}},
			{Name: "vb", Host: "tap:tapb", PortNetNS: l.pathB,
				Ingress: []topology.Entry{{Object: "acl", Program: "dp_acl"}, {Object: "nat", Program: "dp_snat"}}},
		},
	}
}

func configure(l *lab, devA, devB string) {
	l.ip(l.nameA, "addr", "add", addrA+"/24", "dev", devA)
	l.ip(l.nameB, "addr", "add", addrB+"/24", "dev", devB)
	l.ip(l.nameA, "link", "set", devA, "up")
	l.ip(l.nameB, "link", "set", devB, "up")
	l.ip(l.nameB, "neigh", "replace", addrNAT, "lladdr", l.mac(l.a, devA), "dev", devB, "nud", "permanent")
}

// runUserspace runs the scenarios through tcx's userspace datapath.
func runUserspace(t *testing.T) ([]string, int, uint64) {
	l := newLab(t)
	topo := e2eTopology(l)
	return runDatapath(t, l, topo, "tapa", "tapb", "userspace")
}

// runAFPacket runs the scenarios through the userspace datapath acting as
// a bridge between two veths, read and written with AF_PACKET in a third
// namespace: A's a0 <-> a1 [ea] userspace [eb] b1 <-> b0 in B. ea's
// ingress runs the ACL, dp_snat and a redirect to eb; eb's ingress dp_dnat
// and a redirect to ea.
func runAFPacket(t *testing.T) ([]string, int, uint64) {
	l := newLab(t)
	mid, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer mid.Close()
	midPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), mid.FD())
	for _, side := range []struct {
		ns         *kernel.NetNS
		name, a, b string
	}{{l.a, l.nameA, "a0", "a1"}, {l.b, l.nameB, "b0", "b1"}} {
		if _, _, err := side.ns.AddVethPair(side.a, side.b); err != nil {
			t.Fatal(err)
		}
		noOffloads(t, side.ns, side.a)
		l.ip(side.name, "link", "set", side.b, "netns", midPath)
	}
	for _, dev := range []string{"a1", "b1"} {
		out, err := exec.Command("nsenter", "--net="+midPath, "ip", "link", "set", dev, "up").CombinedOutput()
		if err != nil {
			t.Fatalf("set %s up: %v: %s", dev, err, out)
		}
	}
	topo := &topology.Topology{
		Dir: ".",
		Objects: []topology.Object{
			{Name: "acl", Path: progs + "dp_acl.o", Set: map[string]any{"blocked_port": 9090}},
			{Name: "nat", Path: progs + "dp_nat.o", Set: map[string]any{"inside_addr": addrA, "outside_addr": addrNAT}},
			{Name: "to-eb", Path: progs + "dp_redirect.o", Set: map[string]any{"out_ifindex": "@eb"}},
			{Name: "to-ea", Path: progs + "dp_redirect.o", Set: map[string]any{"out_ifindex": "@ea"}},
		},
		Devices: []topology.Device{
			{Name: "ea", Wire: "afpacket:a1", PortNetNS: midPath, Promisc: true, Ingress: []topology.Entry{
				{Object: "acl", Program: "dp_acl"}, {Object: "nat", Program: "dp_snat"}, {Object: "to-eb", Program: "dp_redirect"}}},
			{Name: "eb", Wire: "afpacket:b1", PortNetNS: midPath, Promisc: true, Ingress: []topology.Entry{
				{Object: "nat", Program: "dp_dnat"}, {Object: "to-ea", Program: "dp_redirect"}}},
		},
	}
	return runDatapath(t, l, topo, "a0", "b0", "userspace/afpacket")
}

// runDatapath builds topo, runs its datapath while the scenarios run
// between hostA in A and hostB in B, and returns the outcomes, the failures
// and the ACL's drop count.
func runDatapath(t *testing.T, l *lab, topo *topology.Topology, hostA, hostB, label string) ([]string, int, uint64) {
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	built, err := topo.Build(topology.BuildOptions{Engine: testEngine})
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	dp, err := datapath.New(datapath.Config{Runtime: built.Runtime, Devices: built.Devices})
	if err != nil {
		built.ClosePorts()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()
	configure(l, hostA, hostB)
	outcomes, failed := runScenarios(t, l, label)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("datapath: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("datapath did not stop within 10s of cancel")
	}
	for i, c := range dp.Stats() {
		t.Logf("%s %s: %+v", label, built.Devices[i].Name, c)
	}
	drops := make([]byte, 8)
	if err := built.Objects["acl"].Maps["dp_acl_hits"].Lookup(make([]byte, 4), drops); err != nil {
		t.Fatal(err)
	}
	return outcomes, failed, uint64(drops[0]) | uint64(drops[1])<<8
}

// runKernel runs the same scenarios over a veth pair with the same objects
// attached with the kernel's tcx.
func runKernel(t *testing.T) ([]string, int, uint64) {
	l := newLab(t)
	if _, _, err := l.a.AddVethPair("vka", "vkb"); err != nil {
		t.Fatal(err)
	}
	l.ip(l.nameA, "link", "set", "vkb", "netns", l.nameB)
	configure(l, "vka", "vkb")
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
	acl := loadKernel(t, bb, "dp_acl.o", map[string]any{"blocked_port": uint16(9090)})
	nat := loadKernel(t, bb, "dp_nat.o", map[string]any{"inside_addr": [4]byte{10, 0, 0, 1}, "outside_addr": [4]byte{10, 0, 0, 100}})
	ia, err := l.a.Ifindex("vka")
	if err != nil {
		t.Fatal(err)
	}
	ib, err := l.b.Ifindex("vkb")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []struct {
		b       *kernel.Backend
		ifindex int
		prog    *kernel.Program
	}{{bb, ib, acl.Programs["dp_acl"]}, {bb, ib, nat.Programs["dp_snat"]}, {ba, ia, nat.Programs["dp_dnat"]}} {
		link, err := tcx.AttachLink(at.b, at.ifindex, tcx.Ingress, at.prog, tcx.Tail(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer link.Close()
	}
	outcomes, failed := runScenarios(t, l, "kernel")
	var drops uint64
	if err := acl.Maps["dp_acl_hits"].Lookup(uint32(0), &drops); err != nil {
		t.Fatal(err)
	}
	return outcomes, failed, drops
}

func loadKernel(t *testing.T, b *kernel.Backend, obj string, set map[string]any) *kernel.Collection {
	t.Helper()
	spec, err := engine.LoadCollectionSpec(progs + obj)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if err := spec.Variables[k].Set(v); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.LoadCollection(spec, kernel.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestE2E: real ping, TCP and UDP between two namespaces pass or fail as
// the ELF programs decide, through the userspace datapath (TAPs) and
// through the kernel's tcx (veth), with the same outcome and the same
// rewritten source addresses at the receivers.
func TestE2E(t *testing.T) {
	us, usFailed, usDrops := runUserspace(t)
	if t.Failed() {
		return
	}
	af, afFailed, afDrops := runAFPacket(t)
	kn, knFailed, knDrops := runKernel(t)
	failed := usFailed + afFailed + knFailed
	for i, s := range scenarios {
		if us[i] != kn[i] || af[i] != kn[i] {
			failed++
			t.Errorf("%s: userspace (TAP) %s, userspace (AF_PACKET) %s, kernel %s", s.name, us[i], af[i], kn[i])
		}
	}
	if usDrops == 0 || afDrops == 0 || knDrops == 0 {
		failed++
		t.Errorf("ACL drops: userspace %d/%d, kernel %d; want some on each", usDrops, afDrops, knDrops)
	}
	t.Logf("ACL drops (SYNs to 9090, with retransmissions): userspace TAP %d, AF_PACKET %d, kernel %d", usDrops, afDrops, knDrops)
	// each scenario on three paths, plus the drop check
	fmt.Printf("datapath e2e: %d scenarios, %d failed\n", 3*len(scenarios)+1, failed)
}
