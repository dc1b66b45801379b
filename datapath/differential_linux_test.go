package datapath_test

import (
	"bytes"
	"fmt"
	"testing"

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

// TestDifferential replays a capture through the userspace chain and, frame
// by frame, through the kernel running the same chain's programs in order
// (BPF_PROG_TEST_RUN per hop): fates and bytes must agree, and so must the
// ACL's and the NAT's counters afterwards.
func TestDifferential(t *testing.T) {
	kerneltest.RequireKernel(t)
	const n = 12000
	frames := dptraffic.Mixed(n, 8)

	built, err := chainTopology().Build(topology.BuildOptions{NoPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	eth0, eth1 := built.Devices[0].Ifindex, built.Devices[1].Ifindex
	hops := []kernelHop{
		loadHop(t, "dp_count.o", "dp_count", nil),
		loadHop(t, "dp_acl.o", "dp_acl", map[string]any{"blocked_port": uint16(9090)}),
		loadHop(t, "dp_nat.o", "dp_snat", map[string]any{"inside_addr": [4]byte{10, 0, 0, 1}, "outside_addr": [4]byte{192, 0, 2, 1}}),
		loadHop(t, "dp_redirect.o", "dp_redirect", map[string]any{"out_ifindex": uint32(eth1)}),
	}

	divergences := 0
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
				t.Errorf("frame %d: userspace %s at %d, kernel %s at %d\n  in     %x\n  user   %x\n  kernel %x",
					i, out.Fate, out.Ifindex, kfate, wantAt, f.Data, out.Frame, kdata)
			}
		}
	}
	// The programs' own counters after the run.
	compare := func(r *kernel.TestRunner, coll *engine.Collection, m string) {
		kv, err := r.MapContents(m)
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
				t.Errorf("map %s key %x: userspace %x, kernel %x", m, e.Key, got, e.Values[0])
			}
		}
	}
	compare(hops[1].r, built.Objects["acl"], "dp_acl_hits")
	compare(hops[2].r, built.Objects["nat"], ".bss")
	if fates[userspace.Dropped] == 0 || fates[userspace.Transmitted] == 0 {
		t.Errorf("the capture does not exercise the chain: fates %v", fates)
	}
	t.Logf("fates: %d transmitted, %d dropped, %d delivered", fates[userspace.Transmitted], fates[userspace.Dropped], fates[userspace.Delivered])
	fmt.Printf("datapath differential: %d frames, %d divergences\n", n, divergences)
}
