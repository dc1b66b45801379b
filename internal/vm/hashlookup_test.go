package vm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// testHash is a hash map index laid out as vm.HashLayout describes, built
// here from its doc (the maps package's index is one such map), with the
// lookup its helper performs in Go.
type testHash struct {
	l      vm.HashLayout
	keys   [][]byte
	marked []bool
	calls  int // helper calls
}

// layoutHash is HashLayout's hash, written again from its doc.
func layoutHash(l *vm.HashLayout, key []byte) uint64 {
	h := l.Seed[0]
	for i := 0; i < len(key); i += 8 {
		var w [8]byte
		copy(w[:], key[i:])
		hi, lo := bits.Mul64(h^binary.LittleEndian.Uint64(w[:]), l.Seed[1])
		h = hi ^ lo
	}
	return h & l.HashMask
}

// keyWord is word i of key, zero-padded.
func keyWord(key []byte, i int) uint64 {
	var w [8]byte
	copy(w[:], key[min(8*i, len(key)):])
	return binary.LittleEndian.Uint64(w[:])
}

// newTestHash links keys (slot i holds keys[i]; marked ones are deleted
// but still linked) into sorted bucket lists.
func newTestHash(ks, buckets int, hmask uint64, keys [][]byte, marked []bool, ref bool) *testHash {
	kw := (ks + 7) / 8
	nw := vm.HashNodeKey + kw + 1
	th := &testHash{keys: keys, marked: marked, l: vm.HashLayout{
		Heads: make([]uint64, buckets), Nodes: make([]uint64, len(keys)*nw), NodeWords: nw, KeySize: ks,
		Seed: [2]uint64{0x243f6a8885a308d3, 0x13198a2e03707345}, HashMask: hmask,
		Bases: []uint64{0x5_0000_0000, 0x6_0000_0000}, Stride: 24,
	}}
	if ref {
		th.l.Ref = make([]uint32, len(keys))
	}
	for s, k := range keys {
		th.l.Nodes[s*nw+vm.HashNodeHash] = layoutHash(&th.l, k)
		for i := range kw {
			th.l.Nodes[s*nw+vm.HashNodeKey+i] = keyWord(k, i)
		}
		th.l.Nodes[s*nw+vm.HashNodeKey+kw] = ^uint64(0) // a word past the key
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return th.cmp(a, layoutHash(&th.l, keys[b]), keys[b]) })
	// Link each bucket in order; tags in the high bits must be ignored.
	last := make([]int, buckets)
	for b := range last {
		last[b] = -1
	}
	for _, s := range order {
		link := uint64(s+1) | uint64(s+3)<<33
		b := int(th.l.Nodes[s*nw+vm.HashNodeHash] & uint64(buckets-1))
		if last[b] < 0 {
			th.l.Heads[b] = link
		} else {
			th.l.Nodes[last[b]*nw+vm.HashNodeNext] |= link
		}
		last[b] = s
	}
	for s, m := range marked {
		if m {
			th.l.Nodes[s*nw+vm.HashNodeNext] |= 1 << 32
		}
	}
	return th
}

