package vm_test

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// load validates insns (an exit is not appended) or fails the test.
func load(t testing.TB, insns asm.Instructions, opts vm.Options) *vm.Program {
	t.Helper()
	p, err := vm.Load(insns, engineOpts(opts))
	if err != nil {
		t.Fatalf("load: %v\n%v", err, insns)
	}
	return p
}

// run loads insns + exit and runs them with no packet and no context.
func run(t testing.TB, insns ...asm.Instruction) (uint64, error) {
	t.Helper()
	p := load(t, append(asm.Instructions(insns), asm.Return()), vm.Options{})
	return vm.NewMachine().Run(p)
}

// r0 runs insns + exit and returns r0, failing the test on error.
func r0(t testing.TB, insns ...asm.Instruction) uint64 {
	t.Helper()
	v, err := run(t, insns...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return v
}

// imm64 loads a 64-bit constant.
func imm64(dst asm.Register, v uint64) asm.Instruction {
	return asm.LoadImm(dst, int64(v), asm.DWord)
}

// helperTable builds a helper table from id -> func.
func helperTable(fns map[asm.BuiltinFunc]vm.HelperFunc) []vm.HelperFunc {
	n := 0
	for id := range fns {
		n = max(n, int(id)+1)
	}
	t := make([]vm.HelperFunc, n)
	for id, fn := range fns {
		t[id] = fn
	}
	return t
}

func errorsAs[T error](err error, target *T) bool { return errors.As(err, target) }
func errorsIs(err, target error) bool             { return errors.Is(err, target) }

// stdw stores a sign-extended immediate double word (asm's StoreImm
// refuses DWord).
func stdw(dst asm.Register, off int16, v int64) asm.Instruction {
	return asm.Instruction{OpCode: asm.StoreImmOp(asm.DWord), Dst: dst, Offset: off, Constant: v}
}
