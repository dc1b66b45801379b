package vm_test

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

const minI64 = uint64(1) << 63

func TestMachine_Run_ALU(t *testing.T) {
	for _, tc := range []struct {
		name  string
		insns []asm.Instruction
		want  uint64
	}{
		{"add64 imm", []asm.Instruction{asm.Mov.Imm(asm.R0, 1), asm.Add.Imm(asm.R0, 2)}, 3},
		{"add64 imm sign-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, 0), asm.Add.Imm(asm.R0, -1)}, math.MaxUint64},
		{"add32 imm zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, 0), asm.Add.Imm32(asm.R0, -1)}, 0xffffffff},
		{"add32 drops high bits", []asm.Instruction{imm64(asm.R0, 0x1_ffff_ffff), asm.Add.Imm32(asm.R0, 1)}, 0},
		{"add64 reg", []asm.Instruction{imm64(asm.R0, 0xffff_ffff), asm.Mov.Imm(asm.R1, 1), asm.Add.Reg(asm.R0, asm.R1)}, 0x1_0000_0000},
		{"sub32 reg wraps", []asm.Instruction{asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R1, 1), asm.Sub.Reg32(asm.R0, asm.R1)}, 0xffffffff},
		{"mul32 overflow", []asm.Instruction{asm.Mov.Imm32(asm.R0, math.MinInt32), asm.Mul.Imm32(asm.R0, 2)}, 0},
		{"mul64 reg", []asm.Instruction{asm.Mov.Imm(asm.R0, -3), asm.Mov.Imm(asm.R1, 5), asm.Mul.Reg(asm.R0, asm.R1)}, uint64(1<<64 - 15)},
		{"div64 unsigned", []asm.Instruction{asm.Mov.Imm(asm.R0, -1), asm.Div.Imm(asm.R0, 2)}, math.MaxInt64},
		{"div32 reg", []asm.Instruction{imm64(asm.R0, 0xff_0000_0064), asm.Mov.Imm(asm.R1, 7), asm.Div.Reg32(asm.R0, asm.R1)}, 14},
		{"div64 reg by zero", []asm.Instruction{asm.Mov.Imm(asm.R0, 9), asm.Mov.Imm(asm.R1, 0), asm.Div.Reg(asm.R0, asm.R1)}, 0},
		{"div32 reg by zero (low half)", []asm.Instruction{asm.Mov.Imm(asm.R0, 9), imm64(asm.R1, 1<<32), asm.Div.Reg32(asm.R0, asm.R1)}, 0},
		{"div64 imm by zero", []asm.Instruction{asm.Mov.Imm(asm.R0, 9), asm.Div.Imm(asm.R0, 0)}, 0},
		{"div32 imm by zero", []asm.Instruction{asm.Mov.Imm(asm.R0, 9), asm.Div.Imm32(asm.R0, 0)}, 0},
		{"mod64 reg", []asm.Instruction{asm.Mov.Imm(asm.R0, 17), asm.Mov.Imm(asm.R1, 5), asm.Mod.Reg(asm.R0, asm.R1)}, 2},
		{"mod64 reg by zero keeps dst", []asm.Instruction{asm.Mov.Imm(asm.R0, -9), asm.Mov.Imm(asm.R1, 0), asm.Mod.Reg(asm.R0, asm.R1)}, uint64(1<<64 - 9)},
		{"mod32 reg by zero zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -9), asm.Mov.Imm(asm.R1, 0), asm.Mod.Reg32(asm.R0, asm.R1)}, 0xffff_fff7},
		{"mod64 imm by zero keeps dst", []asm.Instruction{asm.Mov.Imm(asm.R0, -9), asm.Mod.Imm(asm.R0, 0)}, uint64(1<<64 - 9)},
		{"mod32 imm by zero zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -9), asm.Mod.Imm32(asm.R0, 0)}, 0xffff_fff7},
		{"mod32 imm by zero, dst not r0", []asm.Instruction{asm.Mov.Imm(asm.R0, 7), asm.Mov.Imm(asm.R3, -9), asm.Mod.Imm32(asm.R3, 0), asm.Mov.Reg(asm.R0, asm.R3)}, 0xffff_fff7},
		{"sdiv64", []asm.Instruction{asm.Mov.Imm(asm.R0, -7), asm.SDiv.Imm(asm.R0, 2)}, uint64(1<<64 - 3)},
		{"sdiv32", []asm.Instruction{asm.Mov.Imm(asm.R0, -7), asm.SDiv.Imm32(asm.R0, 2)}, 0xffff_fffd},
		{"sdiv64 INT_MIN by -1", []asm.Instruction{imm64(asm.R0, minI64), asm.Mov.Imm(asm.R1, -1), asm.SDiv.Reg(asm.R0, asm.R1)}, minI64},
		{"sdiv32 INT_MIN by -1", []asm.Instruction{asm.Mov.Imm32(asm.R0, math.MinInt32), asm.SDiv.Imm32(asm.R0, -1)}, 0x8000_0000},
		{"sdiv64 by zero reg", []asm.Instruction{asm.Mov.Imm(asm.R0, -7), asm.Mov.Imm(asm.R1, 0), asm.SDiv.Reg(asm.R0, asm.R1)}, 0},
		{"smod64 sign of dividend", []asm.Instruction{asm.Mov.Imm(asm.R0, -7), asm.SMod.Imm(asm.R0, 2)}, math.MaxUint64},
		{"smod32 sign of dividend", []asm.Instruction{asm.Mov.Imm(asm.R0, 7), asm.SMod.Imm32(asm.R0, -2)}, 1},
		{"smod64 INT_MIN by -1", []asm.Instruction{imm64(asm.R0, minI64), asm.SMod.Imm(asm.R0, -1)}, 0},
		{"smod32 by zero reg zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -7), asm.Mov.Imm(asm.R1, 0), asm.SMod.Reg32(asm.R0, asm.R1)}, 0xffff_fff9},
		{"or/and/xor", []asm.Instruction{asm.Mov.Imm(asm.R0, 0xf0), asm.Or.Imm(asm.R0, 0x0f), asm.And.Imm(asm.R0, 0x3c), asm.Xor.Imm(asm.R0, 0xff)}, 0xc3},
		{"xor32 reg", []asm.Instruction{imm64(asm.R0, 0xffff_0000_ffff_0000), imm64(asm.R1, 0xffff_ffff), asm.Xor.Reg32(asm.R0, asm.R1)}, 0xffff},
		{"lsh64 reg masks to 63", []asm.Instruction{asm.Mov.Imm(asm.R0, 1), asm.Mov.Imm(asm.R1, 65), asm.LSh.Reg(asm.R0, asm.R1)}, 2},
		{"lsh32 reg masks to 31", []asm.Instruction{asm.Mov.Imm(asm.R0, 1), asm.Mov.Imm(asm.R1, 33), asm.LSh.Reg32(asm.R0, asm.R1)}, 2},
		{"lsh32 imm masks to 31", []asm.Instruction{asm.Mov.Imm(asm.R0, 0x11), asm.LSh.Imm32(asm.R0, 60)}, 0x1000_0000},
		{"lsh32 imm by 0 zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -2), asm.LSh.Imm32(asm.R0, 0)}, 0xffff_fffe},
		{"rsh32 imm by 32 zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -2), asm.RSh.Imm32(asm.R0, 32)}, 0xffff_fffe},
		{"arsh32 imm by 0 zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -2), asm.ArSh.Imm32(asm.R0, 0)}, 0xffff_fffe},
		{"lsh32 imm zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -1), asm.LSh.Imm32(asm.R0, 4)}, 0xffff_fff0},
		{"lsh64 imm negative masks", []asm.Instruction{asm.Mov.Imm(asm.R0, 1), asm.LSh.Imm(asm.R0, -60)}, 0x10},
		{"rsh64", []asm.Instruction{asm.Mov.Imm(asm.R0, -1), asm.RSh.Imm(asm.R0, 60)}, 0xf},
		{"rsh32 ignores high half", []asm.Instruction{asm.Mov.Imm(asm.R0, -1), asm.RSh.Imm32(asm.R0, 28)}, 0xf},
		{"arsh64", []asm.Instruction{imm64(asm.R0, minI64), asm.ArSh.Imm(asm.R0, 60)}, 0xffff_ffff_ffff_fff8},
		{"arsh32 sign of bit 31", []asm.Instruction{imm64(asm.R0, 0x8000_0000), asm.ArSh.Imm32(asm.R0, 4)}, 0xf800_0000},
		{"arsh32 reg masks", []asm.Instruction{asm.Mov.Imm32(asm.R0, math.MinInt32), asm.Mov.Imm(asm.R1, 36), asm.ArSh.Reg32(asm.R0, asm.R1)}, 0xf800_0000},
		{"neg64", []asm.Instruction{asm.Mov.Imm(asm.R0, 5), asm.Neg.Imm(asm.R0, 0)}, uint64(1<<64 - 5)},
		{"neg32", []asm.Instruction{asm.Mov.Imm(asm.R0, 5), asm.Neg.Imm32(asm.R0, 0)}, 0xffff_fffb},
		{"mov64 imm sign-extends", []asm.Instruction{asm.Mov.Imm(asm.R0, -2)}, uint64(1<<64 - 2)},
		{"mov32 imm zero-extends", []asm.Instruction{asm.Mov.Imm32(asm.R0, -2)}, 0xffff_fffe},
		{"mov32 reg zero-extends", []asm.Instruction{asm.Mov.Imm(asm.R1, -2), asm.Mov.Reg32(asm.R0, asm.R1)}, 0xffff_fffe},
		{"movsx8 to 64", []asm.Instruction{asm.Mov.Imm(asm.R1, 0x180), asm.MovSX8.Reg(asm.R0, asm.R1)}, 0xffff_ffff_ffff_ff80},
		{"movsx16 to 64", []asm.Instruction{asm.Mov.Imm(asm.R1, 0x18000), asm.MovSX16.Reg(asm.R0, asm.R1)}, 0xffff_ffff_ffff_8000},
		{"movsx32 to 64", []asm.Instruction{imm64(asm.R1, 0x1_8000_0000), asm.MovSX32.Reg(asm.R0, asm.R1)}, 0xffff_ffff_8000_0000},
		{"movsx8 to 32", []asm.Instruction{asm.Mov.Imm(asm.R1, 0x80), asm.MovSX8.Reg32(asm.R0, asm.R1)}, 0xffff_ff80},
		{"movsx16 to 32", []asm.Instruction{asm.Mov.Imm(asm.R1, 0x7fff), asm.MovSX16.Reg32(asm.R0, asm.R1)}, 0x7fff},
		{"le16 truncates", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.HostTo(asm.LE, asm.R0, asm.Half)}, 0x7788},
		{"le32 truncates", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.HostTo(asm.LE, asm.R0, asm.Word)}, 0x55667788},
		{"le64 keeps", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.HostTo(asm.LE, asm.R0, asm.DWord)}, 0x1122334455667788},
		{"be16 swaps", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.HostTo(asm.BE, asm.R0, asm.Half)}, 0x8877},
		{"be32 swaps", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.HostTo(asm.BE, asm.R0, asm.Word)}, 0x88776655},
		{"be64 swaps", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.HostTo(asm.BE, asm.R0, asm.DWord)}, 0x8877665544332211},
		{"bswap16", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.BSwap(asm.R0, asm.Half)}, 0x8877},
		{"bswap32", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.BSwap(asm.R0, asm.Word)}, 0x88776655},
		{"bswap64", []asm.Instruction{imm64(asm.R0, 0x1122334455667788), asm.BSwap(asm.R0, asm.DWord)}, 0x8877665544332211},
		{"ld_imm64", []asm.Instruction{imm64(asm.R0, 0xdead_beef_cafe_f00d)}, 0xdead_beef_cafe_f00d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r0(t, tc.insns...); got != tc.want {
				t.Errorf("r0 = %#x, want %#x", got, tc.want)
			}
		})
	}
}

