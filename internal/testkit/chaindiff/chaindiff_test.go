package chaindiff

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
)

// The differential runs at least this many chains (a hook's list of two
// or more programs) and frames.
const (
	minChains = 200
	minFrames = 20000
	// framesPerConfig frames go through each configuration, in batches of
	// BatchSlots.
	framesPerConfig = 2 * BatchSlots
	numVariants     = 48
	// settle is how long the kernel side waits for a frame the model
	// did not deliver (a quarter of it once every expected one came).
	settle = 100 * time.Millisecond
)

// seed is fixed so a failure replays; TCX_CHAINDIFF_SEED picks another.
func seed(t *testing.T) uint64 {
	s := uint64(11)
	if v := os.Getenv("TCX_CHAINDIFF_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TCX_CHAINDIFF_SEED: %v", err)
		}
		s = n
	}
	t.Logf("seed %d (TCX_CHAINDIFF_SEED replays it)", s)
	return s
}

// TestChainStateDifferential: random chains of generated programs on the
// hooks of veth pairs in one and in two namespaces, with redirects (to
// egress, to ingress, bpf_redirect_peer, a pending target left by an
// earlier program), through the kernel's tcx and the userspace runtime:
// every value the programs recorded, the helpers' results, the verdicts,
// the fate of each frame and the delivered bytes must be equal.
func TestChainStateDifferential(t *testing.T) {
	first := kerneltest.NewBackend(t)
	used := false
	newBackend := func() (*kernel.Backend, error) {
		if !used {
			used = true
			return first, nil
		}
		ns, err := kernel.NewNetNS()
		if err != nil {
			return nil, err
		}
		b, err := kernel.New(ns, kernel.Options{})
		if err != nil {
			ns.Close()
			return nil, err
		}
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Error(err)
			}
			if err := ns.Close(); err != nil {
				t.Error(err)
			}
		})
		return b, nil
	}
	rng := rand.New(rand.NewPCG(seed(t), 0))
	topos := Topologies()
	vs := Generate(rng, numVariants, Targets)
	k, err := NewKernel(topos, vs, newBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	m, err := NewModel(topos, vs)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	var cmp Comparison
	var modelTime, kernelTime time.Duration
	var stats Stats
	chains, frames, divergences, seq := 0, 0, 0, uint32(0)
	for cfgN := 0; chains < minChains || frames < minFrames; cfgN++ {
		ti := cfgN % len(topos)
		topo := topos[ti]
		cfg := NewConfig(rng, ti, topo, vs)
		if err := k.Apply(topo, cfg, true); err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(topo, cfg, true); err != nil {
			t.Fatal(err)
		}
		if err := k.ApplyClassic(topo, cfg, true); err != nil {
			t.Fatal(err)
		}
		if err := m.ApplyClassic(topo, cfg, true); err != nil {
			t.Fatal(err)
		}
		for batch := 0; batch < framesPerConfig/BatchSlots; batch++ {
			fs := make([]Frame, BatchSlots)
			model := make([]Observation, BatchSlots)
			tm := time.Now()
			for i := range fs {
				seq++
				fs[i] = NewFrame(rng, topo, seq, i)
				o, err := m.Run(topo, cfg, fs[i], i)
				if err != nil {
					t.Fatal(err)
				}
				model[i] = o
			}
			t0 := time.Now()
			modelTime += t0.Sub(tm)
			kern, err := k.RunBatch(topo, cfg, fs, model, settle, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			kernelTime += t1.Sub(t0)
			for i := range fs {
				stats.add(&kern[i])
				d := cmp.Compare(&kern[i], &model[i], t0, t1)
				if len(d) == 0 {
					continue
				}
				divergences++
				if divergences <= 10 {
					t.Errorf("config %d (%s, chains %v, classic %v), frame %d from %s (% x):", cfgN, topo.Name, cfg.Chains, cfg.Classic, fs[i].Seq, topo.Devs[fs[i].Dev].Name, fs[i].Bytes)
					for _, s := range d {
						t.Errorf("  %s", s)
					}
					for j, r := range model[i].Records {
						t.Errorf("  model run %d: v%d on ifindex %d: len %d, protocol %#04x, tag %d/%#x/%#x, ttl %d, results %#x %#x %#x, verdict %d",
							j, r[wVariant], r[wIfindex], r[wLen], htons(uint16(r[wProtocol])), r[wVlanPresent], r[wVlanProto], r[wVlanTCI], r[wTTL], r[wResult], r[wResult+1], r[wResult+2], int32(r[wVerdict]))
					}

				}
			}
			frames += len(fs)
		}
		chains += len(cfg.Chains)
		if err := k.Apply(topo, cfg, false); err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(topo, cfg, false); err != nil {
			t.Fatal(err)
		}
		if err := k.ApplyClassic(topo, cfg, false); err != nil {
			t.Fatal(err)
		}
		if err := m.ApplyClassic(topo, cfg, false); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("kernel side: %s", &stats)
	t.Logf("time: model %v, kernel %v", modelTime, kernelTime)
	t.Logf("frames received by the kernel side that name no frame of their batch, by ethertype: %v", k.Unmatched)
	t.Logf("%d frames delivered by the model with a protocol the kernel side does not listen for", cmp.Unheard)
	t.Logf("%d records with a receive timestamp taken by the kernel's stack where the model has 0", cmp.StackStamps)
	t.Logf("chain state differential: %d chains, %d frames, %d divergences", chains, frames, divergences)
	if divergences > 0 {
		t.Fail()
	}
}
