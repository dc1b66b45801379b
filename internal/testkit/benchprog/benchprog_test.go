package benchprog

import (
	"testing"

	"github.com/cilium/ebpf/asm"
)

// The test walks the ALU loop like a machine would and counts the
// instructions executed, checking the constants against the code.
func TestSpec_ALULoop_ExecutedCount(t *testing.T) {
	insns := Spec().Programs[ALULoop].Instructions
	target := -1
	for i, ins := range insns {
		if ins.Symbol() == "loop" {
			target = i
		}
	}
	if target < 0 {
		t.Fatal("no loop label")
	}
	var regs [11]uint64
	executed, pc := 0, 0
	for pc < len(insns) {
		ins := insns[pc]
		executed++
		pc++
		switch {
		case ins.OpCode.JumpOp() == asm.Exit:
			pc = len(insns)
		case ins.OpCode.JumpOp() == asm.JNE:
			if regs[ins.Dst] != uint64(ins.Constant) {
				pc = target
			}
		case ins.OpCode.ALUOp() == asm.Mov:
			regs[ins.Dst] = uint64(ins.Constant)
		case ins.OpCode.ALUOp() == asm.Add:
			regs[ins.Dst] += regs[ins.Src]
		case ins.OpCode.ALUOp() == asm.Xor:
			regs[ins.Dst] ^= uint64(ins.Constant)
		case ins.OpCode.ALUOp() == asm.Sub:
			regs[ins.Dst] -= uint64(ins.Constant)
		default:
			t.Fatalf("unexpected instruction %v", ins)
		}
	}
	if executed != ALULoopExecuted {
		t.Errorf("executed %d instructions, ALULoopExecuted = %d", executed, ALULoopExecuted)
	}
	if got := uint32(regs[0]); got != ALULoopResult() {
		t.Errorf("r0 = %#x, ALULoopResult() = %#x", got, ALULoopResult())
	}
}

func TestSpec_Fresh(t *testing.T) {
	a, b := Spec(), Spec()
	a.Programs[ALULoop].Instructions[0].Constant = 7
	if b.Programs[ALULoop].Instructions[0].Constant != 0 {
		t.Error("Spec returned shared instructions")
	}
}
