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

// TestJIT_ConstantAccesses runs programs whose accesses go through
// constants (a global's address from ld_imm64, plus offsets) and through
// registers the analysis guesses hold the context, on paths where a
// proof that ignored a join, a loop or an overwrite would name the wrong
// region or offset: compiled code, which uses the proven constant as the
// address, must read and fault exactly as the interpreter does, and both
// must give the values the program's bytes define.
func TestJIT_ConstantAccesses(t *testing.T) {
	if !amd64.Supported {
		t.Skip("no compiler on this platform")
	}
	as := vm.NewAddressSpace()
	fill := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i)
		}
		return b
	}
	regA, regB, regC := fill(16, 0x10), fill(16, 0x40), fill(32, 0x80)
	A, err := as.Map(vm.Region{Data: regA, Stride: 16})
	if err != nil {
		t.Fatal(err)
	}
	B, err := as.Map(vm.Region{Data: regB, Stride: 16, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	C, err := as.Map(vm.Region{Data: regC, Stride: 16, SlotSize: 12}) // two slots of 12
	if err != nil {
		t.Fatal(err)
	}
	ld := func(r asm.Register, addr uint64) asm.Instruction { return asm.LoadImm(r, int64(addr), asm.DWord) }
	le64 := func(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
	le32 := func(b []byte) uint64 { return uint64(binary.LittleEndian.Uint32(b)) }
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		arg   uint64 // r1
		want  string // r0 or the fault's kind, "" to compare engines only
	}{
		{"join of two regions (first)", asm.Instructions{
			ld(asm.R2, A), asm.JEq.Imm(asm.R1, 0, "j"), ld(asm.R2, B),
			asm.LoadMem(asm.R0, asm.R2, 8, asm.DWord).WithSymbol("j"), asm.Return(),
		}, 0, fmt.Sprint(le64(regA[8:]))},
		{"join of two regions (second)", asm.Instructions{
			ld(asm.R2, A), asm.JEq.Imm(asm.R1, 0, "j"), ld(asm.R2, B),
			asm.LoadMem(asm.R0, asm.R2, 8, asm.DWord).WithSymbol("j"), asm.Return(),
		}, 1, fmt.Sprint(le64(regB[8:]))},
		{"join of two offsets", asm.Instructions{
			ld(asm.R2, A), asm.JEq.Imm(asm.R1, 0, "j"), asm.Add.Imm(asm.R2, 8),
			asm.LoadMem(asm.R0, asm.R2, 0, asm.Word).WithSymbol("j"), asm.Return(),
		}, 1, fmt.Sprint(le32(regA[8:]))},
		{"a loop that moves it", asm.Instructions{
			ld(asm.R2, C), asm.Mov.Imm(asm.R3, 3),
			asm.Add.Imm(asm.R2, 2).WithSymbol("loop"), asm.Add.Imm(asm.R3, -1), asm.JNE.Imm(asm.R3, 0, "loop"),
			asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte), asm.Return(),
		}, 0, fmt.Sprint(regC[6])},
		{"added through a register", asm.Instructions{
			ld(asm.R2, C), asm.Mov.Imm(asm.R3, 16), asm.Add.Reg(asm.R2, asm.R3),
			asm.LoadMem(asm.R0, asm.R2, 4, asm.Word), asm.Return(),
		}, 0, fmt.Sprint(le32(regC[20:]))},
		{"overwritten by a load", asm.Instructions{
			ld(asm.R2, B), asm.StoreMem(asm.RFP, -8, asm.R2, asm.DWord), ld(asm.R2, A),
			asm.LoadMem(asm.R2, asm.RFP, -8, asm.DWord),
			asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte), asm.Return(),
		}, 0, fmt.Sprint(regB[0])},
		{"overwritten by a 32-bit op", asm.Instructions{
			ld(asm.R2, A), asm.Mov.Reg32(asm.R2, asm.R2),
			asm.LoadMem(asm.R0, asm.R2, 0, asm.Byte), asm.Return(),
		}, 0, vm.FaultUnmapped.String()},
		{"store to read-only", asm.Instructions{
			ld(asm.R2, B), asm.StoreImm(asm.R2, 0, 1, asm.Byte), asm.Mov.Imm(asm.R0, 0), asm.Return(),
		}, 0, vm.FaultReadOnly.String()},
		{"past the slot", asm.Instructions{
			ld(asm.R2, C), asm.LoadMem(asm.R0, asm.R2, 10, asm.Word), asm.Return(),
		}, 0, ""},
		{"the last bytes of the second slot", asm.Instructions{
			ld(asm.R2, C), asm.LoadMem(asm.R0, asm.R2, 24, asm.Word), asm.Return(),
		}, 0, fmt.Sprint(le32(regC[24:]))},
		{"past the region", asm.Instructions{
			ld(asm.R2, A), asm.LoadMem(asm.R0, asm.R2, 16, asm.Byte), asm.Return(),
		}, 0, ""},
		{"a store then a load", asm.Instructions{
			ld(asm.R2, A), asm.StoreImm(asm.R2, 4, 0x77, asm.Byte), asm.LoadMem(asm.R0, asm.R2, 4, asm.Byte), asm.Return(),
		}, 0, "119"},
		{"r1 is not the context", asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1), asm.LoadMem(asm.R0, asm.R6, 8, asm.Word), asm.Return(),
		}, A, fmt.Sprint(le32(regA[8:]))},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out [2]string
			for i, e := range []vm.Engine{vm.EngineInterp, vm.EngineJIT} {
				p, err := vm.Load(c.insns, vm.Options{AddressSpace: as, Engine: e})
				if err != nil {
					t.Fatal(err)
				}
				if ok, why := p.Compiled(); e == vm.EngineJIT && !ok {
					t.Fatalf("not compiled: %s", why)
				}
				m := vm.NewMachine()
				r0, err := m.Run(p, c.arg)
				var f *vm.Fault
				switch {
				case errors.As(err, &f):
					out[i] = fmt.Sprintf("%v %d %#x %d", f.Kind, f.PC, f.Addr, f.Size)
					if c.want != "" && f.Kind.String() != c.want {
						t.Errorf("%v: fault %v; want %s", e, f, c.want)
					}
				case err != nil:
					t.Fatalf("%v: %v", e, err)
				default:
					out[i] = fmt.Sprint(r0)
					if c.want != "" && out[i] != c.want {
						t.Errorf("%v: r0 %s; want %s", e, out[i], c.want)
					}
				}
				out[i] += fmt.Sprintf(" executed %d", m.Executed())
			}
			if out[0] != out[1] {
				t.Errorf("interpreter %s, jit %s", out[0], out[1])
			}
		})
	}
}
