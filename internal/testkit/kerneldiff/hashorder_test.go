package kerneldiff_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/maps"
)

// TestKernel_HashOrder: hash maps made with BPF_F_ZERO_SEED (plain with
// 4- and 6-byte keys, percpu, LRU) go through the same random inserts,
// updates and deletes in the kernel and in the engine; after each round
// their keys must come out in the same order from Go (get_next_key) and
// from bpf_for_each_map_elem in a program, walking all of them or
// stopping early. Updates matter: the kernel relinks an updated element
// at its bucket's head, except in a percpu map.
func TestKernel_HashOrder(t *testing.T) {
	kerneltest.RequireKernel(t)
	pinCPU0(t)
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	s := load(t, filepath.Join("testdata", "hash_order.o"), ncpu)
	type hmap struct {
		name     string
		keys     func(r *rand.Rand) []byte
		vsize    int
		maxLive  int
		progName string
	}
	u32Key := func(n int) func(r *rand.Rand) []byte {
		return func(r *rand.Rand) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(r.IntN(n))) }
	}
	key6 := func(r *rand.Rand) []byte {
		k := make([]byte, 6)
		binary.LittleEndian.PutUint32(k, uint32(r.IntN(40))*0x9e3779b1)
		k[4], k[5] = byte(r.IntN(2)), 0xaa
		return k
	}
	hmaps := []hmap{
		{"h4", u32Key(96), 8, 48, "walk_h4"},
		{"h6", key6, 4, 20, "walk_h6"},
		{"pc4", u32Key(64), 8, 24, "walk_pc4"},
		{"lru4", u32Key(96), 8, 16, "walk_lru4"},
	}
	r := rand.New(rand.NewPCG(9, 9))
	live := map[string]map[string]bool{}
	var ops, walks int
	for round := range 25 {
		for _, m := range hmaps {
			if live[m.name] == nil {
				live[m.name] = map[string]bool{}
			}
			em := s.coll.Maps[m.name]
			for range 12 {
				k := m.keys(r)
				ops++
				if live[m.name][string(k)] && r.IntN(3) == 0 {
					delete(live[m.name], string(k))
					if kerr, eerr := s.kern.DeleteMap(m.name, k), em.Delete(k); kerr != nil || eerr != nil {
						t.Fatalf("%s: delete %x: kernel %v, engine %v", m.name, k, kerr, eerr)
					}
					continue
				}
				if !live[m.name][string(k)] && len(live[m.name]) >= m.maxLive {
					continue
				}
				live[m.name][string(k)] = true
				v := make([]byte, m.vsize)
				v[0] = byte(round)
				ev := v
				if m.name == "pc4" {
					ev = bytes.Repeat(v, ncpu) // every CPU's value, as SetMap stores
				}
				if kerr, eerr := s.kern.SetMap(m.name, k, v), em.Update(k, ev, maps.UpdateAny); kerr != nil || eerr != nil {
					t.Fatalf("%s: update %x: kernel %v, engine %v", m.name, k, kerr, eerr)
				}
			}
			kkeys, err := s.kern.MapKeys(m.name)
			if err != nil {
				t.Fatal(err)
			}
			if ekeys := engineKeys(t, em); fmt.Sprintf("%x", kkeys) != fmt.Sprintf("%x", ekeys) {
				t.Fatalf("round %d: %s: get_next_key order:\nkernel %x\nengine %x", round, m.name, kkeys, ekeys)
			}
			for _, stop := range []uint32{1, 2, 5, 1000} {
				walks++
				if d, err := s.compare(m.progName, probeFrame(60), cbCtx(0, stop), map[uint32]int{}); err != nil || d != "" {
					t.Fatalf("round %d: %s stopping after %d: %s %v", round, m.progName, stop, d, err)
				}
			}
		}
	}
	t.Logf("hash order: %d map operations, %d for_each walks and 100 key listings, 0 divergences", ops, walks)
}

// engineKeys lists m's keys with NextKey from the start.
func engineKeys(t *testing.T, m maps.Map) [][]byte {
	t.Helper()
	var out [][]byte
	var prev []byte
	for {
		next := make([]byte, m.Info().KeySize)
		if err := m.NextKey(prev, next); err != nil {
			return out
		}
		out = append(out, next)
		prev = bytes.Clone(next)
	}
}
