package kerneldiff_test

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneldiff"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/internal/vm/amd64"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

const corpusDir = "../../../testdata/progs"

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

// seedBases are the seed bases the random helper differentials
// (TestKernelDifferential_Helpers, TestKernel_HelperProbes) run with: the
// one KERNELDIFF_SEED names; else 0, so that a failure once seen stays,
// and under TCX_REQUIRE_KERNEL (CI) also the UTC day's number, so that CI
// covers new ground every day, as skb's TestPacket_Helpers_KernelRandom
// does. A divergence prints its base for KERNELDIFF_SEED to replay.
func seedBases(t testing.TB) []int {
	if os.Getenv("KERNELDIFF_SEED") != "" {
		return []int{envInt(t, "KERNELDIFF_SEED", 0)}
	}
	if os.Getenv("TCX_REQUIRE_KERNEL") == "1" {
		return []int{0, int(time.Now().UTC().Unix() / 86400)}
	}
	return []int{0}
}

// seedOf derives a program's frame seed from its name.
func seedOf(prog string, base int) int64 {
	h := fnv.New32a()
	h.Write([]byte(prog))
	return int64(h.Sum32()) + int64(base)
}

// ctxFor is kerneldiff.Ctx.
func ctxFor(rng *rand.Rand, frameLen int) []byte { return kerneldiff.Ctx(rng, frameLen) }

func pinCPU0(t *testing.T) { kerneldiff.PinCPU0(t) }

// side is a kerneldiff.Side with the short names these tests use.
type side struct {
	*kerneldiff.Side
	kern *kernel.TestRunner
	coll *engine.Collection
	x    *engine.Executor
}

func load(t *testing.T, obj string, ncpu int) *side { return loadOn(t, obj, ncpu, engine.EngineInterp) }

func loadOn(t *testing.T, obj string, ncpu int, e engine.Engine) *side {
	spec, err := engine.LoadCollectionSpec(obj)
	if err != nil {
		t.Fatal(err)
	}
	return loadSpecsOn(t, spec, spec, ncpu, e)
}

// runningQuirks are the skb helper quirks of the running kernel, so that
// the engine follows the kernel it is compared with (skb.QuirksFor).
func runningQuirks(t *testing.T) skb.Quirks {
	rel, q, known := kerneltest.Quirks(t)
	if guessed := q &^ known; guessed != 0 {
		t.Logf("kernel %s: quirks %#x not on record for it, assumed", rel, guessed)
	}
	return q
}

// loadSpecs loads kspec into the kernel and espec into the engine's
// interpreter.
func loadSpecs(t *testing.T, kspec, espec *ebpf.CollectionSpec, ncpu int) *side {
	return loadSpecsOn(t, kspec, espec, ncpu, engine.EngineInterp)
}

