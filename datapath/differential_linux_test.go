package datapath_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/dptraffic"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/topology"
	"github.com/tcxgo/tcx/userspace"
)

// kernelHop is one program of the chain loaded into the kernel.
type kernelHop struct {
	r    *kernel.TestRunner
	prog string
}

func loadHop(t *testing.T, obj, prog string, set map[string]any) kernelHop {
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
	r, err := kernel.NewTestRunner(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return kernelHop{r, prog}
}

// kernelChain runs frame through the hops as tcx_run does: in order until
// a program returns anything but TCX_NEXT; codes tcx does not know count
// as NEXT. It returns the fate the runtime would give and the frame.
func kernelChain(t *testing.T, hops []kernelHop, frame []byte) (userspace.Fate, []byte) {
	data := frame
	for _, h := range hops {
		out, err := h.r.Run(h.prog, kernel.RunInput{Data: data})
		if err != nil {
			t.Fatalf("%s: %v", h.prog, err)
		}
		data = out.Data
		switch int32(out.Retval) {
		case 0: // TCX_PASS
			return userspace.Delivered, data
		case 2: // TCX_DROP
			return userspace.Dropped, data
		case 7: // TCX_REDIRECT to eth1's egress: no program there, onto its wire
			return userspace.Transmitted, data
		}
	}
	return userspace.Delivered, data // NEXT at the end: classic tc absent, pass
}

// diffChain is one chain of the differential: programs on eth0's ingress
// (object, program, variables for the kernel side), the userspace topology
// built from the same entries.
type diffChain struct {
	name  string
	progs []diffProg
}

type diffProg struct {
	obj, prog string
	set       map[string]any // userspace (topology) values
	kset      map[string]any // kernel (VariableSpec.Set) values
}

var diffChains = []diffChain{
	{"demo: count, acl, snat, redirect", []diffProg{
		{"dp_count.o", "dp_count", nil, nil},
		{"dp_acl.o", "dp_acl", map[string]any{"blocked_port": 9090}, map[string]any{"blocked_port": uint16(9090)}},
		{"dp_nat.o", "dp_snat", map[string]any{"inside_addr": "10.0.0.1", "outside_addr": "192.0.2.1"}, map[string]any{"inside_addr": [4]byte{10, 0, 0, 1}, "outside_addr": [4]byte{192, 0, 2, 1}}},
		{"dp_redirect.o", "dp_redirect", map[string]any{"out_ifindex": "@eth1"}, nil}, // kernel: set below
	}},
	{"tail changes: count, snat, trim_tail", []diffProg{
		{"dp_count.o", "dp_count", nil, nil},
		{"dp_nat.o", "dp_snat", map[string]any{"inside_addr": "10.0.0.3", "outside_addr": "203.0.113.9"}, map[string]any{"inside_addr": [4]byte{10, 0, 0, 3}, "outside_addr": [4]byte{203, 0, 113, 9}}},
		{"trim_tail.o", "trim_tail", map[string]any{"snap_len": 200}, map[string]any{"snap_len": uint32(200)}},
	}},
	{"head changes: acl, mpls_push", []diffProg{
		{"dp_acl.o", "dp_acl", map[string]any{"blocked_port": 443}, map[string]any{"blocked_port": uint16(443)}},
		{"mpls_push.o", "mpls_push", nil, nil},
	}},
}

func (c diffChain) topology() *topology.Topology {
	t := &topology.Topology{Workers: 1, Dir: ".", Devices: []topology.Device{{Name: "eth0"}, {Name: "eth1"}}}
	for i, p := range c.progs {
		name := fmt.Sprintf("o%d", i)
		t.Objects = append(t.Objects, topology.Object{Name: name, Path: progs + p.obj, Set: p.set})
		t.Devices[0].Ingress = append(t.Devices[0].Ingress, topology.Entry{Object: name, Program: p.prog})
	}
	return t
}

// TestDifferential replays captures through userspace chains and, frame by
// frame, through the kernel running the same chain's programs in order
// (BPF_PROG_TEST_RUN per hop): fates and bytes must agree, and so must the
// programs' counters in array maps afterwards.
func TestDifferential(t *testing.T) {
	kerneltest.RequireKernel(t)
	const perChain = 4000
	total, divergences := 0, 0
	for ci, c := range diffChains {
		frames := dptraffic.Mixed(perChain, uint64(8+ci))
		built, err := c.topology().Build(topology.BuildOptions{NoPorts: true})
		if err != nil {
			t.Fatal(err)
		}
		defer built.Close()
		eth0, eth1 := built.Devices[0].Ifindex, built.Devices[1].Ifindex
		var hops []kernelHop
		for _, p := range c.progs {
			kset := p.kset
			if p.prog == "dp_redirect" {
				kset = map[string]any{"out_ifindex": uint32(eth1)}
			}
			hops = append(hops, loadHop(t, p.obj, p.prog, kset))
		}
		fates := map[userspace.Fate]int{}
		buf := make([]byte, 0, 4096)
		for i, f := range frames {
			in := append(buf[:0], f.Data...)
			out := built.Runtime.Receive(eth0, in)
			kfate, kdata := kernelChain(t, hops, f.Data)
			fates[out.Fate]++
			wantAt := eth0
			if kfate == userspace.Transmitted {
				wantAt = eth1
			}
			if out.Fate != kfate || out.Ifindex != wantAt || !bytes.Equal(out.Frame, kdata) {
				divergences++
				if divergences <= 5 {
					t.Errorf("%s: frame %d: userspace %s at %d, kernel %s at %d\n  in     %x\n  user   %x\n  kernel %x",
						c.name, i, out.Fate, out.Ifindex, kfate, wantAt, f.Data, out.Frame, kdata)
				}
			}
		}
		total += len(frames)
		// The programs' array counters after the run.
		for hi, h := range hops {
			coll := built.Objects[fmt.Sprintf("o%d", hi)]
			for _, m := range h.r.Maps() {
				info := coll.Maps[m].Info()
				if info.Type != ebpf.Array {
					continue
				}
				kv, err := h.r.MapContents(m)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range kv {
					got := make([]byte, len(e.Values[0]))
					if err := coll.Maps[m].Lookup(e.Key, got); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, e.Values[0]) {
						divergences++
						t.Errorf("%s: %s map %s key %x: userspace %x, kernel %x", c.name, h.prog, m, e.Key, got, e.Values[0])
					}
				}
			}
		}
		t.Logf("%s: %d frames: %d transmitted, %d dropped, %d delivered", c.name, len(frames),
			fates[userspace.Transmitted], fates[userspace.Dropped], fates[userspace.Delivered])
	}
	fmt.Printf("datapath differential: %d frames, %d divergences\n", total, divergences)
}
