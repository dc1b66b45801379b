package vm_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/internal/vm/amd64"
)

// TestJIT_ConstMemo runs programs that access globals at constant
// addresses one after another on one Machine, so that compiled code's
// verdicts on constant accesses (jitc.constMemo) carry from one program
// and one run to the next: an access of another size or direction at the
// same address must not take the verdict of the first (a word inside the
// slot, then a double word past it; a load, then a store to a read-only
// region), and a region unmapped and its ID reused by a new region
// between runs must be seen at once (the old verdict pointed into the old
// buffer). Each step must give what the interpreter gives on its own
// Machine, and the values the regions hold.
func TestJIT_ConstMemo(t *testing.T) {
	if !amd64.Supported {
		t.Skip("no compiler on this platform")
	}
	type step struct {
		name  string
		insns func(a, b uint64) asm.Instructions
		remap bool // unmap A and map a new region in its place first
		want  string
	}
	ld := func(r asm.Register, addr uint64) asm.Instruction { return asm.LoadImm(r, int64(addr), asm.DWord) }
	steps := []step{
		{"word inside the slot", func(a, b uint64) asm.Instructions {
			return asm.Instructions{ld(asm.R2, a), asm.LoadMem(asm.R0, asm.R2, 8, asm.Word), asm.Return()}
		}, false, "0x1b1a1918"},
		{"double word past the slot", func(a, b uint64) asm.Instructions {
			return asm.Instructions{ld(asm.R2, a), asm.LoadMem(asm.R0, asm.R2, 8, asm.DWord), asm.Return()}
		}, false, vm.FaultSlot.String()},
		{"load from read-only", func(a, b uint64) asm.Instructions {
			return asm.Instructions{ld(asm.R2, b), asm.LoadMem(asm.R0, asm.R2, 4, asm.Word), asm.Return()}
		}, false, "0x47464544"},
		{"store to read-only", func(a, b uint64) asm.Instructions {
			return asm.Instructions{ld(asm.R2, b), asm.StoreImm(asm.R2, 4, 1, asm.Word), asm.Mov.Imm(asm.R0, 0), asm.Return()}
		}, false, vm.FaultReadOnly.String()},
		{"word again", func(a, b uint64) asm.Instructions {
			return asm.Instructions{ld(asm.R2, a), asm.LoadMem(asm.R0, asm.R2, 8, asm.Word), asm.Return()}
		}, false, "0x1b1a1918"},
		{"word after the region changed", func(a, b uint64) asm.Instructions {
			return asm.Instructions{ld(asm.R2, a), asm.LoadMem(asm.R0, asm.R2, 8, asm.Word), asm.Return()}
		}, true, "0xebeae9e8"},
		{"store after the region changed", func(a, b uint64) asm.Instructions {
			return asm.Instructions{ld(asm.R2, a), asm.StoreImm(asm.R2, 8, 7, asm.Word), asm.LoadMem(asm.R0, asm.R2, 8, asm.Word), asm.Return()}
		}, false, "0x7"},
	}
	var outs [2][]string
	for ei, e := range []vm.Engine{vm.EngineInterp, vm.EngineJIT} {
		fill := func(n int, seed byte) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = seed + byte(i)
			}
			return b
		}
		as := vm.NewAddressSpace()
		A, err := as.Map(vm.Region{Data: fill(32, 0x10), Stride: 16, SlotSize: 12})
		if err != nil {
			t.Fatal(err)
		}
		B, err := as.Map(vm.Region{Data: fill(16, 0x40), Stride: 16, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		m := vm.NewMachine()
		for _, s := range steps {
			if s.remap {
				if err := as.Unmap(A); err != nil {
					t.Fatal(err)
				}
				A2, err := as.Map(vm.Region{Data: fill(32, 0xe0), Stride: 16, SlotSize: 12, ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				if A2 != A {
					t.Fatalf("the new region has address %#x, not A's %#x: the test needs the ID reused", A2, A)
				}
				// Writable again, so that the next step's store is allowed.
				if err := as.Unmap(A); err != nil {
					t.Fatal(err)
				}
				if A2, err = as.Map(vm.Region{Data: fill(32, 0xe0), Stride: 16, SlotSize: 12}); err != nil || A2 != A {
					t.Fatalf("remap: %#x %v", A2, err)
				}
			}
			p, err := vm.Load(s.insns(A, B), vm.Options{AddressSpace: as, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			if ok, why := p.Compiled(); e == vm.EngineJIT && !ok {
				t.Fatalf("not compiled: %s", why)
			}
			for run := range 2 { // the second run finds the verdict the first left
				r0, err := m.Run(p, 0)
				var f *vm.Fault
				var out string
				switch {
				case errors.As(err, &f):
					out = f.Kind.String()
				case err != nil:
					t.Fatalf("%v %s: %v", e, s.name, err)
				default:
					out = fmt.Sprintf("%#x", r0)
				}
				if out != s.want {
					t.Errorf("%v %s (run %d): %s; want %s", e, s.name, run, out, s.want)
				}
				outs[ei] = append(outs[ei], fmt.Sprintf("%s %s %d", s.name, out, m.Executed()))
			}
		}
	}
	if fmt.Sprint(outs[0]) != fmt.Sprint(outs[1]) {
		t.Errorf("interpreter %q\njit %q", outs[0], outs[1])
	}
	_ = binary.LittleEndian
}