// cmp orders slot s against (h, key) as the lists are sorted.
func (th *testHash) cmp(s int, h uint64, key []byte) int {
	nd := th.l.Nodes[s*th.l.NodeWords:]
	if nh := nd[vm.HashNodeHash]; nh != h {
		return cmpU64(nh, h)
	}
	for i := range (th.l.KeySize + 7) / 8 {
		if c := cmpU64(nd[vm.HashNodeKey+i], keyWord(key, i)); c != 0 {
			return c
		}
	}
	return 0
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lookup is the helper's walk: the slot of key, -1 if none.
func (th *testHash) lookup(key []byte) int {
	h := layoutHash(&th.l, key)
	w := th.l.Heads[h&uint64(len(th.l.Heads)-1)]
	for uint32(w) != 0 {
		s := int(uint32(w)) - 1
		next := th.l.Nodes[s*th.l.NodeWords+vm.HashNodeNext]
		switch d := th.cmp(s, h, key); {
		case d > 0:
			return -1
		case d == 0 && next&(1<<32) != 0:
			return -1
		case d == 0:
			return s
		}
		w = next
	}
	return -1
}

// hashLookupProg stores its arguments r1-r3 at fp-24 and looks the key
// of the first KeySize of those bytes up in map 0 (r4 != 0: through a
// NULL key pointer); it returns the value's address.
var hashLookupProg = asm.Instructions{
	asm.StoreMem(asm.RFP, -24, asm.R1, asm.DWord),
	asm.StoreMem(asm.RFP, -16, asm.R2, asm.DWord),
	asm.StoreMem(asm.RFP, -8, asm.R3, asm.DWord),
	asm.LoadMapPtr(asm.R1, 0),
	asm.Mov.Reg(asm.R2, asm.RFP),
	asm.Add.Imm(asm.R2, -24),
	asm.JEq.Imm(asm.R4, 0, "call"),
	asm.Mov.Imm(asm.R2, 0),
	asm.FnMapLookupElem.Call().WithSymbol("call"),
	asm.Return(),
}

// helper is bpf_map_lookup_elem on th (handle) from th.lookup, as a
// Machine running as *cpu; it counts its calls.
func (th *testHash) helper(handle uint64, cpu *int) vm.HelperFunc {
	return func(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
		th.calls++
		if r1 != handle {
			return 0, syscall.EINVAL
		}
		key, err := m.Mem(r2, uint64(th.l.KeySize), false)
		if err != nil {
			return 0, err
		}
		s := th.lookup(key)
		if s < 0 || *cpu >= len(th.l.Bases) {
			return 0, nil
		}
		if th.l.Ref != nil && th.l.Ref[s] == 0 {
			th.l.Ref[s] = 1
		}
		return th.l.Bases[*cpu] + uint64(s)*uint64(th.l.Stride), nil
	}
}

// load loads hashLookupProg over th.
func (th *testHash) load(t *testing.T, cpu *int) *vm.Program {
	as := vm.NewAddressSpace()
	handle, err := as.NewHashHandle("h", th.l)
	if err != nil {
		t.Fatal(err)
	}
	helpers := make([]vm.HelperFunc, asm.FnMapLookupElem+1)
	helpers[asm.FnMapLookupElem] = th.helper(handle, cpu)
	return load(t, hashLookupProg, vm.Options{
		AddressSpace: as, Helpers: helpers, ArrayLookup: int32(asm.FnMapLookupElem),
		Maps: func(vm.MapRef) (uint64, error) { return handle, nil },
	})
}

// keyArgs is hashLookupProg's r1-r3 for key: its bytes, then a pattern a
// lookup must not take for part of the key.
func keyArgs(key []byte) []uint64 {
	b := bytes.Repeat([]byte{0xab}, 24)
	copy(b, key)
	return []uint64{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:]), 0}
}

