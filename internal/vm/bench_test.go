package vm_test

import (
	"testing"

	"github.com/tcxgo/tcx/internal/testkit/benchprog"
	"github.com/tcxgo/tcx/internal/vm"
)

// BenchmarkMachine_Run_ALULoop runs the project's ns/insn anchor (the
// 4003-instruction ALU loop of userspace-runtimes.md 6.1, the same program
// the kernel and uBPF figures were measured with).
func BenchmarkMachine_Run_ALULoop(b *testing.B) {
	for _, e := range engines {
		b.Run(e.String(), func(b *testing.B) { benchALULoop(b, e) })
	}
}

// engines are the engines every benchmark compares, the interpreter first.
var engines = []vm.Engine{vm.EngineInterp, vm.EngineJIT}

func benchALULoop(b *testing.B, e vm.Engine) {
	p, err := vm.Load(benchprog.Spec().Programs[benchprog.ALULoop].Instructions, vm.Options{Engine: e})
	if err != nil {
		b.Fatal(err)
	}
	m := vm.NewMachine()
	want := uint64(benchprog.ALULoopResult())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r0, err := m.Run(p)
		if err != nil || uint32(r0) != uint32(want) {
			b.Fatalf("r0 = %#x, %v", r0, err)
		}
	}
	b.StopTimer()
	if m.Executed() != benchprog.ALULoopExecuted {
		b.Fatalf("executed %d, want %d", m.Executed(), benchprog.ALULoopExecuted)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchprog.ALULoopExecuted, "ns/insn")
}

// BenchmarkMachine_Run_Floor is the per-run overhead: "r0 = 0; exit".
func BenchmarkMachine_Run_Floor(b *testing.B) {
	for _, e := range engines {
		b.Run(e.String(), func(b *testing.B) {
			p, err := vm.Load(benchprog.Spec().Programs[benchprog.Floor].Instructions, vm.Options{Engine: e})
			if err != nil {
				b.Fatal(err)
			}
			m := vm.NewMachine()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Run(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGo_ALULoop is the same loop as native Go: the same-run
// baseline the ns/insn figure should be read against on a noisy machine.
func BenchmarkGo_ALULoop(b *testing.B) {
	want := benchprog.ALULoopResult()
	for b.Loop() {
		if benchprog.ALULoopResult() != want {
			b.Fatal("mismatch")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchprog.ALULoopExecuted, "ns/insn")
}

// BenchmarkMachine_Run_Packet is a tc-shaped program over a 100-byte
// packet: context loads, a byte loop over direct packet access, LD_ABS, a
// bpf-to-bpf call, a helper returning a map value and an atomic add.
func BenchmarkMachine_Run_Packet(b *testing.B) {
	p, _, _ := packetProgram(b)
	m := vm.NewMachine()
	pkt, ctx := make([]byte, 100), make([]byte, 16)
	setup(b, m, pkt, ctx, 3)
	if _, err := m.Run(p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Run(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(m.Executed()), "ns/insn")
}
