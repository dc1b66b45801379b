package vm_test

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// TestMachine_Run_PoisonedCall: a call CO-RE poisoned loads (the kernel
// refuses it only where reachable) and faults only when reached.
func TestMachine_Run_PoisonedCall(t *testing.T) {
	for _, e := range []vm.Engine{vm.EngineInterp, vm.EngineAuto} {
		t.Run(e.String(), func(t *testing.T) { poisonedCall(t, e) })
	}
}

func poisonedCall(t *testing.T, e vm.Engine) {
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R0, 1),
		asm.JEq.Imm(asm.R1, 0, "skip"),
		asm.BuiltinFunc(vm.CorePoisonedCall).Call(),
		asm.Return().WithSymbol("skip"),
	}, vm.Options{Engine: e})
	m := vm.NewMachine()
	m.SetLimit(1000)
	if v, err := m.Run(p); err != nil || v != 1 {
		t.Errorf("unreached poison: r0 = %d, %v", v, err)
	}
	_, err := m.Run(p, 1)
	var f *vm.Fault
	if !errors.As(err, &f) || f.Kind != vm.FaultPoisoned || f.PC != 2 {
		t.Errorf("reached poison: %v; want a FaultPoisoned at insn 2", err)
	}
}