// refALU is a deliberately naive model of one ALU instruction, written
// from RFC 9669's prose rather than from the interpreter.
func refALU(ins asm.Instruction, r *[11]uint64) {
	op := ins.OpCode
	is64 := op.Class() == asm.ALU64Class
	d := r[ins.Dst]
	var s uint64
	if op.ALUOp() != asm.Swap {
		if op.Source() == asm.RegSource {
			s = r[ins.Src]
		} else {
			s = uint64(ins.Constant) // sign-extended by asm
		}
	}
	if !is64 && op.ALUOp() != asm.Swap { // byte swaps work on the whole register
		d, s = uint64(uint32(d)), uint64(uint32(s))
	}
	width := uint64(32)
	if is64 {
		width = 64
	}
	var v uint64
	switch op.ALUOp() {
	case asm.Add:
		v = d + s
	case asm.Sub:
		v = d - s
	case asm.Mul:
		v = d * s
	case asm.Div:
		if s != 0 {
			v = d / s
		}
	case asm.SDiv:
		switch {
		case s == 0:
		case is64:
			v = uint64(int64(d) / int64(s))
		default:
			v = uint64(int32(d) / int32(s))
		}
	case asm.Mod:
		v = d
		if s != 0 {
			v = d % s
		}
	case asm.SMod:
		v = d
		switch {
		case s == 0:
		case is64:
			v = uint64(int64(d) % int64(s))
		default:
			v = uint64(int32(d) % int32(s))
		}
	case asm.Or:
		v = d | s
	case asm.And:
		v = d & s
	case asm.Xor:
		v = d ^ s
	case asm.LSh:
		v = d << (s % width)
	case asm.RSh:
		v = d >> (s % width)
	case asm.ArSh:
		if is64 {
			v = uint64(int64(d) >> (s % width))
		} else {
			v = uint64(int32(d) >> (s % width))
		}
	case asm.Neg:
		v = -d
	case asm.Mov:
		v = s
	case asm.MovSX8:
		v = uint64(int8(s))
	case asm.MovSX16:
		v = uint64(int16(s))
	case asm.MovSX32:
		v = uint64(int32(s))
	case asm.Swap:
		n := uint(ins.Constant)
		switch {
		case op.Class() == asm.ALUClass && op.Endianness() == asm.LE:
			v = d & (math.MaxUint64 >> (64 - n))
		default:
			v = bits.ReverseBytes64(d) >> (64 - n)
		}
		r[ins.Dst] = v
		return
	}
	if !is64 {
		v = uint64(uint32(v))
	}
	r[ins.Dst] = v
}