// TestMapLookup_HashLayout: bpf_map_lookup_elem on a NewHashHandle map
// answers from the layout, in the interpreter (through the helper) and
// compiled (without it): every key of sorted lists with equal hashes
// (HashMask 0: one list ordered by key words) or not, keys of every
// length with and without a partial last word, deleted (marked) nodes
// skipped, the reference flags set, per-CPU bases; a CPU without a base
// and a key the helper may not read go to the helper.
func TestMapLookup_HashLayout(t *testing.T) {
	jit := os.Getenv("VM_TEST_ENGINE") == "jit"
	rng := rand.New(rand.NewPCG(1, 2))
	for _, hmask := range []uint64{0, 0xff, ^uint64(0)} {
		for _, ks := range []int{1, 3, 4, 5, 7, 8, 12, 13, 16, 20, 24} {
			name := fmt.Sprintf("hmask %#x key %d", hmask, ks)
			var keys [][]byte
			seen := map[string]bool{}
			for len(keys) < 40 {
				k := make([]byte, ks)
				for i := range k {
					k[i] = byte(rng.IntN(4)) // few values: long common prefixes
				}
				k[ks-1] = byte(rng.Uint32())
				if !seen[string(k)] {
					seen[string(k)] = true
					keys = append(keys, k)
				}
			}
			marked := make([]bool, len(keys)-8) // the last 8 are not linked
			for i := range marked {
				marked[i] = i%5 == 2
			}
			th := newTestHash(ks, 8, hmask, keys[:len(marked)], marked, ks%2 == 0)
			cpu := 0
			p := th.load(t, &cpu)
			m := vm.NewMachine()
			for _, cpu = range []int{1, 0} {
				m.SetCPU(cpu)
				for i, k := range keys {
					want := uint64(0)
					if i < len(marked) && !marked[i] {
						want = th.l.Bases[cpu] + uint64(i)*24
					}
					got, err := m.Run(p, keyArgs(k)...)
					if err != nil || got != want {
						t.Fatalf("%s, cpu %d, key %d %x: %#x %v, want %#x", name, cpu, i, k, got, err, want)
					}
					if th.l.Ref != nil && i < len(marked) && (th.l.Ref[i] != 0) != (want != 0) {
						t.Fatalf("%s: key %d: reference flag %d after a lookup returning %#x", name, i, th.l.Ref[i], got)
					}
				}
			}
			if jit && th.calls != 0 {
				t.Errorf("%s: %d lookups left compiled code", name, th.calls)
			}
			// A CPU without a base, and a NULL key: the helper answers.
			calls := th.calls
			cpu = 2
			m.SetCPU(cpu)
			if got, err := m.Run(p, keyArgs(keys[0])...); err != nil || got != 0 || th.calls != calls+1 {
				t.Errorf("%s: cpu 2: %#x %v, %d helper calls", name, got, err, th.calls-calls)
			}
			args := keyArgs(keys[0])
			args[3] = 1
			_, err := m.Run(p, args...)
			var f *vm.Fault
			if !errors.As(err, &f) || f.Kind != vm.FaultOutOfBounds && f.Kind != vm.FaultUnmapped {
				t.Errorf("%s: NULL key: %v", name, err)
			}
		}
	}
}

// TestMapLookup_HashNoAllocs: a compiled (or interpreted) hash lookup
// allocates nothing.
func TestMapLookup_HashNoAllocs(t *testing.T) {
	keys := [][]byte{[]byte("abcdefghijklm"), []byte("nopqrstuvwxyz")}
	th := newTestHash(13, 4, ^uint64(0), keys, []bool{false, false}, true)
	cpu := 0
	p := th.load(t, &cpu)
	m := vm.NewMachine()
	args := keyArgs(keys[1])
	if n := testing.AllocsPerRun(100, func() {
		if r0, err := m.Run(p, args...); err != nil || r0 != th.l.Bases[0]+24 {
			t.Fatalf("%#x %v", r0, err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per lookup", n)
	}
}

// TestNewHashHandle_Refuses layouts the compiled lookup could not walk.
func TestNewHashHandle_Refuses(t *testing.T) {
	good := newTestHash(4, 4, ^uint64(0), [][]byte{{1, 2, 3, 4}}, []bool{false}, false).l
	for name, mod := range map[string]func(l *vm.HashLayout){
		"no heads":         func(l *vm.HashLayout) { l.Heads = nil },
		"3 heads":          func(l *vm.HashLayout) { l.Heads = l.Heads[:3] },
		"key size 0":       func(l *vm.HashLayout) { l.KeySize = 0 },
		"key past node":    func(l *vm.HashLayout) { l.KeySize = 8 * l.NodeWords },
		"partial node":     func(l *vm.HashLayout) { l.Nodes = l.Nodes[:len(l.Nodes)-1] },
		"no bases":         func(l *vm.HashLayout) { l.Bases = nil },
		"short references": func(l *vm.HashLayout) { l.Ref = []uint32{} },
	} {
		l := good
		mod(&l)
		if _, err := vm.NewAddressSpace().NewHashHandle("h", l); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", name, err)
		}
	}
	if _, err := vm.NewAddressSpace().NewHashHandle("h", good); err != nil {
		t.Errorf("good layout: %v", err)
	}
}
