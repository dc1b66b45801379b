package benchprog

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Program names in the spec returned by Spec.
const (
	// ALULoop is a counted loop of ALU instructions, the project's
	// ns/insn anchor (userspace-runtimes.md 6.1).
	ALULoop = "alu_loop"
	// Floor is "r0 = 0; exit", the per-run overhead of a test run.
	Floor = "floor"
)

// ALULoopIterations is how often ALULoop's body runs.
const ALULoopIterations = 1000

// ALULoopExecuted is the number of instructions one ALULoop run executes:
// two moves, four instructions per iteration, the exit.
const ALULoopExecuted = 2 + 4*ALULoopIterations + 1

const aluLoopXor = 0x5a5a

// Spec returns a fresh collection spec with the ALULoop, Floor and JHash programs
// (SCHED_CLS, no maps).
func Spec() *ebpf.CollectionSpec {
	loop := asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.Mov.Imm(asm.R1, ALULoopIterations),
		asm.Add.Reg(asm.R0, asm.R1).WithSymbol("loop"),
		asm.Xor.Imm(asm.R0, aluLoopXor),
		asm.Sub.Imm(asm.R1, 1),
		asm.JNE.Imm(asm.R1, 0, "loop"),
		asm.Return(),
	}
	floor := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	prog := func(name string, insns asm.Instructions) *ebpf.ProgramSpec {
		return &ebpf.ProgramSpec{Name: name, Type: ebpf.SchedCLS, Instructions: insns, License: "GPL"}
	}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{},
		Programs: map[string]*ebpf.ProgramSpec{
			ALULoop: prog(ALULoop, loop),
			Floor:   prog(Floor, floor),
			JHash:   prog(JHash, jhashSpec()),
		},
	}
}

// ALULoopResult is the value ALULoop returns, computed the way the
// instructions do (64-bit registers, the low 32 bits are the retval).
func ALULoopResult() uint32 {
	var r0 uint64
	for r1 := uint64(ALULoopIterations); r1 != 0; r1-- {
		r0 += r1
		r0 ^= aluLoopXor
	}
	return uint32(r0)
}
