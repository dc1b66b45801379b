package vm_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/internal/vm/amd64"
)

// TestJIT_ArrayMemo looks up an array whose handle the program loads as a
// constant, on one Machine whose CPU changes between runs and whose array
// is replaced, under the same handle, by one of another length, stride
// and bases: compiled code memoizes what it read from the handle's region
// (jitc.arrayMemo) and must notice both (fails when the CPU is left out
// of the memo, or the memo outlives a rebind), answer as the helper does
// on both engines, and, on the JIT, never call the helper.
func TestJIT_ArrayMemo(t *testing.T) {
	if !amd64.Supported {
		t.Skip("no compiler on this platform")
	}
	type step struct {
		cpu   int
		key   uint64
		remap bool // replace the array before this step
		want  func(a, b uint64) uint64
	}
	steps := []step{
		{0, 1, false, func(a, b uint64) uint64 { return a + 16 }},
		{0, 2, false, func(a, b uint64) uint64 { return a + 32 }},
		{1, 1, false, func(a, b uint64) uint64 { return b + 16 }},
		{1, 3, false, func(a, b uint64) uint64 { return 0 }},
		{0, 0, false, func(a, b uint64) uint64 { return a }},
		{0, 4, true, func(a, b uint64) uint64 { return b + 32 }},
		{1, 4, false, func(a, b uint64) uint64 { return a + 32 }},
		{0, 5, false, func(a, b uint64) uint64 { return 0 }},
	}
	for _, e := range []vm.Engine{vm.EngineInterp, vm.EngineJIT} {
		as := vm.NewAddressSpace()
		A, _ := as.Map(vm.Region{Data: make([]byte, 64), Stride: 16})
		B, _ := as.Map(vm.Region{Data: make([]byte, 64), Stride: 16})
		n, stride, bases := uint64(3), uint64(16), []uint64{A, B}
		h := as.NewArrayHandle("array", uint32(n), uint32(stride), bases)
		cpu, calls := 0, 0
		tbl := make([]vm.HelperFunc, int(asm.FnMapLookupElem)+1)
		tbl[asm.FnMapLookupElem] = func(m *vm.Machine, r1, key, _, _, _ uint64) (uint64, error) {
			calls++
			k, err := m.Mem(key, 4, false)
			if err != nil || r1 != h {
				return 0, fmt.Errorf("lookup %#x: %v", r1, err)
			}
			if i := uint64(binary.LittleEndian.Uint32(k)); i < n {
				return bases[cpu] + i*stride, nil
			}
			return 0, nil
		}
		insns := asm.Instructions{
			asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
			asm.LoadImm(asm.R1, int64(h), asm.DWord),
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.Return(),
		}
		p, err := vm.Load(insns, vm.Options{AddressSpace: as, Engine: e, Helpers: tbl, ArrayLookup: int32(asm.FnMapLookupElem)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := p.Compiled(); e == vm.EngineJIT && !ok {
			t.Fatalf("not compiled: %s", why)
		}
		m := vm.NewMachine()
		for i, s := range steps {
			if s.remap {
				if err := as.Unmap(h); err != nil {
					t.Fatal(err)
				}
				n, stride, bases = 5, 8, []uint64{B, A}
				if h2 := as.NewArrayHandle("array", uint32(n), uint32(stride), bases); h2 != h {
					t.Fatalf("the new array has handle %#x, not %#x: the test needs the ID reused", h2, h)
				}
			}
			cpu = s.cpu
			m.SetCPU(cpu)
			for run := range 2 { // the second run finds the memo the first filled
				r0, err := m.Run(p, s.key)
				if want := s.want(A, B); err != nil || r0 != want {
					t.Errorf("%v step %d run %d: r0 %#x, %v; want %#x", e, i, run, r0, err, want)
				}
			}
		}
		if e == vm.EngineJIT && calls != 0 {
			t.Errorf("compiled code called the helper %d times", calls)
		}
	}
}
