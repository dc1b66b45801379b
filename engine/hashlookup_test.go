package engine_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// hashKey is the key hashCounter builds from mark: ks bytes, the mark's
// low bytes at the start and at the end, zeros between.
func hashKey(mark uint32, ks int) []byte {
	k := make([]byte, ks)
	if ks < 4 {
		binary.LittleEndian.PutUint16(k, uint16(mark))
		return k
	}
	binary.LittleEndian.PutUint32(k, mark)
	binary.LittleEndian.PutUint32(k[ks-4:], mark)
	return k
}

// hashCounter looks hashKey(mark, ks) up in map "m" (built on the stack,
// or through keyPtr) and counts in the value's first word: it returns the
// new count, 0x7fff for NULL.
func hashCounter(ks int, keyPtr asm.Instructions) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R1, skb.CtxMark, asm.Word),
	}
	for i := -ks; i < 0; i++ {
		insns = append(insns, asm.StoreImm(asm.RFP, int16(i), 0, asm.Byte))
	}
	if ks < 4 {
		insns = append(insns, asm.StoreMem(asm.RFP, int16(-ks), asm.R2, asm.Half))
	} else {
		insns = append(insns, asm.StoreMem(asm.RFP, int16(-ks), asm.R2, asm.Word), asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word))
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, 0).WithReference("m"),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, int32(-ks)),
	)
	insns = append(insns, keyPtr...)
	return append(insns, lookupAndCount()...)
}

var hashTypes = []ebpf.MapType{ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash}

// TestMapLookup_HashOnBothEngines: compiled code answers
// bpf_map_lookup_elem on hash maps itself (vm.NewHashHandle); the
// answers, the values reached through them and the faults must be the
// interpreter's, for the four hash map types on two CPUs, key sizes with
// and without a partial last word, missing keys, zero-seed maps (the
// kernel's jhash, compiled too), and keys the helper may not read.
func TestMapLookup_HashOnBothEngines(t *testing.T) {
	marks := []uint32{1, 3, 9, 3, 1, 0, 6, 0x10001, 6, 2, 0xffffffff, 5, 4, 3}
	present := func(mark uint32) bool { return mark >= 1 && mark <= 6 && mark != 4 }
	for _, typ := range hashTypes {
		for _, ks := range []int{2, 4, 8, 13, 16, 20} {
			for _, flags := range []uint32{0, maps.FlagZeroSeed} {
				for _, c := range keyPlaces {
					name := fmt.Sprintf("%s key %d flags %#x %s", typ, ks, flags, c.name)
					var got [2][]string
					for i, e := range []engine.Engine{engine.EngineInterp, engine.EngineJIT} {
						m := &ebpf.MapSpec{Name: "m", Type: typ, KeySize: uint32(ks), ValueSize: 12, MaxEntries: 8, Flags: flags}
						coll := newCollection(t, handSpec(hashCounter(ks, c.keyPtr), m), engine.Options{NumCPU: 2, Engine: e})
						if ok, why := coll.Programs["prog"].Compiled(); e == engine.EngineJIT && !ok {
							t.Fatalf("not compiled: %s", why)
						}
						vsize := 12
						if typ == ebpf.PerCPUHash || typ == ebpf.LRUCPUHash {
							vsize = 2 * 16
						}
						for mark := uint32(1); mark <= 6; mark++ {
							if !present(mark) {
								continue
							}
							v := make([]byte, vsize)
							binary.LittleEndian.PutUint64(v, uint64(mark)*10)
							if err := coll.Maps["m"].Update(hashKey(mark, ks), v, 0); err != nil {
								t.Fatal(err)
							}
						}
						got[i] = runMarks(t, coll, marks)
					}
					for k := range marks {
						if got[0][k] != got[1][k] {
							t.Errorf("%s: interpreter %s\njit %s", name, got[0][k], got[1][k])
						}
					}
					if c.keyPtr != nil {
						if !strings.Contains(got[1][0], "read of") {
							t.Errorf("%s: want a fault of the helper's key read: %s", name, got[1][0])
						}
						continue
					}
					// The expected counts, from a model of the map.
					percpu := typ == ebpf.PerCPUHash || typ == ebpf.LRUCPUHash
					count := map[string]uint64{}
					for k, mark := range marks {
						if ks < 4 {
							mark &= 0xffff
						}
						want := "0x7fff"
						if present(mark) {
							id := fmt.Sprint(mark)
							if percpu {
								id += fmt.Sprint("/", k%2)
							}
							if _, ok := count[id]; !ok && (!percpu || k%2 == 0) {
								count[id] = uint64(mark) * 10
							}
							count[id]++
							want = fmt.Sprintf("%#x", count[id])
						}
						if g, w := got[1][k], fmt.Sprintf("cpu %d mark %#x: %s <nil>", k%2, marks[k], want); g != w {
							t.Errorf("%s: run %d: %s, want %s", name, k, g, w)
						}
					}
				}
			}
		}
	}
}

