package maps

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// TestPacketPath_ZeroAllocs runs every operation a program can reach on
// the packet path and wants no allocation at all.
func TestPacketPath_ZeroAllocs(t *testing.T) {
	key, val := u64b(42), make([]byte, 16)
	other := u64b(43)
	hashCase := func(typ ebpf.MapType) func(testing.TB) func() {
		return func(tb testing.TB) func() {
			h := newHashT(tb, typ, 8, 16, 64)
			h.UpdateElem(key, val, UpdateAny, 0)
			for i := uint64(0); i < 62; i++ {
				h.UpdateElem(u64b(i+1000), val, UpdateAny, 0)
			}
			churn := make([]byte, 8)
			i := uint64(0)
			return func() {
				h.LookupSlot(key, 1)
				h.UpdateElem(key, val, UpdateExist, 1)
				h.UpdateElem(other, val, UpdateNoExist, 0)
				h.DeleteElem(other, 0)
				// New keys: a full hash map fails, an LRU map evicts.
				i++
				binary.NativeEndian.PutUint64(churn, i%4096)
				h.UpdateElem(churn, val, UpdateAny, 1)
			}
		}
	}
	for _, tc := range []struct {
		name string
		prep func(testing.TB) func()
	}{
		{"Array", func(tb testing.TB) func() {
			a := mustNew(tb, &ebpf.MapSpec{Name: "a", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: 4}).(*Array)
			k := u32b(2)
			return func() {
				a.LookupSlot(k, 0)
				a.UpdateElem(k, val, UpdateAny, 1)
				a.DeleteElem(k, 0)
				_ = a.Slots(1)
			}
		}},
		{"Hash", hashCase(ebpf.Hash)},
		{"Hash zero seed", func(tb testing.TB) func() {
			h := mustNew(tb, &ebpf.MapSpec{Name: "z", Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: 64, Flags: FlagZeroSeed}).(*Hash)
			for i := uint64(0); i < 40; i++ {
				h.UpdateElem(u64b(i), val, UpdateAny, 0)
			}
			return func() {
				h.LookupSlot(key, 0)
				h.UpdateElem(u64b(7), val, UpdateExist, 0)
				h.UpdateElem(other, val, UpdateNoExist, 0)
				h.DeleteElem(other, 0)
			}
		}},
		{"Hash walk", func(tb testing.TB) func() {
			h := newHashT(tb, ebpf.Hash, 8, 16, 64)
			z := mustNew(tb, &ebpf.MapSpec{Name: "z", Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: 64, Flags: FlagZeroSeed}).(*Hash)
			for i := uint64(0); i < 40; i++ {
				h.UpdateElem(u64b(i), val, UpdateAny, 0)
				z.UpdateElem(u64b(i), val, UpdateAny, 0)
			}
			prev, out := make([]byte, 8), make([]byte, 8)
			return func() {
				for _, m := range []*Hash{h, z} {
					var c Cursor
					for {
						if _, ok := m.NextSlot(&c, prev, out); !ok {
							break
						}
						copy(prev, out)
					}
				}
			}
		}},
		{"PerCPUHash", hashCase(ebpf.PerCPUHash)},
		{"LRUHash", hashCase(ebpf.LRUHash)},
		{"LRUCPUHash", hashCase(ebpf.LRUCPUHash)},
		{"LPMTrie lookup", func(tb testing.TB) func() {
			m := mustNew(tb, &ebpf.MapSpec{Name: "l", Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 64, Flags: FlagNoPrealloc}).(*LPMTrie)
			for i := 0; i < 32; i++ {
				m.Update(lpmKey(uint32(8+i%24), 10, byte(i), byte(i*7), 0), u32b(1), UpdateAny)
			}
			k := lpmKey(32, 10, 3, 21, 9)
			return func() { m.LookupSlot(k, 0) }
		}},
		{"ProgramArray", func(tb testing.TB) func() {
			p := mustNew(tb, &ebpf.MapSpec{Name: "p", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4}).(*ProgramArray)
			p.Set(1, &fakeProg{})
			return func() { p.Get(1); p.Get(2) }
		}},
		{"RingBuf", func(tb testing.TB) func() {
			rb := newRingBufT(tb, 4096)
			r := newRingReader(tb, rb)
			var rec Record
			rec.RawSample = make([]byte, 0, 64)
			return func() {
				off, _ := rb.Reserve(24, 0)
				rb.Submit(off, 0)
				off, _ = rb.Reserve(24, 0)
				rb.Discard(off, RingNoWakeup)
				rb.Output(val, 0)
				rb.Query(RingAvailData)
				// Drain without blocking so the ring never fills.
				for {
					if st, _ := rb.r.consume(&rec.RawSample); st != recordData {
						break
					}
				}
				_ = r
			}
		}},
		{"PerfEventArray", func(tb testing.TB) func() {
			p := newPerfT(tb)
			r, err := p.NewReader(4096)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { r.Close() })
			buf := make([]byte, 0, 64)
			return func() {
				p.Output(1, PerfCurrentCPU, val, key)
				r.bufs[1].r.consume(&buf)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.prep(t)
			if n := testing.AllocsPerRun(1000, f); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}

// TestSlotMap_BadInputsDoNotPanic feeds the packet-path API what a buggy
// program or VM could: short keys and values, CPUs the map lacks.
func TestSlotMap_BadInputsDoNotPanic(t *testing.T) {
	specs := []*ebpf.MapSpec{
		{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2},
		{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 2},
		{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 2},
		{Type: ebpf.PerCPUHash, KeySize: 8, ValueSize: 8, MaxEntries: 2},
		{Type: ebpf.LRUCPUHash, KeySize: 8, ValueSize: 8, MaxEntries: 2},
		{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 2, Flags: FlagNoPrealloc},
	}
	for _, spec := range specs {
		spec.Name = "m"
		m := mustNew(t, spec).(SlotMap)
		for _, key := range [][]byte{nil, {1}, make([]byte, 7), make([]byte, 64)} {
			for _, val := range [][]byte{nil, {1}, make([]byte, 64)} {
				for _, cpu := range []int{-1, 0, 1, 2, 1 << 30} {
					m.LookupSlot(key, cpu)
					m.UpdateElem(key, val, UpdateAny, cpu)
					m.UpdateElem(key, val, 1<<40, cpu)
					m.DeleteElem(key, cpu)
					_ = m.Slots(cpu)
				}
			}
		}
	}
	p := newPerfT(t)
	r, _ := p.NewReader(4096)
	defer r.Close()
	for _, cpu := range []int{-1, 2, 1 << 30} {
		if got := p.Output(cpu, PerfCurrentCPU, []byte("x"), nil); got != -linuxerr.E2BIG {
			t.Errorf("Output on cpu %d = %d, want -E2BIG", cpu, got)
		}
	}
}