var interesting = []int64{0, 1, 2, 7, -1, -2, 31, 32, 33, 63, 64, 65, math.MaxInt32, math.MinInt32,
	math.MaxInt64, math.MinInt64, 0xffff, 0x8000, 0x80, -0x80}

func randALU(rng *rand.Rand) asm.Instruction {
	dst := asm.Register(rng.IntN(9))
	src := asm.Register(rng.IntN(9))
	imm := int32(interesting[rng.IntN(len(interesting))])
	if rng.IntN(3) == 0 {
		imm = int32(rng.Uint32())
	}
	switch rng.IntN(8) {
	case 0:
		return asm.BSwap(dst, []asm.Size{asm.Half, asm.Word, asm.DWord}[rng.IntN(3)])
	case 1:
		return asm.HostTo([]asm.Endianness{asm.LE, asm.BE}[rng.IntN(2)], dst, []asm.Size{asm.Half, asm.Word, asm.DWord}[rng.IntN(3)])
	case 2:
		mov := []asm.ALUOp{asm.MovSX8, asm.MovSX16, asm.MovSX32}[rng.IntN(3)]
		if mov != asm.MovSX32 && rng.IntN(2) == 0 {
			return mov.Reg32(dst, src)
		}
		return mov.Reg(dst, src)
	case 3:
		if rng.IntN(2) == 0 {
			return asm.Neg.Imm32(dst, 0)
		}
		return asm.Neg.Imm(dst, 0)
	}
	op := []asm.ALUOp{asm.Add, asm.Sub, asm.Mul, asm.Div, asm.SDiv, asm.Or, asm.And, asm.LSh, asm.RSh,
		asm.Mod, asm.SMod, asm.Xor, asm.Mov, asm.ArSh}[rng.IntN(14)]
	switch rng.IntN(4) {
	case 0:
		return op.Imm(dst, imm)
	case 1:
		return op.Imm32(dst, imm)
	case 2:
		return op.Reg(dst, src)
	default:
		return op.Reg32(dst, src)
	}
}