// TestMapLookup_LRUReference: a compiled lookup sets the element's
// reference bit as the map's LookupSlot does, so an update into a full LRU
// map evicts an element no program looked up (the clock hand starts at
// slot 1: without the bits, key 2 would go).
func TestMapLookup_LRUReference(t *testing.T) {
	for _, e := range []engine.Engine{engine.EngineInterp, engine.EngineJIT} {
		m := &ebpf.MapSpec{Name: "m", Type: ebpf.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}
		coll := newCollection(t, handSpec(hashCounter(4, nil), m), engine.Options{NumCPU: 1, Engine: e})
		for k := uint32(1); k <= 4; k++ {
			if err := coll.Maps["m"].Update(hashKey(k, 4), make([]byte, 8), 0); err != nil {
				t.Fatal(err)
			}
		}
		x, err := coll.NewExecutor(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, mark := range []uint32{2, 3} {
			pkt, _ := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
			pkt.Mark = mark
			if res, err := x.Run(coll.Programs["prog"], pkt); err != nil || res.Retval != 1 {
				t.Fatalf("%s: lookup of %d: %d %v", e, mark, res.Retval, err)
			}
		}
		if err := coll.Maps["m"].Update(hashKey(5, 4), make([]byte, 8), 0); err != nil {
			t.Fatal(err)
		}
		var left []uint32
		for k := uint32(1); k <= 5; k++ {
			if coll.Maps["m"].Lookup(hashKey(k, 4), make([]byte, 8)) == nil {
				left = append(left, k)
			}
		}
		if fmt.Sprint(left) != "[1 2 3 5]" {
			t.Errorf("%s: keys left after an eviction: %v, want [1 2 3 5]", e, left)
		}
	}
}

// TestMapLookup_HashWhileChurned (-race): compiled lookups while a writer
// deletes, reinserts and rewrites keys, with either hash. A key never deleted is always
// found, and a value found is always its key's (the writer reinserts a
// key into the slot it just freed, so no slot changes keys).
func TestMapLookup_HashWhileChurned(t *testing.T) {
	for i := range 2 * len(hashTypes) {
		typ, flags := hashTypes[i/2], uint32(i%2)*maps.FlagZeroSeed // the kernel's jhash with the zero seed
		m := &ebpf.MapSpec{Name: "m", Type: typ, KeySize: 12, ValueSize: 8, MaxEntries: 64, Flags: flags}
		// The program returns the high word of the value found, 0x7fff
		// for NULL.
		insns := hashCounter(12, nil)
		for i := range insns {
			if insns[i].OpCode.ALUOp() == asm.Add && insns[i].Dst == asm.R1 && insns[i].Constant == 1 {
				insns[i] = asm.RSh.Imm(asm.R1, 32)
				insns[i+1] = asm.Mov.Reg(asm.R1, asm.R1) // no store back
			}
		}
		coll := newCollection(t, handSpec(insns, m), engine.Options{NumCPU: 1, Engine: engine.EngineJIT})
		vsize := 8 // one CPU: a per-CPU value is one value too
		put := func(k uint32, gen uint32) error {
			v := make([]byte, vsize)
			binary.LittleEndian.PutUint64(v, uint64(k)<<32|uint64(gen))
			return coll.Maps["m"].Update(hashKey(k, 12), v, 0)
		}
		for k := uint32(1); k <= 48; k++ {
			if err := put(k, 0); err != nil {
				t.Fatal(err)
			}
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gen := uint32(1); !stop.Load(); gen++ {
				k := 2 + 2*(gen%24) // even keys churn, odd ones stay
				if gen%3 == 0 {
					if err := put(k, gen); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if err := coll.Maps["m"].Delete(hashKey(k, 12)); err != nil {
					t.Error(err)
					return
				}
				if err := put(k, gen); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		x, err := coll.NewExecutor(0)
		if err != nil {
			t.Fatal(err)
		}
		pkt, _ := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
		found := 0
		for i := range 20000 {
			mark := uint32(1 + i%48)
			pkt.Mark = mark
			res, err := x.Run(coll.Programs["prog"], pkt)
			switch {
			case err != nil:
				t.Fatal(err)
			case res.Retval == mark:
				found++
			case res.Retval != 0x7fff || mark%2 == 1:
				t.Fatalf("%s: lookup of %d: %#x", typ, mark, res.Retval)
			}
		}
		stop.Store(true)
		wg.Wait()
		if found < 10000 {
			t.Errorf("%s: %d of 20000 lookups found their key", typ, found)
		}
	}
}
