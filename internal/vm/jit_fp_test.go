package vm

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// TestJIT_FramePointerOperands runs r10 in every position an op can read
// it, on both engines: compiled code keeps r10 in Machine.regs, not in a
// register, and loads it where an op reads it as a value (ALU and move
// sources, jump operands, the value of a store, an atomic's address or
// operand, LD_IND's offset), in the caller's and a callee's frame, and
// keeps the instruction budget in a register through loops, calls and
// returns. r0, the error and Executed must be the interpreter's.
func TestJIT_FramePointerOperands(t *testing.T) {
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		limit uint64
	}{
		{"alu sources", asm.Instructions{
			asm.Mov.Reg(asm.R0, asm.RFP),
			asm.Mov.Reg32(asm.R1, asm.RFP),
			asm.Add.Reg(asm.R0, asm.R1),
			asm.Sub.Reg32(asm.R1, asm.RFP),
			asm.Xor.Reg(asm.R0, asm.RFP),
			asm.Add.Reg32(asm.R0, asm.RFP),
			asm.Mul.Reg(asm.R1, asm.RFP),
			asm.Add.Reg(asm.R0, asm.R1),
			asm.Mov.Imm(asm.R2, 1),
			asm.LSh.Reg(asm.R2, asm.RFP), // shift count = r10 & 63
			asm.Add.Reg(asm.R0, asm.R2),
			asm.Mov.Imm(asm.R3, -1),
			asm.RSh.Reg32(asm.R3, asm.RFP),
			asm.Add.Reg(asm.R0, asm.R3),
			asm.MovSX16.Reg(asm.R4, asm.RFP),
			asm.Add.Reg(asm.R0, asm.R4),
			asm.MovSX8.Reg32(asm.R5, asm.RFP),
			asm.Add.Reg(asm.R0, asm.R5),
		}, 0},
		{"division by r10", asm.Instructions{
			asm.LoadImm(asm.R0, 0x123456789abcdef, asm.DWord),
			asm.Div.Reg(asm.R0, asm.RFP),
			asm.LoadImm(asm.R1, -0x123456789abcdef, asm.DWord),
			asm.SMod.Reg(asm.R1, asm.RFP),
			asm.Add.Reg(asm.R0, asm.R1),
			asm.Mov.Imm(asm.R2, 12345),
			asm.Mod.Reg32(asm.R2, asm.RFP),
			asm.Add.Reg(asm.R0, asm.R2),
		}, 0},
		{"jumps on r10", asm.Instructions{
			asm.Mov.Imm(asm.R0, 1),
			asm.Mov.Reg(asm.R1, asm.RFP),
			asm.JNE.Reg(asm.R1, asm.RFP, "bad"),
			asm.JEq.Reg(asm.RFP, asm.R1, "a"),
			asm.Ja.Label("bad"),
			asm.JEq.Imm(asm.RFP, 0, "bad").WithSymbol("a"),
			asm.JSet.Imm32(asm.RFP, 0x200, "b"), // r10's low half is 0x200
			asm.Add.Imm(asm.R0, 2),
			asm.JGT.Reg32(asm.RFP, asm.R0, "c").WithSymbol("b"),
			asm.Ja.Label("bad"),
			asm.JEq.Reg(asm.RFP, asm.RFP, "out").WithSymbol("c"),
			asm.Mov.Imm(asm.R0, 99).WithSymbol("bad"),
			asm.Mov.Reg(asm.R0, asm.R0).WithSymbol("out"),
		}, 0},
		{"r10 stored and used as an address", asm.Instructions{
			asm.StoreMem(asm.RFP, -8, asm.RFP, asm.DWord), // the frame: inline
			asm.StoreMem(asm.RFP, -12, asm.RFP, asm.Word), // low half
			asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),   // = r10
			asm.LoadMem(asm.R1, asm.RFP, -12, asm.Word),   // = r10's low half
			asm.Add.Reg(asm.R0, asm.R1),                   //
			asm.LoadImm(asm.R2, int64(PacketAddr(0)), asm.DWord),
			asm.StoreMem(asm.R2, 0, asm.RFP, asm.DWord), // the packet: Go
			asm.LoadMem(asm.R3, asm.R2, 4, asm.Word),    // r10's high half
			asm.Add.Reg(asm.R0, asm.R3),                 //
			asm.Mov.Imm(asm.R5, 5),
			asm.StoreMem(asm.RFP, -16, asm.R5, asm.DWord),
			asm.AddAtomic.Mem(asm.RFP, asm.RFP, asm.DWord, -16), // operand r10: Go
			asm.Mov.Imm(asm.R4, 3),
			asm.FetchAdd.Mem(asm.RFP, asm.R4, asm.DWord, -16), // address r10
			asm.Add.Reg(asm.R0, asm.R4),
			asm.LoadMem(asm.R4, asm.RFP, -16, asm.DWord),
			asm.Add.Reg(asm.R0, asm.R4),
		}, 0},
		{"r10 outside its frame faults", asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.LoadMem(asm.R0, asm.RFP, 8, asm.DWord),
		}, 0},
		{"LD_IND through r10", asm.Instructions{
			asm.Mov.Imm(asm.R0, 7),
			asm.LoadInd(asm.R0, asm.RFP, -0x1fe, asm.Half), // offset 2: in the packet
			asm.Mov.Reg(asm.R6, asm.R0),
			asm.LoadInd(asm.R0, asm.RFP, 0, asm.Byte), // past the end: r0 = 0, the end
			asm.Mov.Reg(asm.R0, asm.R6),
		}, 0},
		{"r10 in a callee's frame, in a loop", asm.Instructions{
			asm.Mov.Imm(asm.R6, 0),
			asm.Mov.Imm(asm.R7, 5),
			asm.Call.Label("sub").WithSymbol("loop"),
			asm.Add.Reg(asm.R6, asm.R0),
			asm.Sub.Reg(asm.R6, asm.RFP),
			asm.Add.Imm(asm.R7, -1),
			asm.JNE.Imm(asm.R7, 0, "loop"),
			asm.Mov.Reg(asm.R0, asm.R6),
			asm.Return(),
			asm.Mov.Reg(asm.R0, asm.RFP).WithSymbol("sub"),
			asm.StoreMem(asm.RFP, -8, asm.RFP, asm.DWord),
			asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
			asm.Add.Reg(asm.R0, asm.R1),
		}, 0},
		{"limit inside the callee loop", asm.Instructions{
			asm.Mov.Imm(asm.R6, 0),
			asm.Call.Label("sub").WithSymbol("loop"),
			asm.Add.Reg(asm.R6, asm.R0),
			asm.Ja.Label("loop"),
			asm.Return(),
			asm.Mov.Reg(asm.R0, asm.RFP).WithSymbol("sub"),
			asm.JEq.Imm(asm.R0, 0, "never"),
			asm.Add.Imm(asm.R0, 1),
			asm.Mov.Reg(asm.R0, asm.R0).WithSymbol("never"),
		}, 97},
	} {
		var want string
		for _, eng := range []Engine{EngineInterp, EngineJIT} {
			p, err := Load(append(c.insns, asm.Return()), Options{Engine: eng})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if ok, why := p.Compiled(); eng == EngineJIT && !ok {
				t.Fatalf("%s: not compiled: %s", c.name, why)
			}
			m := NewMachine()
			if err := m.SetPacket([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 0, 0, 16); err != nil {
				t.Fatal(err)
			}
			m.SetLimit(c.limit)
			r0, err := m.Run(p)
			got := fmt.Sprintf("r0 %#x, err %v, executed %d", r0, err, m.Executed())
			if eng == EngineInterp {
				want = got
				continue
			}
			if got != want {
				t.Errorf("%s: compiled %s; interpreted %s", c.name, got, want)
			}
		}
		t.Logf("%s: %s", c.name, want)
	}
}

