package kerneldiff_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// probeSide loads testdata/probes.o on both sides, the kernel's runs in a
// new network namespace whose loopback device is up (kernel.NewNetNS):
// the namespace the engine models (engine.Options.Devices).
func probeSide(t *testing.T) *side {
	kerneltest.RequireKernel(t)
	pinCPU0(t)
	s := load(t, filepath.Join("testdata", "probes.o"), 1)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	kerneldiff.PinNSCPU0(t, ns)
	s.NS = ns
	return s
}

// cbCtx is a __sk_buff image with cb[0..] = cb and gso_size set.
func cbCtx(gsoSize uint32, cb ...uint32) []byte {
	c := make([]byte, skb.CtxSize)
	for i, v := range cb {
		binary.LittleEndian.PutUint32(c[skb.CtxCB+4*i:], v)
	}
	binary.LittleEndian.PutUint32(c[skb.CtxGSOSize:], gsoSize)
	return c
}

// probeFrame is an IPv4/UDP frame of n bytes.
func probeFrame(n int) []byte {
	f := make([]byte, n)
	copy(f, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45, 0, 0, byte(n - 14), 0, 0, 0, 0, 64, 17})
	return f
}

func (s *side) mustSame(t *testing.T, what, prog string, frame, ctx []byte) {
	t.Helper()
	d, err := s.compare(prog, frame, ctx, map[uint32]int{})
	if err != nil {
		t.Fatal(err)
	}
	if d != "" {
		t.Errorf("%s: %s", what, d)
	}
}

// TestKernel_TailCallFromSubprogram: a tail call made inside a subprogram
// replaces that frame and the chain goes on to the 33-call limit, in the
// kernel and in the engine (which once stopped at 8 frames).
func TestKernel_TailCallFromSubprogram(t *testing.T) {
	s := probeSide(t)
	s.mustSame(t, "tail call chain from a subprogram", "tail_sub_chain", probeFrame(60), nil)
	kout, err := s.KernRun("tail_sub_chain", probeFrame(60), nil)
	if err != nil {
		t.Fatal(err)
	}
	// 34 programs ran; the last one's hop returned 1000, every main added 1.
	if kout.Retval != 1000+34 {
		t.Errorf("kernel retval %d, want 1034: the chain is not what this test expects", kout.Retval)
	}
}

// TestKernel_CloneRedirectOrder: bpf_clone_redirect checks its flags, then
// rejects a GSO packet without gso_type (what test_run makes of gso_size)
// with EBADMSG, then looks the device up: a missing device on such a packet
// is EBADMSG, not EINVAL.
func TestKernel_CloneRedirectOrder(t *testing.T) {
	s := probeSide(t)
	for _, c := range []struct {
		name             string
		gso, ifindex, fl uint32
	}{
		{"GSO, missing device", 1400, 9999, 0},
		{"GSO, missing device, ingress", 1400, 9999, 1},
		{"GSO, bad flags", 1400, 9999, 2},
		{"no GSO, missing device", 0, 9999, 0},
		{"GSO, loopback", 1400, 1, 0},
	} {
		s.mustSame(t, c.name, "clone", probeFrame(80), cbCtx(c.gso, c.ifindex, c.fl))
	}
}

// TestKernel_CloneToLoopback: the engine answers like a namespace whose
// loopback device is up (engine.Options.Devices says so): a clone to
// ifindex 1, at egress and at ingress, returns what the kernel returns
// there.
func TestKernel_CloneToLoopback(t *testing.T) {
	s := probeSide(t)
	for _, fl := range []uint32{0, 1} {
		s.mustSame(t, "clone to lo", "clone", probeFrame(80), cbCtx(0, 1, fl))
	}
}

// TestKernel_KtimeGetTaiNs: bpf_ktime_get_tai_ns reads CLOCK_TAI (about
// the real-time clock, decades past the monotonic one) in both. The two
// runs are a moment apart; they must agree to within a minute, while the
// monotonic clock is further from TAI than that by years.
func TestKernel_KtimeGetTaiNs(t *testing.T) {
	s := probeSide(t)
	key := binary.LittleEndian.AppendUint32(nil, 0)
	if _, err := s.KernRun("tai", probeFrame(60), nil); err != nil {
		t.Fatal(err)
	}
	kv, err := s.kern.MapContents("out")
	if err != nil {
		t.Fatal(err)
	}
	var ktai, kmono uint64
	for _, e := range kv {
		switch binary.LittleEndian.Uint32(e.Key) {
		case 0:
			ktai = binary.LittleEndian.Uint64(e.Values[0])
		case 1:
			kmono = binary.LittleEndian.Uint64(e.Values[0])
		}
	}
	if _, _, _, err := s.x.TestRun(s.coll.Programs["tai"], probeFrame(60), nil); err != nil {
		t.Fatal(err)
	}
	v := make([]byte, 8)
	if err := s.coll.Maps["out"].Lookup(key, v); err != nil {
		t.Fatal(err)
	}
	etai := binary.LittleEndian.Uint64(v)
	const minute = uint64(60e9)
	if ktai-kmono < 365*24*60*minute {
		t.Fatalf("kernel: tai %d, monotonic %d: not a year apart, cannot tell the clocks apart", ktai, kmono)
	}
	if d := max(ktai, etai) - min(ktai, etai); d > minute {
		t.Errorf("bpf_ktime_get_tai_ns: kernel %d, engine %d: %d ns apart", ktai, etai, d)
	}
}

