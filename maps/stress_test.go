package maps

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// freeSlots walks the free list; a cycle (a double free) fails the test.
func freeSlots(t *testing.T, ix *index) int {
	t.Helper()
	n := 0
	for s1 := uint32(ix.freeHead.Load()); s1 != 0; s1 = uint32(atomic.LoadUint64(ix.freeW(int32(s1 - 1)))) {
		if n++; n > ix.n {
			t.Fatal("free list has a cycle")
		}
	}
	return n
}

// checkQuiescent checks a hash map no one is using: every slot is either
// free or holds a live element, and iteration, Lookup and Len agree.
func checkQuiescent(t *testing.T, h *Hash, keys int) {
	t.Helper()
	if free := freeSlots(t, h.ix); free+h.Len() != h.ix.n {
		t.Fatalf("%d free + %d live slots != %d: slots leaked or freed twice", free, h.Len(), h.ix.n)
	}
	model := map[string][]byte{}
	out := make([]byte, h.userValueSize())
	for k := 0; k < keys; k++ {
		if err := h.Lookup(u64b(uint64(k)), out); err == nil {
			model[string(u64b(uint64(k)))] = nil
		}
	}
	if len(model) != h.Len() {
		t.Fatalf("%d keys found, Len %d", len(model), h.Len())
	}
	checkIteration(t, h, model)
}

// TestHash_ConcurrentStress has "programs" update, delete and look up
// while a userspace reader iterates and copies values. Every value names
// its key, so a copy from a reused slot would be caught.
func TestHash_ConcurrentStress(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash, ebpf.PerCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			const n, keys = 128, 300
			h := newHashT(t, typ, 8, 16, n)
			iters := 20000
			if testing.Short() {
				iters = 2000
			}
			var writers, reader sync.WaitGroup
			var stop atomic.Bool
			for w := 0; w < 4; w++ {
				writers.Add(1)
				go func(w int) {
					defer writers.Done()
					stressHashWriter(t, h, w, iters, keys)
				}(w)
			}
			reader.Add(1)
			go func() {
				defer reader.Done()
				stressHashReader(t, h, &stop, keys)
			}()
			writers.Wait()
			stop.Store(true)
			reader.Wait()
			checkQuiescent(t, h, keys)
		})
	}
}

// stressHashWriter plays a program: random updates (the value names its
// key), deletes and lookups.
func stressHashWriter(t *testing.T, h *Hash, w, iters, keys int) {
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	v := make([]byte, 16)
	cpu := w % h.NumCPU()
	for i := 0; i < iters; i++ {
		k := uint64(rng.IntN(keys))
		key := u64b(k)
		switch rng.IntN(4) {
		case 0, 1:
			binary.NativeEndian.PutUint64(v, k)
			binary.NativeEndian.PutUint64(v[8:], uint64(i))
			switch ret := h.UpdateElem(key, v, uint64(rng.IntN(3)), cpu); ret {
			case 0, -linuxerr.EEXIST, -linuxerr.ENOENT, -linuxerr.E2BIG:
			default:
				t.Errorf("UpdateElem: %d", ret)
				return
			}
		case 2:
			h.DeleteElem(key, cpu)
		case 3:
			if slot, ok := h.LookupSlot(key, cpu); ok && (slot < 0 || slot >= h.ix.n) {
				t.Errorf("LookupSlot returned slot %d", slot)
				return
			}
		}
	}
}

// stressHashReader plays userspace: iterate, copy values, sometimes take
// elements out; every copied value must name its own key.
func stressHashReader(t *testing.T, h *Hash, stop *atomic.Bool, keys int) {
	out := make([]byte, h.userValueSize())
	next := make([]byte, 8)
	for !stop.Load() {
		var key []byte
		for steps := 0; steps < 4*keys; steps++ {
			if err := h.NextKey(key, next); err != nil {
				break
			}
			key = append(key[:0], next...)
			var err error
			if steps%16 == 0 {
				err = h.LookupAndDelete(key, out)
			} else {
				err = h.Lookup(key, out)
			}
			if err != nil {
				continue // deleted meanwhile
			}
			for c := 0; c < h.NumCPU(); c++ {
				got := binary.NativeEndian.Uint64(out[c*16:])
				if h.percpu && got == 0 {
					continue // never written on this CPU
				}
				if got != binary.NativeEndian.Uint64(key) {
					t.Errorf("value of key %x names key %x", key, got)
					return
				}
			}
		}
	}
}

// TestHash_ConcurrentSameKey races inserts and deletes of the same keys:
// exactly one insert and one delete of each key may succeed per round.
func TestHash_ConcurrentSameKey(t *testing.T) {
	const workers, keys = 4, 32
	h := newHashT(t, ebpf.Hash, 8, 8, keys)
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	for r := 0; r < rounds; r++ {
		var inserted, deleted [keys]atomic.Int32
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < keys; k++ {
					if h.UpdateElem(u64b(uint64(k)), u64b(uint64(k)), UpdateNoExist, 0) == 0 {
						inserted[k].Add(1)
					}
				}
			}()
		}
		wg.Wait()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := keys - 1; k >= 0; k-- {
					if h.DeleteElem(u64b(uint64(k)), 0) == 0 {
						deleted[k].Add(1)
					}
				}
			}()
		}
		wg.Wait()
		for k := 0; k < keys; k++ {
			if inserted[k].Load() != 1 || deleted[k].Load() != 1 {
				t.Fatalf("round %d key %d: %d inserts and %d deletes succeeded, want 1 each", r, k, inserted[k].Load(), deleted[k].Load())
			}
		}
		checkQuiescent(t, h, keys)
	}
}

// TestArray_ConcurrentStress exercises the array's word-atomic copies
// under the race detector while programs write through UpdateElem.
func TestArray_ConcurrentStress(t *testing.T) {
	a := mustNew(t, &ebpf.MapSpec{Name: "a", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 12, MaxEntries: 4}).(*Array)
	var wg sync.WaitGroup
	var stop atomic.Bool
	for cpu := 0; cpu < a.NumCPU(); cpu++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := make([]byte, 12)
			for i := 0; i < 5000; i++ {
				binary.NativeEndian.PutUint32(v, uint32(i))
				a.UpdateElem(u32b(uint32(i%4)), v, UpdateAny, cpu)
			}
		}()
	}
	out := make([]byte, 2*16)
	go func() { wg.Wait(); stop.Store(true) }()
	for !stop.Load() {
		for k := uint32(0); k < 4; k++ {
			if err := a.Lookup(u32b(k), out); err != nil {
				t.Fatal(err)
			}
		}
	}
}
