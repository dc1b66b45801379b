package vm_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

func TestMachine_Run_LocalCall(t *testing.T) {
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R6, 6), asm.Mov.Imm(asm.R9, 9),
		asm.StoreImm(asm.RFP, -8, 100, asm.Word), // caller's frame
		asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 5),
		asm.Call.Label("f"),
		// r0 = f's result + r6 + r9 (preserved) + caller's stack slot (written by f)
		asm.Add.Reg(asm.R0, asm.R6), asm.Add.Reg(asm.R0, asm.R9),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.Word), asm.Add.Reg(asm.R0, asm.R1),
		asm.Return(),

		// f(ptr, n): *ptr += n through the caller's stack; own frame is fresh.
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word).WithSymbol("f"),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.StoreMem(asm.R1, 0, asm.R3, asm.Word),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),      // zeroed callee stack
		asm.Mov.Imm(asm.R6, -1), asm.Mov.Imm(asm.R9, -1), // clobber callee-saved
		asm.Add.Imm(asm.R0, 1000),
		asm.Return(),
	}, vm.Options{})
	v, err := vm.NewMachine().Run(p)
	if want := uint64(1000 + 6 + 9 + 105); err != nil || v != want {
		t.Errorf("r0 = %d, %v; want %d", v, err, want)
	}
}

func TestMachine_Run_DeepestChain(t *testing.T) {
	v, err := vm.NewMachine().Run(load(t, chain(vm.MaxFrames), vm.Options{}))
	if err != nil || v != vm.MaxFrames-1 { // the deepest function's r0 comes back up
		t.Errorf("r0 = %d, %v", v, err)
	}
}

func TestMachine_Run_Helpers(t *testing.T) {
	var got [5]uint64
	var user any
	tbl := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{
		asm.FnKtimeGetNs: func(m *vm.Machine, r1, r2, r3, r4, r5 uint64) (uint64, error) {
			got = [5]uint64{r1, r2, r3, r4, r5}
			user = m.User()
			return 42, nil
		},
		asm.FnTracePrintk: func(*vm.Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) {
			return 0, errors.New("no printk here")
		},
	})
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R1, 1), asm.Mov.Imm(asm.R2, 2), asm.Mov.Imm(asm.R3, 3), asm.Mov.Imm(asm.R4, 4), asm.Mov.Imm(asm.R5, 5),
		asm.Mov.Imm(asm.R6, 6),
		asm.FnKtimeGetNs.Call(),
		asm.Add.Reg(asm.R0, asm.R6),
		asm.Return(),
	}, vm.Options{Helpers: tbl})
	m := vm.NewMachine()
	m.SetUser("per-run state")
	v, err := m.Run(p)
	if err != nil || v != 48 || got != [5]uint64{1, 2, 3, 4, 5} || user != "per-run state" {
		t.Errorf("r0 = %d, %v, args %v, user %v", v, err, got, user)
	}
	bad := load(t, asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R0, 0), asm.FnTracePrintk.Call(), asm.Return()}, vm.Options{Helpers: tbl})
	_, err = m.Run(bad)
	var he *vm.HelperError
	if !errors.As(err, &he) || he.PC != 2 || he.Helper != asm.FnTracePrintk || !strings.Contains(err.Error(), "no printk here") {
		t.Errorf("err = %v", err)
	}
	if bad.Faults() != 0 {
		t.Error("a helper error counted as a fault")
	}
}

func TestMachine_Exit(t *testing.T) {
	tbl := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{
		1: func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) { m.Exit(); return r1 * 2, nil },
	})
	p := load(t, asm.Instructions{
		asm.Call.Label("f"), asm.Mov.Imm(asm.R0, 99), asm.Return(),
		asm.Mov.Imm(asm.R1, 21).WithSymbol("f"), asm.BuiltinFunc(1).Call(), asm.Mov.Imm(asm.R0, 98), asm.Return(),
	}, vm.Options{Helpers: tbl})
	m := vm.NewMachine()
	if v, err := m.Run(p); err != nil || v != 42 {
		t.Errorf("r0 = %d, %v; want 42 from the helper, ending the whole run", v, err)
	}
	if v, err := m.Run(p); err != nil || v != 42 {
		t.Errorf("second run: r0 = %d, %v", v, err)
	}
}

// tailCallEnv is a prog array and the bpf_tail_call helper over it.
type tailCallEnv struct {
	mu    sync.Mutex
	progs map[uint64]*vm.Program
}

func (e *tailCallEnv) helper(m *vm.Machine, ctx, _, idx, _, _ uint64) (uint64, error) {
	e.mu.Lock()
	p := e.progs[idx]
	e.mu.Unlock()
	if p == nil || !m.TailCall(p) {
		return ^uint64(0), nil // -ENOENT-ish: fall through
	}
	return 0, nil
}

