package vm

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// varParse is a cursor parser: parseProgram's check on data, a length
// read from the packet, the pointer (r2) moved by it at the add labelled
// "add", a bounds check of the pointer plus n against data_end, then
// parseProgram's load at off through the pointer.
func varParse(check asm.Instruction, n int32, off int16, between ...asm.Instruction) asm.Instructions {
	cursor := append(varLength(),
		asm.Add.Reg(asm.R2, asm.R5).WithSymbol("add"),
		asm.Mov.Reg(asm.R6, asm.R2),
		asm.Add.Imm(asm.R6, n),
		check,
	)
	return parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, off, append(cursor, between...)...)
}

// varLength reads a length from the packet into r5, as an IHL.
func varLength() asm.Instructions {
	return asm.Instructions{asm.LoadMem(asm.R5, asm.R2, 0, asm.Byte), asm.And.Imm(asm.R5, 60)}
}

// symPC is the op index of the instruction labelled sym.
func symPC(t *testing.T, p *Program, insns asm.Instructions, sym string) int {
	t.Helper()
	raw := 0
	for _, ins := range insns {
		if ins.Symbol() == sym {
			for i, r := range p.insn {
				if int(r) == raw {
					return i
				}
			}
		}
		raw += int(ins.Size() / asm.InstructionSize)
	}
	t.Fatalf("no op %q", sym)
	return -1
}

// TestPktVarProofs checks the proofs through pointers moved by a
// register: room on the right edge only, its exact end, offsets before
// the checked pointer, and what forgets the room.
func TestPktVarProofs(t *testing.T) {
	gt := func(n int32, off int16, between ...asm.Instruction) asm.Instructions {
		return varParse(asm.JGT.Reg(asm.R6, asm.R3, "out"), n, off, between...)
	}
	cases := []pktCase{
		{"p+20 > end goes out", gt(20, 18), true},
		{"at the pointer itself", gt(20, 0), true},
		{"one byte past the room", gt(20, 19), false},
		{"before the pointer", gt(20, -1), false},
		{"end < p+20 goes out", varParse(asm.JLT.Reg(asm.R3, asm.R6, "out"), 20, 18), true},
		{"p+20 <= end falls out (the wrong edge)", varParse(asm.JLE.Reg(asm.R6, asm.R3, "out"), 20, 18), false},
		{"a signed compare", varParse(asm.JSGT.Reg(asm.R6, asm.R3, "out"), 20, 18), false},
		{"the pointer moved back, read at the same place", gt(20, 22, asm.Add.Imm(asm.R2, -4)), true},
		{"the pointer moved back, read before the room", gt(20, 2, asm.Add.Imm(asm.R2, -4)), false},
		{"a helper call after the check", gt(20, 18, asm.BuiltinFunc(5).Call()), false},
		{"a 32-bit op on the pointer", gt(20, 18, asm.Add.Imm32(asm.R2, 0)), false},
		{"data loaded again: the room is the pointer's", gt(20, 18, asm.LoadMem(asm.R7, asm.R1, 0, asm.Word), asm.Mov.Imm(asm.R0, 0)), true},
		{"the pointer moved by a register again", gt(20, 0, asm.Add.Reg(asm.R2, asm.R5), asm.Mov.Imm(asm.R0, 0)), false},
		{"a path that skips the check", gt(20, 18, asm.JEq.Imm(asm.R5, 0, "at")), true},
	}
	checkPktProofs(t, cases)
	for _, c := range cases {
		p, err := Load(c.insns, Options{PacketPointers: testPktPtrs})
		if err != nil {
			continue // the helper call: checkPktProofs loaded it
		}
		if _, guard := pktProofs(p, stackProofs(p), testPktPtrs); guard == nil || guard[symPC(t, p, c.insns, "add")] != pktVar {
			t.Errorf("%s: the add is not checked", c.name)
		}
	}
}

// TestPktVarNotProven covers the forms that must not prove room through
// a variable pointer: a compare from a pointer less a constant (it
// could wrap), a join of two pointers checked at different sites, and an
// add whose next op is also reached by a jump (no place for the check).
func TestPktVarNotProven(t *testing.T) {
	cat := func(rest ...asm.Instruction) asm.Instructions {
		return parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 0, append(varLength(), rest...)...)
	}
	checkPktProofs(t, []pktCase{
		{"compared less a constant", cat(
			asm.Add.Reg(asm.R2, asm.R5),
			asm.Mov.Reg(asm.R6, asm.R2),
			asm.Add.Imm(asm.R6, -4), // p-4 > end-8 would be room 4
			asm.Add.Imm(asm.R3, -8),
			asm.JGT.Reg(asm.R6, asm.R3, "out"),
		), false},
		{"two guard sites joined", cat(
			asm.JEq.Imm(asm.R5, 0, "other"),
			asm.Add.Reg(asm.R2, asm.R5),
			asm.Mov.Reg(asm.R6, asm.R2),
			asm.Add.Imm(asm.R6, 20),
			asm.JGT.Reg(asm.R6, asm.R3, "out"),
			asm.Ja.Label("at"),
			asm.Add.Reg(asm.R2, asm.R5).WithSymbol("other"),
			asm.Mov.Reg(asm.R6, asm.R2),
			asm.Add.Imm(asm.R6, 20),
			asm.JGT.Reg(asm.R6, asm.R3, "out"),
		), false},
		{"the op after the add is a jump target", cat(
			asm.JEq.Imm(asm.R5, 0, "next"),
			asm.Add.Reg(asm.R2, asm.R5),
			asm.Mov.Reg(asm.R6, asm.R2).WithSymbol("next"),
			asm.Add.Imm(asm.R6, 20),
			asm.JGT.Reg(asm.R6, asm.R3, "out"),
		), false},
	})
}

// TestJIT_PacketVarPointerOutside moves the packet pointer by a value the
// context holds, outside the window: below it, and so far above that the
// bounds check's sum wraps and passes. The check compiled code makes on
// the moved pointer sends the frame to the interpreter, which faults
// where the interpreter alone faults; inside the window both engines
// read the packet.
func TestJIT_PacketVarPointerOutside(t *testing.T) {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.DWord),
		asm.Add.Reg(asm.R2, asm.R5),
		asm.Mov.Reg(asm.R6, asm.R2),
		asm.Add.Imm(asm.R6, 2),
		asm.JGT.Reg(asm.R6, asm.R3, "out"),
		asm.LoadMem(asm.R0, asm.R2, 0, asm.Half),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 7).WithSymbol("out"),
		asm.Return(),
	}
	pkt := make([]byte, 48)
	pkt[40], pkt[41] = 0x34, 0x12
	data := uint32(PacketAddr(0))
	for _, c := range []struct {
		name  string
		delta uint64
		want  uint64
		fault bool
	}{
		{"inside the window", 40, 0x1234, false},
		{"at the window's end", 48, 7, false},
		{"before the window", 1<<64 - 16, 0, true},
		{"wrapping to 2^64-1", 1<<64 - 1 - uint64(data), 0, true},
	} {
		ctx := make([]byte, 16)
		binary.LittleEndian.PutUint32(ctx[0:], data)
		binary.LittleEndian.PutUint32(ctx[4:], uint32(PacketAddr(48)))
		binary.LittleEndian.PutUint64(ctx[8:], c.delta)
		checkBothEngines(t, c.name, insns, pkt, ctx, c.want, c.fault)
	}
}
