package vm_test

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// A limit of 0 means no limit on every engine: a bounded loop of 300,000
// instructions runs to its end.
func TestMachine_SetLimitZero(t *testing.T) {
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.Add.Imm(asm.R0, 1).WithSymbol("loop"),
		asm.JLT.Imm(asm.R0, 100000, "loop"),
		asm.Return(),
	}, vm.Options{})
	m := vm.NewMachine()
	m.SetLimit(0)
	v, err := m.Run(p)
	if err != nil || v != 100000 {
		t.Fatalf("r0 = %d, err = %v; want 100000, no error", v, err)
	}
	if got := m.Executed(); got != 1+2*100000+1 {
		t.Errorf("Executed() = %d, want %d", got, 1+2*100000+1)
	}
}

// BPF_ST | BPF_MEM | BPF_DW stores the immediate sign-extended to 64 bits.
// cilium/ebpf's asm.StoreImm refuses DWord, so the opcode (0x7a) is spelled
// out.
func TestMachine_StoreImmDWord(t *testing.T) {
	stDW := asm.OpCode(asm.StClass).SetMode(asm.MemMode).SetSize(asm.DWord)
	got := r0(t,
		asm.Instruction{OpCode: stDW, Dst: asm.RFP, Offset: -8, Constant: -2},
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
	)
	if got != 0xfffffffffffffffe {
		t.Errorf("r0 = %#x, want 0xfffffffffffffffe", got)
	}
}