func TestMachine_TailCall(t *testing.T) {
	as := vm.NewAddressSpace()
	env := &tailCallEnv{progs: map[uint64]*vm.Program{}}
	opts := vm.Options{AddressSpace: as, Helpers: helperTable(map[asm.BuiltinFunc]vm.HelperFunc{asm.FnTailCall: env.helper})}
	// Program "again" counts in the packet and tail-calls itself.
	again := load(t, asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.Add.Imm(asm.R2, 1),
		asm.StoreMem(asm.R1, 0, asm.R2, asm.Word),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, 7), // only when the tail call failed
		asm.Return(),
	}, opts)
	env.progs[0] = again
	pkt := make([]byte, 4)
	m := vm.NewMachine()
	if err := m.SetPacket(pkt, 0, 0, 4); err != nil {
		t.Fatal(err)
	}
	v, err := m.Run(again, vm.PacketAddr(0))
	// The first run plus MaxTailCalls tail calls, then the 34th fails.
	if err != nil || v != 7 || pkt[0] != 1+vm.MaxTailCalls {
		t.Errorf("r0 = %d, %v, runs = %d; want 7 and %d runs", v, err, pkt[0], 1+vm.MaxTailCalls)
	}

	// A tail call from a subprogram replaces that frame only: the target's
	// exit returns to the subprogram's caller.
	target := load(t, asm.Instructions{asm.Mov.Imm(asm.R0, 40), asm.Return()}, opts)
	env.progs[1] = target
	caller := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R6, 2),
		asm.Call.Label("sub"),
		asm.Add.Reg(asm.R0, asm.R6),
		asm.Return(),
		asm.Mov.Imm(asm.R3, 1).WithSymbol("sub"),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, 1000),
		asm.Return(),
	}, opts)
	if v, err := m.Run(caller); err != nil || v != 42 {
		t.Errorf("r0 = %d, %v; want 42", v, err)
	}
	// The target, a program without calls, runs in the subprogram's
	// frame, not its caller's: compiled code that takes frame 0's address
	// for its stack (as it may at depth 0) would overwrite the caller's.
	env.progs[5] = load(t, asm.Instructions{
		asm.Mov.Imm(asm.R1, 0xbbbb),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
		asm.Return(),
	}, opts)
	keeps := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R1, 0xaaaa),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.Call.Label("sub"),
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord),
		asm.LSh.Imm(asm.R1, 32),
		asm.Or.Reg(asm.R0, asm.R1),
		asm.Return(),
		asm.Mov.Imm(asm.R3, 5).WithSymbol("sub"),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, 1000),
		asm.Return(),
	}, opts)
	for range 2 { // the second run after one that ended in compiled code
		if v, err := m.Run(keeps); err != nil || v != 0xaaaa_0000_bbbb {
			t.Errorf("tail call from a subprogram into a program using its stack: r0 = %#x, %v; want 0xaaaa0000bbbb", v, err)
		}
	}
	// The chain goes on from subprogram to subprogram: each tail call
	// leaves its caller's frames in place and starts one frame deeper, so
	// the chain outgrows MaxFrames and must still reach MaxTailCalls, as
	// the kernel's does.
	deep := load(t, asm.Instructions{
		asm.Call.Label("sub"),
		asm.Add.Imm(asm.R0, 1), // every frame adds one on the way out
		asm.Return(),
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word).WithSymbol("sub"),
		asm.Add.Imm(asm.R2, 1),
		asm.StoreMem(asm.R1, 0, asm.R2, asm.Word),
		asm.Mov.Imm(asm.R3, 3),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, 1000), // the 34th tail call fails
		asm.Return(),
	}, opts)
	env.progs[3] = deep
	pkt[0] = 0
	v, err = m.Run(deep, vm.PacketAddr(0))
	if want := uint64(1000 + 1 + vm.MaxTailCalls); err != nil || v != want || pkt[0] != 1+vm.MaxTailCalls {
		t.Errorf("chain through subprograms: r0 = %d, %v, runs = %d; want %d and %d runs", v, err, pkt[0], want, 1+vm.MaxTailCalls)
	}
	// Each program still gets MaxFrames frames of its own from where it
	// starts: the fault comes from call depth, not the chain.
	env.progs[4] = load(t, asm.Instructions{
		asm.Call.Label("a"), asm.Return(),
		asm.Call.Label("b").WithSymbol("a"), asm.Return(),
		asm.Call.Label("c").WithSymbol("b"), asm.Return(),
		asm.Mov.Imm(asm.R0, 5).WithSymbol("c"), asm.Return(),
	}, opts)
	hop := load(t, asm.Instructions{
		asm.Call.Label("sub"), asm.Return(),
		asm.Call.Label("sub2").WithSymbol("sub"), asm.Return(),
		asm.Mov.Imm(asm.R3, 4).WithSymbol("sub2"),
		asm.FnTailCall.Call(),
		asm.Return(),
	}, opts)
	if v, err := m.Run(hop); err != nil || v != 5 {
		t.Errorf("tail call two frames down into a program three calls deep: r0 = %d, %v; want 5", v, err)
	}
	// A fresh Machine grows its frames inside the run that needs them.
	pkt[0] = 0
	m2 := vm.NewMachine()
	if err := m2.SetPacket(pkt, 0, 0, 4); err != nil {
		t.Fatal(err)
	}
	if v, err := m2.Run(deep, vm.PacketAddr(0)); err != nil || v != uint64(1000+1+vm.MaxTailCalls) {
		t.Errorf("fresh machine: r0 = %d, %v", v, err)
	}

	// Across address spaces a tail call is refused.
	foreign := load(t, asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}, vm.Options{})
	env.progs[2] = foreign
	refuse := load(t, asm.Instructions{asm.Mov.Imm(asm.R3, 2), asm.FnTailCall.Call(), asm.Return()}, opts)
	if v, err := m.Run(refuse); err != nil || v != ^uint64(0) {
		t.Errorf("r0 = %#x, %v; want the helper's failure value", v, err)
	}
}

