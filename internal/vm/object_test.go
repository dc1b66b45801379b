package vm_test

import (
	"testing"

	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/internal/vm"
)

// Machine.Object during a run: a handle unmapped mid-run still resolves
// (as an RCU reader still sees what was freed after it started), one made
// mid-run resolves too, and after the run only what is mapped does; a slot
// reused after an unmap names the new object.
func TestMachine_Object(t *testing.T) {
	for _, e := range []vm.Engine{vm.EngineInterp, vm.EngineJIT} {
		as := vm.NewAddressSpace()
		old := as.NewHandle("old")
		var fresh uint64
		var sawOld, sawFresh, sawJunk bool
		helpers := make([]vm.HelperFunc, 2)
		helpers[1] = func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
			fresh = as.NewHandle("fresh")
			if err := as.Unmap(r1); err != nil {
				return 0, err
			}
			o, _ := m.Object(r1)
			f, _ := m.Object(fresh)
			_, sawJunk = m.Object(r1 + 8)
			sawOld, sawFresh = o == "old", f == "fresh"
			return 0, nil
		}
		p, err := vm.Load(asm.Instructions{
			asm.LoadImm(asm.R1, int64(old), asm.DWord),
			asm.BuiltinFunc(1).Call(),
			asm.Return(),
		}, vm.Options{AddressSpace: as, Helpers: helpers, Engine: e})
		if err != nil {
			t.Fatal(err)
		}
		m := vm.NewMachine()
		m.SetLimit(100)
		if _, err := m.Run(p); err != nil {
			t.Fatal(err)
		}
		if !sawOld || !sawFresh || sawJunk {
			t.Errorf("%v: during the run: old %v, fresh %v, a non-handle address %v", e, sawOld, sawFresh, sawJunk)
		}
		if _, ok := as.Object(old); ok {
			t.Errorf("%v: the unmapped handle resolves after the run", e)
		}
		if reused := as.NewHandle("reused"); reused == old {
			if o, _ := m.Object(reused); o != "reused" {
				t.Errorf("%v: a reused slot names %v", e, o)
			}
		}
	}
}