// TestKernel_SliceRdwrRefused: bpf_dynptr_slice_rdwr is the one kfunc of
// the skb dynptr family a tc program may not call on Linux 6.18 ("...() is
// not allowed", over an skb dynptr and over a local one alike). The engine
// refuses it too, naming it, where implementing it would run programs the
// kernel never loads. If a kernel starts loading either program, this
// test fails: the engine then has the kfunc to implement.
func TestKernel_SliceRdwrRefused(t *testing.T) {
	kerneltest.RequireKernel(t)
	spec, err := engine.LoadCollectionSpec(filepath.Join("testdata", "slice_rdwr.o"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rdwr_skb", "rdwr_local"} {
		one := spec.Copy()
		one.Programs = map[string]*ebpf.ProgramSpec{name: one.Programs[name]}
		kern, kerr := kernel.NewTestRunner(one)
		if kerr == nil {
			kern.Close()
			t.Errorf("%s: the kernel loads it: the engine must implement bpf_dynptr_slice_rdwr", name)
		} else if !strings.Contains(kerr.Error(), "bpf_dynptr_slice_rdwr() is not allowed") || !errors.Is(kerr, syscall.EPERM) {
			t.Errorf("%s: the kernel refuses it for another reason: %v", name, kerr)
		}
		coll, eerr := engine.NewCollection(one, engine.Options{NumCPU: 1})
		if eerr == nil {
			coll.Close()
			t.Errorf("%s: the engine loads a program the kernel refuses", name)
			continue
		}
		if !strings.Contains(eerr.Error(), "bpf_dynptr_slice_rdwr() is not allowed") || !errors.Is(eerr, syscall.EPERM) {
			t.Errorf("%s: engine: %v; want EPERM, bpf_dynptr_slice_rdwr() is not allowed", name, eerr)
		}
		t.Logf("%s: kernel: %v\nengine: %v", name, kerr, eerr)
	}
}

func TestProbesObject_UpToDate(t *testing.T) {
	for _, tool := range []string{"clang-19", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot rebuild testdata's objects to compare", tool)
		}
	}
	tmp := t.TempDir()
	if out, err := exec.Command("make", "-s", "-B", "-C", "testdata", "OUT="+tmp).CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	for _, obj := range []string{"probes.o", "crypto_probes.o", "hash_order.o", "timer_due.o", "fib_probe.o", "slice_rdwr.o"} {
		want, err := os.ReadFile(filepath.Join(tmp, obj))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", obj))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is stale: run make -C internal/testkit/kerneldiff/testdata", obj)
		}
	}
}

