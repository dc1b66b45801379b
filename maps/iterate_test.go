package maps

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
)

// walkKeys walks h with a Cursor, as bpf_for_each_map_elem does, and
// returns the keys in visiting order.
func walkKeys(h *Hash, prev, out []byte) []uint64 {
	var keys []uint64
	var c Cursor
	for {
		if _, ok := h.NextSlot(&c, prev, out); !ok {
			return keys
		}
		keys = append(keys, binary.NativeEndian.Uint64(out))
		copy(prev, out)
	}
}

// TestHash_WalkUnderChurn: while writers insert, update and delete other
// keys, every walk visits each key that stays in the map for the whole
// walk exactly once and no key twice, in the kernel's order (zero seed)
// and in the engine's (random seed).
func TestHash_WalkUnderChurn(t *testing.T) {
	for _, flags := range []uint32{0, FlagZeroSeed} {
		for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash, ebpf.PerCPUHash} {
			t.Run(typ.String()+map[uint32]string{0: "", FlagZeroSeed: "/zero-seed"}[flags], func(t *testing.T) {
				const stable, churn = 100, 100
				h := mustNew(t, &ebpf.MapSpec{Name: "h", Type: typ, KeySize: 8, ValueSize: 8, MaxEntries: 256, Flags: flags}).(*Hash)
				val := make([]byte, 8)
				for k := range uint64(stable) {
					if r := h.UpdateElem(u64b(k), val, UpdateAny, 0); r != 0 {
						t.Fatal(r)
					}
				}
				var stop atomic.Bool
				var wg sync.WaitGroup
				for w := range 3 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := rand.New(rand.NewPCG(uint64(w), 1))
						for !stop.Load() {
							k := u64b(1000 + uint64(r.IntN(churn)))
							if r.IntN(3) == 0 {
								h.DeleteElem(k, 0)
							} else {
								h.UpdateElem(k, val, UpdateAny, w%2)
							}
						}
					}()
				}
				prev, out := make([]byte, 8), make([]byte, 8)
				walks := 300
				if testing.Short() {
					walks = 30
				}
				for range walks {
					seen := map[uint64]bool{}
					for _, k := range walkKeys(h, prev, out) {
						if seen[k] {
							stop.Store(true)
							wg.Wait()
							t.Fatalf("key %d visited twice in one walk", k)
						}
						seen[k] = true
					}
					for k := range uint64(stable) {
						if !seen[k] {
							stop.Store(true)
							wg.Wait()
							t.Fatalf("stable key %d not visited", k)
						}
					}
				}
				stop.Store(true)
				wg.Wait()
			})
		}
	}
}

// TestHash_ZeroSeedOrder: with BPF_F_ZERO_SEED a bucket is the kernel's
// (jhash of the key with seed 0, masked by the bucket count) and holds the
// newest element first; an update relinks its key at the head, except in
// a percpu map. The kernel comparison is kerneldiff's TestKernel_HashOrder.
func TestHash_ZeroSeedOrder(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.PerCPUHash} {
		h := mustNew(t, &ebpf.MapSpec{Name: "h", Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: FlagZeroSeed}).(*Hash)
		val := make([]byte, 8)
		// Keys of one bucket, in insertion order.
		var same [][]byte
		for k := uint32(0); len(same) < 3; k++ {
			if htabHash(u32b(k), 0)&3 == htabHash(u32b(0), 0)&3 {
				same = append(same, u32b(k))
			}
		}
		for _, k := range same {
			h.UpdateElem(k, val, UpdateAny, 0)
		}
		h.UpdateElem(same[0], val, UpdateExist, 0)
		out := make([]byte, 4)
		var got []uint32
		var c Cursor
		for {
			if _, ok := h.NextSlot(&c, nil, out); !ok {
				break
			}
			got = append(got, binary.LittleEndian.Uint32(out))
		}
		k := func(i int) uint32 { return binary.LittleEndian.Uint32(same[i]) }
		want := []uint32{k(0), k(2), k(1)} // the update made same[0] the newest
		if typ == ebpf.PerCPUHash {
			want = []uint32{k(2), k(1), k(0)} // updated in place
		}
		if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("%v: walk %v, want %v", typ, got, want)
		}
	}
}
