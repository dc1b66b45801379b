package vm_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// refCond is the naive meaning of a conditional jump.
func refCond(op asm.JumpOp, a, b uint64, is32 bool) bool {
	if is32 {
		a, b = uint64(uint32(a)), uint64(uint32(b))
	}
	sa, sb := int64(a), int64(b)
	if is32 {
		sa, sb = int64(int32(a)), int64(int32(b))
	}
	switch op {
	case asm.JEq:
		return a == b
	case asm.JNE:
		return a != b
	case asm.JGT:
		return a > b
	case asm.JGE:
		return a >= b
	case asm.JLT:
		return a < b
	case asm.JLE:
		return a <= b
	case asm.JSGT:
		return sa > sb
	case asm.JSGE:
		return sa >= sb
	case asm.JSLT:
		return sa < sb
	case asm.JSLE:
		return sa <= sb
	case asm.JSet:
		return a&b != 0
	}
	panic(op)
}

var condOps = []asm.JumpOp{asm.JEq, asm.JNE, asm.JGT, asm.JGE, asm.JLT, asm.JLE, asm.JSGT, asm.JSGE, asm.JSLT, asm.JSLE, asm.JSet}

// branch returns 1 if the jump is taken, 0 if not.
func branch(t *testing.T, m *vm.Machine, jmp asm.Instruction, a, b uint64) uint64 {
	t.Helper()
	p := load(t, asm.Instructions{
		imm64(asm.R1, a),
		imm64(asm.R2, b),
		asm.Mov.Imm(asm.R0, 0),
		jmp,
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("taken"),
		asm.Return(),
	}, vm.Options{})
	v, err := m.Run(p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMachine_Run_JumpConditions(t *testing.T) {
	vals := []uint64{0, 1, 2, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001,
		math.MaxInt64, minI64, math.MaxUint64, math.MaxUint64 - 1, 0xffff_ffff_8000_0000}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		vals = append(vals, rng.Uint64())
	}
	m := vm.NewMachine()
	for _, op := range condOps {
		for _, a := range vals {
			for _, b := range vals {
				for _, form := range []struct {
					name string
					ins  asm.Instruction
					b    uint64 // the operand as the instruction sees it
					is32 bool
				}{
					{"reg", op.Reg(asm.R1, asm.R2, "taken"), b, false},
					{"reg32", op.Reg32(asm.R1, asm.R2, "taken"), b, true},
					{"imm", op.Imm(asm.R1, int32(b), "taken"), uint64(int64(int32(b))), false},
					{"imm32", op.Imm32(asm.R1, int32(b), "taken"), uint64(uint32(b)), true},
				} {
					want := uint64(0)
					if refCond(op, a, form.b, form.is32) {
						want = 1
					}
					if got := branch(t, m, form.ins, a, b); got != want {
						t.Fatalf("%v %s: a=%#x b=%#x: taken=%d, want %d", op, form.name, a, b, got, want)
					}
				}
			}
		}
	}
}

func TestMachine_Run_JumpImmSignExtension(t *testing.T) {
	// An immediate compared with a 64-bit register is sign-extended first,
	// so 0x80000000 means 0xffffffff80000000.
	m := vm.NewMachine()
	if got := branch(t, m, asm.JEq.Imm(asm.R1, math.MinInt32, "taken"), 0xffff_ffff_8000_0000, 0); got != 1 {
		t.Error("jeq imm did not sign-extend")
	}
	if got := branch(t, m, asm.JEq.Imm32(asm.R1, math.MinInt32, "taken"), 0x1234_5678_8000_0000, 0); got != 1 {
		t.Error("jeq32 imm compared the high half")
	}
}

func TestMachine_Run_JumpForms(t *testing.T) {
	for _, tc := range []struct {
		name  string
		insns asm.Instructions
		want  uint64
	}{
		{"ja forward", asm.Instructions{
			asm.Mov.Imm(asm.R0, 1),
			asm.Ja.Label("end"),
			asm.Mov.Imm(asm.R0, 2),
			asm.Return().WithSymbol("end"),
		}, 1},
		{"gotol (ja32) forward", asm.Instructions{
			asm.Mov.Imm(asm.R0, 1),
			asm.LongJump("end"),
			asm.Mov.Imm(asm.R0, 2),
			asm.Return().WithSymbol("end"),
		}, 1},
		{"backward loop", asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Mov.Imm(asm.R1, 10),
			asm.Add.Imm(asm.R0, 3).WithSymbol("loop"),
			asm.Sub.Imm(asm.R1, 1),
			asm.JNE.Imm(asm.R1, 0, "loop"),
			asm.Return(),
		}, 30},
		{"jump over ld_imm64", asm.Instructions{
			asm.Mov.Imm(asm.R0, 5),
			asm.Ja.Label("end"),
			imm64(asm.R0, 7),
			asm.Return().WithSymbol("end"),
		}, 5},
		{"exit not last", asm.Instructions{
			asm.Mov.Imm(asm.R0, 1),
			asm.Ja.Label("two"),
			asm.Return().WithSymbol("one"),
			asm.Add.Imm(asm.R0, 1).WithSymbol("two"),
			asm.Ja.Label("one"),
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := vm.NewMachine().Run(load(t, tc.insns, vm.Options{}))
			if err != nil || v != tc.want {
				t.Errorf("r0 = %d, %v; want %d", v, err, tc.want)
			}
		})
	}
}

func TestMachine_Run_MayGoto(t *testing.T) {
	// An unbounded loop guarded by may_goto ends after BPF_MAX_LOOPS.
	mayGoto := asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.JCOND), Offset: -1}.WithReference("out")
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		mayGoto.WithSymbol("loop"),
		asm.Add.Imm(asm.R0, 1),
		asm.Ja.Label("loop"),
		asm.Return().WithSymbol("out"),
	}, vm.Options{})
	v, err := vm.NewMachine().Run(p)
	if err != nil || v != 1<<23 {
		t.Errorf("r0 = %d, %v; want %d iterations", v, err, 1<<23)
	}
}

func TestMachine_Executed(t *testing.T) {
	m := vm.NewMachine()
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.Mov.Imm(asm.R1, 10),
		asm.Add.Imm(asm.R0, 3).WithSymbol("loop"),
		asm.Sub.Imm(asm.R1, 1),
		asm.JNE.Imm(asm.R1, 0, "loop"),
		imm64(asm.R2, 1), // one instruction, two slots
		asm.Return(),
	}, vm.Options{})
	if _, err := m.Run(p); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Executed(), uint64(2+3*10+2); got != want {
		t.Errorf("Executed() = %d, want %d", got, want)
	}
}

func TestMachine_SetLimit(t *testing.T) {
	m := vm.NewMachine()
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.Add.Imm(asm.R0, 1).WithSymbol("loop"),
		asm.Ja.Label("loop"),
	}, vm.Options{})
	m.SetLimit(1000)
	v, err := m.Run(p)
	var le *vm.LimitError
	if !errorsAs(err, &le) || !errorsIs(err, vm.ErrInstructionLimit) {
		t.Fatalf("r0 = %d, err = %v; want a *LimitError", v, err)
	}
	if le.Executed <= 1000 || le.Executed > 1002 || le.PC != 1 || le.Limit != 1000 {
		t.Errorf("LimitError = %+v", *le)
	}
	// A bounded program under the limit is unaffected, and the limit
	// applies per run.
	ok := load(t, asm.Instructions{asm.Mov.Imm(asm.R0, 4), asm.Return()}, vm.Options{})
	if v, err := m.Run(ok); err != nil || v != 4 {
		t.Errorf("r0 = %d, %v", v, err)
	}
}
