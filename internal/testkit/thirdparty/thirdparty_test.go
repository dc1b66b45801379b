package thirdparty_test

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/internal/testkit/thirdparty"
	"github.com/tcxgo/tcx/kernel"
)

// envInt reads a tuning knob from the environment.
func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

func seedOf(name string, base int) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int64(h.Sum32()) + int64(base)
}

// TestThirdParty loads every object of the third-party corpus into the
// kernel (its tc programs) and into the engine (the whole object), checks
// that the engine refuses nothing the kernel loads beyond the documented
// Refusals, then runs THIRDPARTY_PACKETS (default 400) packets per program,
// times its driver's weight, through both and compares retval, data_out,
// ctx_out, every map and ring buffer after each. Frames come from the
// object's driver (maps set up as its selftest does, frames aimed at its
// paths) or the random generator, contexts from kerneldiff.Ctx. The
// programs run compiled where the compiler runs (engine.EngineAuto).
func TestThirdParty(t *testing.T) { thirdParty(t, engine.EngineAuto, "third-party:") }

// TestThirdPartyInterp is TestThirdParty in the interpreter.
func TestThirdPartyInterp(t *testing.T) {
	thirdParty(t, engine.EngineInterp, "third-party (interpreter):")
}

func thirdParty(t *testing.T, e engine.Engine, label string) {
	kerneltest.RequireKernel(t)
	packets := envInt(t, "THIRDPARTY_PACKETS", 400)
	seedBase := envInt(t, "THIRDPARTY_SEED", 0)
	kerneldiff.PinCPU0(t)
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	_, quirks, _ := kerneltest.Quirks(t) // the engine follows the kernel it is compared with
	ns := newKernelNS(t)
	socks := openSockets(t, ns)
	var objs []string
	for _, dir := range thirdparty.Dirs {
		o, err := thirdparty.Objects(dir)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	var nobj, nrefused, npackets, ndiv int
	refusedBy := map[string]int{}
	for _, obj := range objs {
		base := filepath.Base(obj)
		full, tcOnly, err := thirdparty.Specs(obj)
		if err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		if prep := drivers[base].prepare; prep != nil {
			if err := errors.Join(prep(full), prep(tcOnly)); err != nil {
				t.Errorf("%s: prepare: %v", base, err)
				continue
			}
		}
		kern, err := kernel.NewTestRunner(tcOnly)
		if err != nil {
			t.Logf("%s: not counted, the kernel refuses it: %v", base, err)
			continue
		}
		nobj++
		coll, err := engine.NewCollection(full, engine.Options{NumCPU: ncpu, Strict: true, Quirks: quirks, Engine: e, Sockets: socks.Table})
		if err != nil {
			kern.Close()
			nrefused++
			r, ok := thirdparty.Refusals[base]
			if !ok || !strings.Contains(err.Error(), r.Match) {
				t.Errorf("%s: the kernel loads it, the engine refuses it (undocumented): %v", base, err)
				continue
			}
			if r.Kind != thirdparty.RefusedKernelInternal || !errors.Is(err, syscall.ENOTSUP) || !strings.Contains(err.Error(), "CO-RE relocation") {
				t.Errorf("%s: refused (%s), but only a CO-RE relocation on a kernel-internal type (ENOTSUP) may be: %v", base, r.Kind, err)
				continue
			}
			refusedBy[r.Kind]++
			t.Logf("%s: refused, %s: %v", base, r.Kind, err)
			continue
		}
		if r, ok := thirdparty.Refusals[base]; ok {
			t.Logf("%s: documented as refused (%s) but loads now: shrink thirdparty.Refusals", base, r.Kind)
		}
		n, d := runObject(t, base, full, ns, socks, kern, coll, packets, seedBase)
		npackets += n
		ndiv += d
		coll.Close()
		kern.Close()
	}
	var kinds []string
	for k, n := range refusedBy {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	slices.Sort(kinds)
	line := fmt.Sprintf("%s %d objects, %d refused, %d packets, %d divergences", label, nobj, nrefused, npackets, ndiv)
	fmt.Println(line)
	t.Log(line)
	t.Logf("%s refusals: %s", strings.TrimSuffix(label, ":"), strings.Join(kinds, ", "))
	if nobj < 40 {
		t.Errorf("only %d objects loaded by the kernel; the corpus promises at least 40", nobj)
	}
	if packets >= 400 && npackets < 50000 {
		t.Errorf("only %d packets compared; want at least 50000", npackets)
	}
}

// newKernelNS is where the kernel's runs happen: a new namespace (lo up,
// no other device, no routes, forwarding off), the namespace the engine
// models; in the host's, bpf_fib_lookup and bpf_clone_redirect would see
// its devices. Its thread runs on CPU 0 like the test's.
func newKernelNS(t *testing.T) *kernel.NetNS {
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	kerneldiff.PinNSCPU0(t, ns)
	return ns
}

// openSockets opens the sockets of kerneldiff.NSSockets in the kernel's
// namespace (listeners, established connections and UDP sockets on the
// loopback addresses), which the engine's table mirrors: the socket
// lookups of the corpus find them, the sockmap selftests hold them.
func openSockets(t *testing.T, ns *kernel.NetNS) *kerneldiff.NSSockets {
	socks, err := kerneldiff.OpenSockets(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { socks.Close() })
	return socks
}

// runObject compares every tc program of one object on its packets and
// returns how many packets it ran and whether it diverged (a program stops
// at its first divergence: the two sides' states differ from then on).
func runObject(t *testing.T, base string, spec *ebpf.CollectionSpec, ns *kernel.NetNS, socks *kerneldiff.NSSockets, kern *kernel.TestRunner, coll *engine.Collection, packets, seedBase int) (int, int) {
	s, err := kerneldiff.NewSide(kern, coll)
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}
	s.NS, s.Sockets = ns, socks
	defer s.Close()
	drv := drivers[base]
	if drv.setup != nil {
		if err := drv.setup(s); err != nil {
			t.Fatalf("%s: setup: %v", base, err)
		}
	}
	n := packets * max(drv.weight, 1)
	var npackets, ndiv int
	for _, prog := range kern.Programs() {
		if coll.Syscalls[prog] != nil {
			continue // run by the driver's setup, not on packets
		}
		if coll.Programs[prog] == nil {
			t.Errorf("%s: the engine has no program %q", base, prog)
			continue
		}
		id := base + "/" + prog
		if why := thirdparty.Unmatchable[id]; why != "" {
			t.Logf("%s: loaded, not compared: %s", id, why)
			continue
		}
		seed := seedOf(id, seedBase)
		g := pktgen.New(seed)
		rng := rand.New(rand.NewPCG(uint64(seed), 9))
		verdicts := map[uint32]int{}
		s.Rewritten = 0
		took := 0
		for i := range n {
			var frame []byte
			if drv.next != nil {
				frame = drv.next(s, prog, rng)
			}
			if frame == nil {
				frame = g.Next()
			}
			ctx := kerneldiff.Ctx(rng, len(frame))
			npackets++
			d, err := s.Compare(prog, frame, ctx, verdicts)
			if err != nil {
				t.Fatalf("%s %s packet %d: %v", base, prog, i, err)
			}
			if drv.took != nil && d == "" {
				ok, err := drv.took(s, spec, prog)
				if err != nil {
					t.Fatalf("%s %s packet %d: %v", base, prog, i, err)
				}
				if ok {
					took++
				}
			}
			if d != "" {
				ndiv++
				t.Errorf("divergence: %s program %s, packet %d, seed %d: %s\nframe % x\nctx_in % x", base, prog, i, seed, d, frame, ctx)
				break
			}
		}
		t.Logf("%s %s: verdicts %v, %d packets rewritten, %s", base, prog, verdicts, s.Rewritten, s.Summary())
		if drv.rewrites != nil && drv.rewrites(prog) && s.Rewritten == 0 {
			t.Errorf("%s %s: no packet took a rewriting path: the driver misses it", base, prog)
		}
		if drv.took != nil {
			t.Logf("%s %s: %d packets took the driven path", base, prog, took)
			if took == 0 {
				t.Errorf("%s %s: no packet took the driven path: the driver misses it", base, prog)
			}
		}
	}
	return npackets, ndiv
}

// TestThirdParty_AcceptedOfRejected compares, packet by packet, the
// programs of the rejected selftests that the kernel does load on their
// own (most of verifier_direct_packet_access: pointer arithmetic and
// bounds checks at the edges of the packet).
func TestThirdParty_AcceptedOfRejected(t *testing.T) {
	kerneltest.RequireKernel(t)
	packets := envInt(t, "THIRDPARTY_PACKETS", 400) / 2
	kerneldiff.PinCPU0(t)
	_, quirks, _ := kerneltest.Quirks(t)
	ns := newKernelNS(t)
	objs, err := thirdparty.Objects(thirdparty.RejectedDir)
	if err != nil {
		t.Fatal(err)
	}
	var nprogs, npackets, ndiv int
	for _, obj := range objs {
		_, tcOnly, err := thirdparty.Specs(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range sortedKeys(tcOnly.Programs) {
			one := tcOnly.Copy()
			one.Programs = map[string]*ebpf.ProgramSpec{name: one.Programs[name]}
			kern, err := kernel.NewTestRunner(one)
			if err != nil {
				continue // refused on purpose
			}
			coll, err := engine.NewCollection(one, engine.Options{NumCPU: 1, Strict: true, Quirks: quirks})
			if err != nil {
				kern.Close()
				t.Errorf("%s/%s: the kernel loads it, the engine refuses it: %v", filepath.Base(obj), name, err)
				continue
			}
			if why := thirdparty.Unmatchable[filepath.Base(obj)+"/"+name]; why == "" {
				nprogs++
			}
			n, d := runObject(t, filepath.Base(obj), one, ns, nil, kern, coll, packets, 0)
			npackets, ndiv = npackets+n, ndiv+d
			coll.Close()
			kern.Close()
		}
	}
	t.Logf("accepted programs of the rejected selftests: %d programs, %d packets, %d divergences", nprogs, npackets, ndiv)
	if nprogs < 15 {
		t.Errorf("%d programs compared; the rejected selftests hold at least 15 the kernel loads", nprogs)
	}
}