func loadSpecsOn(t *testing.T, kspec, espec *ebpf.CollectionSpec, ncpu int, e engine.Engine) *side {
	kern, err := kernel.NewTestRunner(kspec)
	if err != nil {
		t.Fatalf("kernel: %+v", err)
	}
	t.Cleanup(func() { kern.Close() })
	coll, err := engine.NewCollection(espec, engine.Options{NumCPU: ncpu, Quirks: runningQuirks(t), Engine: e})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	t.Cleanup(func() { coll.Close() })
	s, err := kerneldiff.NewSide(kern, coll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &side{Side: s, kern: kern, coll: coll, x: s.X}
}

func (s *side) compare(prog string, frame, ctx []byte, verdicts map[uint32]int) (string, error) {
	return s.Compare(prog, frame, ctx, verdicts)
}

// TestKernelDifferential runs every corpus program on KERNELDIFF_PACKETS
// (default 1000) generated frames, with generated contexts, through the
// kernel's BPF_PROG_TEST_RUN and the engine's TestRun, and compares the
// return value, data_out, ctx_out, every map's full contents and ring
// buffer records after every packet. A program stops at its first
// divergence (their state no longer matches). The corpus has no time,
// random or CPU-id dependent output.
func TestKernelDifferential(t *testing.T) {
	kernelDifferential(t, engine.EngineInterp, "kernel differential:")
}

// TestKernelDifferentialJIT is TestKernelDifferential with the programs
// compiled to machine code; one the compiler declined is a failure.
func TestKernelDifferentialJIT(t *testing.T) {
	if !amd64.Supported {
		t.Skipf("no compiler for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	kernelDifferential(t, engine.EngineJIT, "kernel differential (jit):")
}

func kernelDifferential(t *testing.T, e engine.Engine, label string) {
	kerneltest.RequireKernel(t)
	packets := envInt(t, "KERNELDIFF_PACKETS", 1000)
	seedBase := envInt(t, "KERNELDIFF_SEED", 0)
	pinCPU0(t)
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := filepath.Glob(filepath.Join(corpusDir, "*.o"))
	if err != nil || len(objs) == 0 {
		t.Fatalf("no corpus in %s: %v", corpusDir, err)
	}
	// The kernel runs the programs in a new namespace, the one the
	// engine models (lo up, nothing else): a program that looks devices
	// or routes up (dp_fib_fwd) then meets the same world on both sides.
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	kerneldiff.PinNSCPU0(t, ns)
	var nprogs, npackets, ndiv int
	for _, obj := range objs {
		s := loadOn(t, obj, ncpu, e)
		s.NS = ns
		for _, prog := range s.kern.Programs() {
			nprogs++
			if ok, why := s.coll.Programs[prog].Compiled(); e == engine.EngineJIT && !ok {
				t.Errorf("%s: not compiled: %s", prog, why)
			}
			seed := seedOf(prog, seedBase)
			g := pktgen.New(seed)
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
			verdicts := map[uint32]int{}
			for i := range packets {
				frame := g.Next()
				ctx := ctxFor(rng, len(frame))
				npackets++
				d, err := s.compare(prog, frame, ctx, verdicts)
				if err != nil {
					t.Fatalf("%s packet %d: %v", prog, i, err)
				}
				if d == "" {
					continue
				}
				ndiv++
				t.Errorf("divergence: program %s (%s), packet %d, seed %d: %s\nframe % x\nctx_in % x",
					prog, filepath.Base(obj), i, seed, d, frame, ctx)
				break
			}
			t.Logf("%s: verdicts %v, %s", prog, verdicts, s.Summary())
		}
	}
	line := fmt.Sprintf("%s %d programs, %d packets, %d divergences", label, nprogs, npackets, ndiv)
	fmt.Println(line)
	t.Log(line)
	if nprogs < 20 || npackets < 20*packets {
		t.Errorf("%d programs and %d packets; want at least 20 programs", nprogs, npackets)
	}
	if strings.Contains(os.Getenv("KERNELDIFF_FAIL_FAST"), "1") && ndiv > 0 {
		t.FailNow()
	}
}

// TestSide_Compare_DetectsDivergence shows that the comparison can fail:
// an engine collection with a different .rodata constant must diverge in
// the output packet, and an engine that ran one packet more must diverge
// in its maps.
func TestSide_Compare_DetectsDivergence(t *testing.T) {
	kerneltest.RequireKernel(t)
	pinCPU0(t)
	spec, err := engine.LoadCollectionSpec(filepath.Join(corpusDir, "mpls_push.o"))
	if err != nil {
		t.Fatal(err)
	}
	changed := spec.Copy()
	if err := changed.Variables["label"].Set(uint32(16005)); err != nil {
		t.Fatal(err)
	}
	s := loadSpecs(t, spec, changed, 2)
	g := pktgen.New(5)
	found := ""
	for i := 0; i < 200 && found == ""; i++ {
		if found, err = s.compare("mpls_push", g.Next(), nil, map[uint32]int{}); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(found, "data_out") {
		t.Errorf("a different MPLS label went unnoticed (first difference %q)", found)
	}
	// The same change on both sides: equal again (the engine applies
	// VariableSpec values as cilium/ebpf's loader does).
	s = loadSpecs(t, changed, changed, 2)
	g = pktgen.New(5)
	for i := range 200 {
		if d, err := s.compare("mpls_push", g.Next(), nil, map[uint32]int{}); err != nil || d != "" {
			t.Fatalf("packet %d with label 16005 on both sides: %q, %v", i, d, err)
		}
	}

	s = load(t, filepath.Join(corpusDir, "config_filter.o"), 2)
	g = pktgen.New(6)
	prog := s.coll.Programs["config_filter"]
	for range 20 { // engine only: its .bss counters move ahead
		if _, _, _, err := s.x.TestRun(prog, g.Next(), nil); err != nil {
			t.Fatal(err)
		}
	}
	found, err = s.compare("config_filter", g.Next(), nil, map[uint32]int{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(found, "map ") {
		t.Errorf("an engine that ran 20 packets more went unnoticed (first difference %q)", found)
	}
}