// TestMachine_Run_ALUReference runs random straight-line ALU programs and
// compares every register with refALU.
func TestMachine_Run_ALUReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := vm.NewMachine()
	for range 20000 {
		var regs [11]uint64
		var insns asm.Instructions
		for r := asm.R0; r <= asm.R8; r++ {
			v := uint64(interesting[rng.IntN(len(interesting))])
			if rng.IntN(2) == 0 {
				v = rng.Uint64()
			}
			regs[r] = v
			insns = append(insns, imm64(r, v))
		}
		for range 1 + rng.IntN(20) {
			ins := randALU(rng)
			refALU(ins, &regs)
			insns = append(insns, ins)
		}
		checkRegs(t, m, insns, &regs)
	}
}

// checkRegs runs insns (straight-line code without an exit) followed by a
// dump of r0-r8 into the packet, and compares the dump with want.
func checkRegs(t *testing.T, m *vm.Machine, insns asm.Instructions, want *[11]uint64) {
	t.Helper()
	insns = append(insns, imm64(asm.R9, vm.PacketAddr(0)))
	for r := asm.R0; r <= asm.R8; r++ {
		insns = append(insns, asm.StoreMem(asm.R9, int16(8*r), r, asm.DWord))
	}
	insns = append(insns, asm.Return())
	p := load(t, insns, vm.Options{})
	out := make([]byte, 9*8)
	if err := m.SetPacket(out, 0, 0, len(out)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(p); err != nil {
		t.Fatal(err)
	}
	for r := range 9 {
		if got := binary.LittleEndian.Uint64(out[8*r:]); got != want[r] {
			t.Fatalf("r%d = %#x, reference %#x\n%v", r, got, want[r], insns)
		}
	}
}