// probeArgs draws cb[0..4] for a probe program.
var probeArgs = map[string]func(r *rand.Rand, n int) [5]uint32{
	"tunnel": func(r *rand.Rand, n int) [5]uint32 {
		sel := r.Uint32() & (1<<23 - 1)
		if r.IntN(2) == 0 {
			sel &^= 0x20 // mostly valid set flags
		}
		if r.IntN(2) == 0 {
			sel &^= 1<<18 | 1<<19 // mostly no ext/label
		}
		return [5]uint32{sel, r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32()}
	},
	"check_mtu": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{pick(r, 0, 1, 9999), pick(r, 0, 0, 1500, 65536, 65537, uint32(n)), pick(r, 0, 1, 0xffffffff, 65536-uint32(n)+14, 65537-uint32(n)+14, 100000), pick(r, 0, 0, 1, 2)}
	},
	"sk_lookup": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{r.Uint32N(4), pick(r, 0xffffffff, 0, 1, 0x80000000), pick(r, 0, 0, 1), r.Uint32(), r.Uint32()}
	},
	"for_each": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{r.Uint32N(7), pick(r, 0, 0, 0, 1), r.Uint32(), r.Uint32(), r.Uint32()}
	},
	"fib": func(r *rand.Rand, n int) [5]uint32 {
		fam := pick(r, 2, 2, 10, 10, 0, 7)
		sel := fam | pick(r, 0, 6, 17)<<8 | pick(r, 0, 0, 1400, 65535)<<16
		flags := pick(r, 0, 1, 2, 4, 8, 9, 16, 32, 64, 0x3f)
		if r.IntN(3) == 0 {
			flags |= 1 << 31
		}
		return [5]uint32{sel, pick(r, 0, 1, 1, 2, 9999), flags, r.Uint32(), r.Uint32()}
	},
	"dynptr": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{pick(r, 0, 0, 0, 1, 2), pick(r, 0, 14, near(r, n, 4), near(r, n, 20), uint32(n)), r.Uint32(), r.Uint32(), 0}
	},
	"map_in_map": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{r.Uint32N(5), r.Uint32N(6), r.Uint32(), 0, 0}
	},
	"timer": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{r.Uint32N(3), pick(r, 0, 1, 7, 7, 2, 16, 17), r.Uint32(), pick(r, 0, 2, 4, 8), r.Uint32N(16)}
	},
	"spin_lock": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{r.Uint32(), r.Uint32(), 0, 0, 0}
	},
	"set_tstamp": func(r *rand.Rand, n int) [5]uint32 {
		return [5]uint32{pick(r, 0, r.Uint32()), pick(r, 0, r.Uint32()), pick(r, 0, 1, 2, 3)}
	},
}

// TestKernel_HelperProbes runs the helper probes of testdata/probes.c with
// random arguments on generated frames in the kernel and the engine and
// compares retval, data_out, ctx_out and every map after each run.
func TestKernel_HelperProbes(t *testing.T) {
	s := probeSide(t)
	packets := envInt(t, "KERNELDIFF_PACKETS", 1000)
	var total, ndiv int
	results := map[string]int{} // bpf_fib_lookup's and bpf_dynptr_read's results, to see the paths taken
	for _, base := range seedBases(t) {
		for _, prog := range []string{"tunnel", "check_mtu", "sk_lookup", "for_each", "set_tstamp", "fib", "dynptr", "map_in_map", "timer", "spin_lock"} {
			seed := seedOf(prog, base)
			g := pktgen.New(seed)
			rng := rand.New(rand.NewPCG(uint64(seed), 3))
			verdicts := map[uint32]int{}
			for i := range packets {
				frame := g.Next()
				ctx := ctxFor(rng, len(frame))
				if ctx == nil {
					ctx = make([]byte, skb.CtxSize)
				}
				for k, v := range probeArgs[prog](rng, len(frame)) {
					binary.LittleEndian.PutUint32(ctx[skb.CtxCB+4*k:], v)
				}
				total++
				d, err := s.compare(prog, frame, ctx, verdicts)
				if err != nil {
					t.Fatal(err)
				}
				if d != "" {
					ndiv++
					t.Errorf("divergence: probe %s, packet %d, seed %d (replay: KERNELDIFF_SEED=%d): %s\nframe % x\nctx_in % x", prog, i, seed, base, d, frame, ctx)
					break
				}
				if key, ok := map[string]uint32{"fib": 0, "dynptr": 2, "map_in_map": 0, "timer": 3}[prog]; ok {
					v := make([]byte, 8)
					if err := s.coll.Maps["out"].Lookup(binary.LittleEndian.AppendUint32(nil, key), v); err != nil {
						t.Fatal(err)
					}
					results[prog+" "+strconv.FormatInt(int64(binary.LittleEndian.Uint64(v)), 10)]++
				}
			}
			t.Logf("%s: verdicts %v", prog, verdicts)
		}
	}
	t.Logf("kernel helper probes: %d packets, %d divergences (seed bases %v); results %v", total, ndiv, seedBases(t), results)
	// fib: -EINVAL, -ENODEV, -EAFNOSUPPORT, FWD_DISABLED, NOT_FWDED
	// (link-local); dynptr_read: 0, -EINVAL, -E2BIG.
	// map_in_map: 0 no inner map, 1 no value, more a value updated.
	for _, want := range []string{"fib -22", "fib -19", "fib -97", "fib 5", "fib 4", "dynptr 0", "dynptr -22", "dynptr -7",
		"map_in_map 0", "map_in_map 1", "timer 1", "timer 0", "timer -22"} {
		if results[want] == 0 {
			t.Errorf("no probe run gave %q: %v", want, results)
		}
	}
}