// TestJIT_FreshRegisters checks that a run starts with r0 and r2-r9 zero
// and r1 the context (0 without one) however the last run on the Machine
// left them: compiled code's fresh entry zeroes them itself, and Go no
// longer clears Machine.regs before it.
func TestJIT_FreshRegisters(t *testing.T) {
	dirty := asm.Instructions{asm.Mov.Imm(asm.R0, 7)}
	for r := asm.R1; r <= asm.R9; r++ {
		dirty = append(dirty, asm.Mov.Imm(r, int32(r)*0x1111))
	}
	read := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R0)}
	for r := asm.R2; r <= asm.R9; r++ {
		read = append(read, asm.Or.Reg(asm.R6, r))
	}
	read = append(read, asm.LSh.Imm(asm.R6, 32), asm.Mov.Reg(asm.R0, asm.R1), asm.Or.Reg(asm.R0, asm.R6))
	for _, eng := range []Engine{EngineInterp, EngineJIT} {
		pd, err := Load(append(dirty, asm.Return()), Options{Engine: eng})
		if err != nil {
			t.Fatal(err)
		}
		pr, err := Load(append(read, asm.Return()), Options{Engine: eng})
		if err != nil {
			t.Fatal(err)
		}
		m := NewMachine()
		for i := 0; i < 3; i++ {
			if _, err := m.RunCtx(pd); err != nil {
				t.Fatal(err)
			}
			r0, err := m.RunCtx(pr)
			if err != nil || r0 != 0 {
				t.Errorf("%v, run %d: r0 = %#x, %v; want r0-r9 zero", eng, i, r0, err)
			}
		}
	}
}
