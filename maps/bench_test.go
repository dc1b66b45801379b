package maps

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
)

// Benchmarks report the packet-path operations next to plain Go baselines
// measured in the same run (a Go map for single-threaded work, a map behind
// a sync.RWMutex for the parallel case): the machine is shared and noisy,
// so only ratios within one run mean something.

const benchKeys = 1 << 14

func benchHash(b *testing.B, typ ebpf.MapType) *Hash {
	h := newHashT(b, typ, 8, 16, benchKeys)
	val := make([]byte, 16)
	for i := uint64(0); i < benchKeys; i++ {
		h.UpdateElem(u64b(i), val, UpdateAny, 0)
	}
	return h
}

func benchKeySet() [][]byte {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = u64b(uint64(i*7919) % benchKeys)
	}
	return keys
}

func BenchmarkHash_LookupSlot(b *testing.B) {
	keys := benchKeySet()
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash} {
		b.Run(typ.String(), func(b *testing.B) {
			h := benchHash(b, typ)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, ok := h.LookupSlot(keys[i%benchKeys], 0); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
	b.Run("Hash/zero-seed", func(b *testing.B) { // the kernel's jhash instead of keyHash
		h := mustNew(b, &ebpf.MapSpec{Name: "z", Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: benchKeys, Flags: FlagZeroSeed}).(*Hash)
		val := make([]byte, 16)
		for i := uint64(0); i < benchKeys; i++ {
			h.UpdateElem(u64b(i), val, UpdateAny, 0)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, ok := h.LookupSlot(keys[i%benchKeys], 0); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("baseline/gomap", func(b *testing.B) {
		m := make(map[uint64][16]byte, benchKeys)
		for i := uint64(0); i < benchKeys; i++ {
			m[i] = [16]byte{}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, ok := m[binary.NativeEndian.Uint64(keys[i%benchKeys])]; !ok {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkHash_Walk walks 16384 elements with a Cursor (what
// bpf_for_each_map_elem does), with the engine's order and the kernel's
// (zero seed), per element.
func BenchmarkHash_Walk(b *testing.B) {
	for _, flags := range []uint32{0, FlagZeroSeed} {
		b.Run(map[uint32]string{0: "random-seed", FlagZeroSeed: "zero-seed"}[flags], func(b *testing.B) {
			h := mustNew(b, &ebpf.MapSpec{Name: "w", Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: benchKeys, Flags: flags}).(*Hash)
			val := make([]byte, 16)
			for i := uint64(0); i < benchKeys; i++ {
				h.UpdateElem(u64b(i), val, UpdateAny, 0)
			}
			prev, out := make([]byte, 8), make([]byte, 8)
			b.ReportAllocs()
			b.ResetTimer()
			var c Cursor
			for i := 0; i < b.N; i++ {
				if _, ok := h.NextSlot(&c, prev, out); !ok {
					c = Cursor{}
					continue
				}
				copy(prev, out)
			}
		})
	}
}

func BenchmarkHash_UpdateElem(b *testing.B) {
	keys := benchKeySet()
	val := make([]byte, 16)
	b.Run("Hash/existing", func(b *testing.B) {
		h := benchHash(b, ebpf.Hash)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if h.UpdateElem(keys[i%benchKeys], val, UpdateAny, 0) != 0 {
				b.Fatal("update failed")
			}
		}
	})
	b.Run("Hash/insert+delete", func(b *testing.B) {
		h := newHashT(b, ebpf.Hash, 8, 16, benchKeys)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := keys[i%benchKeys]
			if h.UpdateElem(k, val, UpdateNoExist, 0) != 0 || h.DeleteElem(k, 0) != 0 {
				b.Fatal("insert/delete failed")
			}
		}
	})
	b.Run("LRUHash/insert-evicting", func(b *testing.B) {
		h := benchHash(b, ebpf.LRUHash)
		k := make([]byte, 8)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			binary.NativeEndian.PutUint64(k, uint64(benchKeys+i))
			if h.UpdateElem(k, val, UpdateAny, 0) != 0 {
				b.Fatal("update failed")
			}
		}
	})
	b.Run("baseline/gomap/insert+delete", func(b *testing.B) {
		m := make(map[uint64][16]byte, benchKeys)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := binary.NativeEndian.Uint64(keys[i%benchKeys])
			m[k] = [16]byte(val)
			delete(m, k)
		}
	})
}

func BenchmarkHash_ParallelMixed(b *testing.B) {
	keys := benchKeySet()
	b.Run("Hash", func(b *testing.B) {
		h := benchHash(b, ebpf.Hash)
		b.ReportAllocs()
		b.ResetTimer()
		var start atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			val := make([]byte, 16)
			// Goroutines start far apart so they do not hit the same keys
			// in lockstep.
			for i := int(start.Add(benchKeys / 3)); pb.Next(); i++ {
				k := keys[i%benchKeys]
				if i%10 == 0 {
					h.UpdateElem(k, val, UpdateAny, 0)
				} else {
					h.LookupSlot(k, 0)
				}
			}
		})
	})
	b.Run("baseline/rwmutex-gomap", func(b *testing.B) {
		var mu sync.RWMutex
		m := make(map[uint64][16]byte, benchKeys)
		for i := uint64(0); i < benchKeys; i++ {
			m[i] = [16]byte{}
		}
		b.ReportAllocs()
		b.ResetTimer()
		var start atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for i := int(start.Add(benchKeys / 3)); pb.Next(); i++ {
				k := binary.NativeEndian.Uint64(keys[i%benchKeys])
				if i%10 == 0 {
					mu.Lock()
					m[k] = [16]byte{1}
					mu.Unlock()
				} else {
					mu.RLock()
					_ = m[k]
					mu.RUnlock()
				}
			}
		})
	})
}

func BenchmarkArray_LookupUpdate(b *testing.B) {
	a := mustNew(b, &ebpf.MapSpec{Name: "a", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 256}).(*Array)
	k, val := u32b(17), make([]byte, 16)
	b.Run("LookupSlot", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			a.LookupSlot(k, 0)
		}
	})
	b.Run("UpdateElem", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			a.UpdateElem(k, val, UpdateAny, 0)
		}
	})
}

func BenchmarkLPMTrie_LookupSlot(b *testing.B) {
	m := mustNew(b, &ebpf.MapSpec{Name: "l", Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 1 << 16, Flags: FlagNoPrealloc}).(*LPMTrie)
	for i := 0; i < 10000; i++ {
		x := uint32(i) * 2654435761
		m.Update(lpmKey(uint32(8+i%25), byte(x>>24), byte(x>>16), byte(x>>8), byte(x)), u64b(1), UpdateAny)
	}
	keys := make([][]byte, 1024)
	for i := range keys {
		x := uint32(i) * 40503 * 65537
		keys[i] = lpmKey(32, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.LookupSlot(keys[i%1024], 0)
	}
}

func BenchmarkRingBuf_Output(b *testing.B) {
	rb := newRingBufT(b, 1<<16)
	data := make([]byte, 64)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rb.Output(data, RingNoWakeup) != 0 {
			b.Fatal("ring full")
		}
		rb.r.consume(&buf)
	}
}
