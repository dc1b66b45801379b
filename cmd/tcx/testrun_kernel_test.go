package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/kernel"
)

// kernelJudged are the corpus programs whose test-run output is compared
// with the kernel's: every verdict kind, rewrites, length changes,
// redirects, context writes, tail calls and maps; some with --set.
func kernelJudged() []struct {
	prog string
	set  []string
} {
	return []struct {
		prog string
		set  []string
	}{
		{"nat44", nil}, {"nat44", []string{"nat_addr=203.0.113.9", "port_base=1024"}},
		{"l3_forward", nil}, {"l3_forward", []string{"out_ifindex=7", "own_mac=02:00:00:00:00:42"}},
		{"icmp_echo", nil}, {"qos_mark", nil}, {"vlan_push", nil}, {"vlan_pop", nil},
		{"trim_tail", nil}, {"mpls_push", nil}, {"ipip_encap", nil}, {"l4_classify", nil},
		{"tail_dispatch", nil}, {"conntrack_lru", nil}, {"lpm_acl", nil}, {"subprog_csum", nil},
		{"nptv6", nil}, {"config_filter", []string{"budget=3"}},
	}
}

// TestTestRun_MatchesKernel runs the fixture frames and generated traffic
// through test-run's own path (runPackets) and through the kernel's
// BPF_PROG_TEST_RUN, in the same order on fresh maps, and requires the same
// return value, output frame and ctx_out for every packet and the same map
// contents afterwards: what test-run prints is what the kernel does.
func TestTestRun_MatchesKernel(t *testing.T) {
	kerneltest.RequireKernel(t)
	frames := judgedFrames(t)
	t.Logf("%d frames per program", len(frames))
	for _, tc := range kernelJudged() {
		name := tc.prog
		t.Run(strings.Join(append([]string{name}, tc.set...), ","), func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(filepath.Join(progsDir, name+".o"))
			if err != nil {
				t.Fatal(err)
			}
			if err := setVariables(spec, tc.set); err != nil {
				t.Fatal(err)
			}
			opts := &testRunOptions{object: name, repeat: 1, dumpMap: true, ctxMark: 0x11, ctxPriority: 3, ctxCB: []uint{5, 0, 0, 0, 9}}
			rep, err := runPackets(t.Context(), spec, name, frames, opts)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := kernel.NewTestRunner(spec)
			if err != nil {
				t.Fatalf("kernel load: %+v", err)
			}
			defer kr.Close()
			for i, f := range frames {
				got := rep.Packets[i]
				want, err := kr.Run(name, kernel.RunInput{Data: f.data, Ctx: ctxIn(opts)})
				if err != nil {
					t.Fatalf("%s: kernel: %v", f.origin, err)
				}
				if got.Error != "" {
					t.Errorf("%s: engine error %s", f.origin, got.Error)
				}
				if uint32(got.Retval) != want.Retval || !bytes.Equal(got.out, want.Data) || !bytes.Equal(got.ctxOut, want.Ctx) {
					t.Errorf("%s: test-run and kernel differ\n retval %d vs %d\n data  %x\n  vs   %x\n ctx   %x\n  vs   %x",
						f.origin, got.Retval, int32(want.Retval), got.out, want.Data, got.ctxOut, want.Ctx)
				}
			}
			for _, d := range rep.Maps {
				if d.Type == "prog_array" || d.Type == "ringbuf" {
					continue
				}
				kvs, err := kr.MapContents(d.Name)
				if err != nil {
					t.Fatalf("kernel map %s: %v", d.Name, err)
				}
				if percpu := isPerCPU(spec.Maps[d.Name].Type); percpu {
					continue // the kernel ran on whichever CPU; values are spread
				}
				wantEntries := 0
				for _, kv := range kvs {
					key, val := fmt.Sprintf("%x", kv.Key), fmt.Sprintf("%x", kv.Values[0])
					if d.Type == "array" && allZeroValues(kv.Values) {
						continue
					}
					wantEntries++
					if !hasEntry(d, key, val) {
						t.Errorf("map %s: kernel has %s => %s, test-run does not", d.Name, key, val)
					}
				}
				if wantEntries != len(d.Entries) {
					t.Errorf("map %s: test-run shows %d entries, kernel has %d", d.Name, len(d.Entries), wantEntries)
				}
			}
		})
	}
}

// judgedFrames are the fixture frames and 200 generated ones, minus those
// test_run would refuse.
func judgedFrames(t testing.TB) []frame {
	frames := []frame{}
	for i, f := range fixtureFrames(t) {
		frames = append(frames, frame{origin: fmt.Sprintf("fixture #%d (%s)", i+1, f.name), data: f.data})
	}
	gen := pktgen.New(7)
	for i := range 200 {
		f := frame{origin: fmt.Sprintf("pktgen(7) #%d", i+1), data: gen.Next()}
		if checkFrame(f) == nil {
			frames = append(frames, f)
		}
	}
	return frames
}

// TestRunFrame_MatchesEngineTestRun checks, without a kernel, that
// test-run's own skb handling (runFrame: ResetTestRun, Executor.Run,
// CtxOut) answers exactly as the engine's BPF_PROG_TEST_RUN mirror,
// Program.TestRun, on a second collection fed the same frames in order.
func TestRunFrame_MatchesEngineTestRun(t *testing.T) {
	frames := judgedFrames(t)
	for _, tc := range kernelJudged() {
		spec, err := ebpf.LoadCollectionSpec(filepath.Join(progsDir, tc.prog+".o"))
		if err != nil {
			t.Fatal(err)
		}
		if err := setVariables(spec, tc.set); err != nil {
			t.Fatal(err)
		}
		opts := &testRunOptions{object: tc.prog, repeat: 1, ctxMark: 0x11, ctxCB: []uint{1, 2}, ingressIfidx: 4}
		rep, err := runPackets(t.Context(), spec, tc.prog, frames, opts)
		if err != nil {
			t.Fatal(err)
		}
		coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1})
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range frames {
			retval, data, ctx, err := coll.Programs[tc.prog].TestRun(f.data, ctxIn(opts))
			got := rep.Packets[i]
			if err != nil || uint32(got.Retval) != retval || !bytes.Equal(got.out, data) || !bytes.Equal(got.ctxOut, ctx) {
				t.Errorf("%s %v %s: runFrame (%d, %x, %x) vs TestRun (%d, %x, %x, %v)", tc.prog, tc.set, f.origin,
					got.Retval, got.out, got.ctxOut, retval, data, ctx, err)
			}
		}
		coll.Close()
	}
}

func hasEntry(d mapDump, key, value string) bool {
	for _, e := range d.Entries {
		if e.Key == key && e.Value == value {
			return true
		}
	}
	return false
}
