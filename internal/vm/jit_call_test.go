package vm_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/internal/vm/amd64"
)

// callProgram calls subprograms in a loop and at depth: each frame must
// start zeroed although the same frame was dirtied by the previous call,
// r6-r9 survive calls, a pointer into the caller's frame reaches it.
func callProgram() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R6, 0), // sum
		asm.Mov.Imm(asm.R7, 5), // iterations
		stdw(asm.RFP, -8, 3),
		asm.Mov.Reg(asm.R1, asm.RFP).WithSymbol("loop"),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Call.Label("f"),
		asm.Add.Reg(asm.R6, asm.R0),
		asm.Add.Imm(asm.R7, -1),
		asm.JNE.Imm(asm.R7, 0, "loop"),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
		asm.Mul.Imm(asm.R0, 100000),
		asm.Add.Reg(asm.R0, asm.R6),
		asm.Return(),

		// f(p, n): *p += n; r0 = g(n) + its fresh fp-16 (0) + fp-200 (0);
		// then dirty its frame.
		asm.LoadMem(asm.R3, asm.R1, 0, asm.DWord).WithSymbol("f"),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.StoreMem(asm.R1, 0, asm.R3, asm.DWord),
		asm.Mov.Reg(asm.R6, asm.R2),
		asm.Mov.Reg(asm.R1, asm.R2),
		asm.Call.Label("g"),
		asm.LoadMem(asm.R3, asm.RFP, -16, asm.DWord),
		asm.Add.Reg(asm.R0, asm.R3),
		asm.LoadMem(asm.R3, asm.RFP, -200, asm.Byte),
		asm.Add.Reg(asm.R0, asm.R3),
		asm.StoreMem(asm.RFP, -16, asm.R6, asm.DWord),
		asm.StoreImm(asm.RFP, -200, 0x55, asm.Byte),
		asm.Mov.Imm(asm.R6, -1), asm.Mov.Imm(asm.R7, -1), asm.Mov.Imm(asm.R8, -1), asm.Mov.Imm(asm.R9, -1),
		asm.Return(),

		// g(n): n*10 + its fresh fp-512 (0); dirties it through a copy of
		// r10 (a store the JIT tracks) and r10 itself.
		asm.LoadMem(asm.R0, asm.RFP, -512, asm.DWord).WithSymbol("g"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		stdw(asm.R2, -512, 7),
		asm.StoreImm(asm.RFP, -4, 9, asm.Word),
		asm.Mul.Imm(asm.R1, 10),
		asm.Add.Reg(asm.R0, asm.R1),
		asm.Return(),
	}
}

// TestJIT_CallsMatchInterpreter runs callProgram and the deepest legal
// chain compiled and interpreted, again and again on one Machine each
// (compiled calls push frames in machine code once the frames are the
// program's), under every instruction limit up to the full run: the same
// r0, error and instruction count every time.
func TestJIT_CallsMatchInterpreter(t *testing.T) {
	if !amd64.Supported {
		t.Skip("no compiler on this platform")
	}
	for name, insns := range map[string]asm.Instructions{"loop": callProgram(), "chain": chain(vm.MaxFrames)} {
		ip, err := vm.Load(insns, vm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		jp, err := vm.Load(insns, vm.Options{Engine: vm.EngineJIT})
		if err != nil {
			t.Fatal(err)
		}
		if ok, why := jp.Compiled(); !ok {
			t.Fatalf("%s: not compiled: %s", name, why)
		}
		im, jm := vm.NewMachine(), vm.NewMachine()
		outcome := func(m *vm.Machine, p *vm.Program, limit uint64) string {
			m.SetLimit(limit)
			r0, err := m.Run(p)
			return fmt.Sprintf("r0 %d err %v executed %d", r0, err, m.Executed())
		}
		full := outcome(im, ip, 0)
		if name == "loop" {
			// *p = 3+5+4+3+2+1; each call: n*10 + 0 + 0.
			if want := fmt.Sprintf("r0 %d err <nil>", 18*100000+150); full[:len(want)] != want {
				t.Fatalf("%s: interpreter %s, want %s", name, full, want)
			}
		}
		for round := range 3 {
			for limit := uint64(0); limit <= im.Executed()+1; limit++ {
				want, got := outcome(im, ip, limit), outcome(jm, jp, limit)
				if want != got {
					t.Fatalf("%s round %d limit %d: interpreter %s, jit %s", name, round, limit, want, got)
				}
			}
			im.SetLimit(0)
			if _, err := im.Run(ip); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestRunCtx_AfterFaultInFrame runs a program that leaves its machine
// code only at its exit (RunCtx then skips resetting the frame state the
// run left as it found it) after runs that fault one frame deep, through
// Run and through RunCtx: a Machine that kept the faulting run's depth
// would return from the short program's exit into the other's caller.
func TestRunCtx_AfterFaultInFrame(t *testing.T) {
	short, err := vm.Load(asm.Instructions{
		stdw(asm.RFP, -8, 7),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
		asm.Return(),
	}, vm.Options{Engine: vm.EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	deep, err := vm.Load(asm.Instructions{
		asm.Call.Label("f"),
		asm.Mov.Imm(asm.R0, 99),
		asm.Return(),
		asm.Mov.Imm(asm.R1, 0).WithSymbol("f"),
		asm.LoadMem(asm.R0, asm.R1, 0, asm.DWord),
		asm.Return(),
	}, vm.Options{Engine: vm.EngineJIT})
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := short.Compiled(); !ok {
		t.Skipf("not compiled: %s", why)
	}
	m := vm.NewMachine()
	runShort := func(when string) {
		t.Helper()
		r0, err := m.RunCtx(short)
		if err != nil || r0 != 7 || m.Executed() != 3 {
			t.Errorf("%s: r0 = %d, %v, executed %d; want 7, nil, 3", when, r0, err, m.Executed())
		}
	}
	runShort("first run")
	runShort("second run")
	if _, err := m.Run(deep, 1); err == nil { // an argument: Run's own path
		t.Fatal("Run(deep, 1): no fault")
	}
	runShort("after a fault in a frame through Run")
	runShort("again")
	if _, err := m.RunCtx(deep); err == nil {
		t.Fatal("RunCtx(deep): no fault")
	}
	runShort("after a fault in a frame through RunCtx")
}