func TestMachine_Call(t *testing.T) {
	// bpf_loop(n, callback, ctx): calls callback(i, ctx) until it returns 1.
	loop := func(m *vm.Machine, n, fn, ctx, _, _ uint64) (uint64, error) {
		for i := range n {
			r, err := m.Call(fn, i, ctx, 0, 0, 0)
			if err != nil {
				return 0, err
			}
			if r == 1 {
				return i + 1, nil
			}
		}
		return n, nil
	}
	tbl := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{asm.FnLoop: loop})
	funcPtr := func(dst asm.Register, label string) asm.Instruction {
		return asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: dst, Src: asm.PseudoFunc, Constant: -1}.WithReference(label)
	}
	p := load(t, asm.Instructions{
		asm.Mov.Imm(asm.R6, 77),
		asm.StoreImm(asm.RFP, -8, 0, asm.Word), // sum, through ctx = &stack
		asm.Mov.Imm(asm.R1, 10),
		funcPtr(asm.R2, "cb"),
		asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -8),
		asm.FnLoop.Call(),
		asm.Mov.Reg(asm.R7, asm.R0), // iterations
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.Word),
		asm.Mul.Imm(asm.R0, 1000), asm.Add.Reg(asm.R0, asm.R7), asm.Mul.Imm(asm.R0, 1000), asm.Add.Reg(asm.R0, asm.R6),
		asm.Return(),

		// cb(i, sum*): *sum += i; stop after i == 4.
		asm.LoadMem(asm.R3, asm.R2, 0, asm.Word).WithSymbol("cb"),
		asm.Add.Reg(asm.R3, asm.R1),
		asm.StoreMem(asm.R2, 0, asm.R3, asm.Word),
		asm.Mov.Imm(asm.R6, 0), // callee-saved: must not leak to the caller
		asm.Mov.Imm(asm.R0, 0),
		asm.JNE.Imm(asm.R1, 4, "out"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return().WithSymbol("out"),
	}, vm.Options{Helpers: tbl})
	m := vm.NewMachine()
	v, err := m.Run(p)
	if want := uint64((0+1+2+3+4)*1000000 + 5*1000 + 77); err != nil || v != want {
		t.Errorf("r0 = %d, %v; want %d", v, err, want)
	}
	// Instructions in callbacks count.
	if m.Executed() < 5*8 {
		t.Errorf("Executed() = %d, callbacks not counted", m.Executed())
	}

	// A fault inside a callback aborts the run even if the helper swallows it.
	swallow := func(m *vm.Machine, _, fn, _, _, _ uint64) (uint64, error) {
		m.Call(fn, 0, 0, 0, 0, 0) //nolint:errcheck // deliberately ignored
		return 5, nil
	}
	bad := load(t, asm.Instructions{
		funcPtr(asm.R2, "cb"),
		asm.FnLoop.Call(),
		asm.Return(),
		asm.LoadMem(asm.R0, asm.R1, 0, asm.Word).WithSymbol("cb"), // NULL
		asm.Return(),
	}, vm.Options{Helpers: helperTable(map[asm.BuiltinFunc]vm.HelperFunc{asm.FnLoop: swallow})})
	_, err = m.Run(bad)
	var f *vm.Fault
	if !errors.As(err, &f) || f.Kind != vm.FaultUnmapped || f.PC != 4 {
		t.Errorf("err = %v; want the callback's fault at insn 4", err)
	}
}

