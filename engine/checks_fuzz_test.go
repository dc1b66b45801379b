package engine

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// FuzzAnalyze: the load-time checks run before the VM validates a program,
// so they take any bytecode without panicking or running away.
func FuzzAnalyze(f *testing.F) {
	seed := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 76, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 80, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.StoreMem(asm.R10, -8, asm.R4, asm.DWord),
		asm.LoadMem(asm.R5, asm.R10, -8, asm.DWord),
		asm.LoadMem(asm.R0, asm.R2, 12, asm.Half),
		asm.JLT.Imm(asm.R0, 4, "out"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
	var buf bytes.Buffer
	if err := seed.Marshal(&buf, binary.LittleEndian); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, raw []byte) {
		var insns asm.Instructions
		r := bytes.NewReader(raw)
		for r.Len() > 0 {
			var ins asm.Instruction
			if err := ins.Unmarshal(r, binary.LittleEndian, "linux"); err != nil {
				break
			}
			insns = append(insns, ins)
		}
		analyze(insns, func(int32) bool { return true })
	})
}