func TestMachine_CallDepthAtRunTime(t *testing.T) {
	// Callbacks nest frames at run time: a helper calling back from the
	// deepest frame faults instead of overflowing.
	recurse := func(m *vm.Machine, fn, _, _, _, _ uint64) (uint64, error) { return m.Call(fn, fn, 0, 0, 0, 0) }
	p := load(t, asm.Instructions{
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R1, Src: asm.PseudoFunc, Constant: -1}.WithReference("cb"),
		asm.FnLoop.Call(),
		asm.Return(),
		asm.FnLoop.Call().WithSymbol("cb"), // r1 is still the callback
		asm.Return(),
	}, vm.Options{Helpers: helperTable(map[asm.BuiltinFunc]vm.HelperFunc{asm.FnLoop: recurse})})
	_, err := vm.NewMachine().Run(p)
	var f *vm.Fault
	if !errors.As(err, &f) || f.Kind != vm.FaultCallDepth {
		t.Errorf("err = %v; want FaultCallDepth", err)
	}
}

func TestMachine_MapDynamic(t *testing.T) {
	rec := make([]byte, 8)
	tbl := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{
		asm.FnRingbufReserve: func(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) { return m.MapDynamic(rec, false) },
		asm.FnRingbufSubmit:  func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) { return 0, m.UnmapDynamic(r1) },
	})
	p := load(t, asm.Instructions{
		asm.FnRingbufReserve.Call(),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.StoreImm(asm.R6, 4, 0x0a0b0c0d, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnRingbufSubmit.Call(),
		asm.Return(),
	}, vm.Options{Helpers: tbl})
	m := vm.NewMachine()
	for range vm.MaxDynamicRegions + 3 { // regions are per run
		if _, err := m.Run(p); err != nil {
			t.Fatal(err)
		}
	}
	if rec[4] != 0x0d {
		t.Errorf("record %x", rec)
	}
	if _, err := m.MapDynamic(make([]byte, 1), false); err != nil {
		t.Fatal(err)
	}
	for range vm.MaxDynamicRegions - 1 {
		m.MapDynamic(nil, false) //nolint:errcheck
	}
	if _, err := m.MapDynamic(nil, false); err == nil {
		t.Error("MapDynamic beyond MaxDynamicRegions succeeded")
	}
}

func TestMachine_Run_Args(t *testing.T) {
	p := load(t, asm.Instructions{asm.Mov.Reg(asm.R0, asm.R5), asm.Add.Reg(asm.R0, asm.R1), asm.Return()}, vm.Options{})
	m := vm.NewMachine()
	if v, err := m.Run(p, 1, 2, 3, 4, 5); err != nil || v != 6 {
		t.Errorf("r0 = %d, %v", v, err)
	}
	if _, err := m.Run(p, 1, 2, 3, 4, 5, 6); err == nil {
		t.Error("six arguments accepted")
	}
	// Without arguments and without a context, r1 starts at 0.
	if v, err := m.Run(p); err != nil || v != 0 {
		t.Errorf("r0 = %d, %v", v, err)
	}
}

func TestMachine_OutsideRun(t *testing.T) {
	m := vm.NewMachine()
	if _, err := m.Run(nil); err == nil {
		t.Error("Run(nil) succeeded")
	}
	if _, err := m.Mem(vm.StackAddr(0), 8, false); err == nil {
		t.Error("Mem outside a run succeeded")
	}
	if _, err := m.Call(vm.FuncAddr(0), 0, 0, 0, 0, 0); err == nil {
		t.Error("Call outside a run succeeded")
	}
	if _, err := m.Run(load(t, asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}, vm.Options{})); err != nil {
		t.Error(err)
	}
	if m.Program() != nil {
		t.Error("Program() is set after the run")
	}
}

func TestMachine_RunCallback(t *testing.T) {
	var armed uint64
	arm := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{asm.FnTimerSetCallback: func(_ *vm.Machine, _, fn, _, _, _ uint64) (uint64, error) {
		armed = fn
		return 0, nil
	}})
	p := load(t, asm.Instructions{
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference("cb"),
		asm.FnTimerSetCallback.Call(),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("cb"),
		asm.Mul.Reg(asm.R0, asm.R2),
		asm.Return(),
	}, vm.Options{Helpers: arm})
	m := vm.NewMachine()
	if _, err := m.Run(p); err != nil {
		t.Fatal(err)
	}
	if armed != vm.FuncAddr(5) {
		t.Fatalf("callback address %#x, want FuncAddr(5)", armed)
	}
	if v, err := m.RunCallback(p, armed, 6, 7); err != nil || v != 42 {
		t.Errorf("r0 = %d, %v", v, err)
	}
	if _, err := m.RunCallback(p, vm.FuncAddr(1), 0); err == nil {
		t.Error("RunCallback accepted an address that is no subprogram")
	}
}
