package vm_test

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"

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
	benchRuns(b, benchprog.Spec().Programs[benchprog.Floor].Instructions)
}

// BenchmarkMachine_Run_FloorStack is the floor of a program that stores
// to its stack, as most do: the run after it starts by clearing what it
// dirtied (16 bytes).
func BenchmarkMachine_Run_FloorStack(b *testing.B) {
	benchRuns(b, asm.Instructions{
		asm.StoreMem(asm.R10, -8, asm.R10, asm.DWord),
		asm.StoreMem(asm.R10, -16, asm.R10, asm.DWord),
		asm.LoadImm(asm.R0, 0, asm.DWord),
		asm.Return(),
	})
}

// benchRuns runs insns on one Machine per engine, b.N times each.
func benchRuns(b *testing.B, insns asm.Instructions) {
	for _, e := range engines {
		b.Run(e.String(), func(b *testing.B) {
			p, err := vm.Load(insns, vm.Options{Engine: e})
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

// TestJHash_Result runs benchprog's jhash program (direct packet access
// through data/data_end from the context, 32-bit rotates) against its Go
// reference on packets of every length around the block size.
func TestJHash_Result(t *testing.T) {
	p := load(t, benchprog.Spec().Programs[benchprog.JHash].Instructions, vm.Options{})
	m := vm.NewMachine()
	for n := range 110 {
		pkt := make([]byte, n)
		for i := range pkt {
			pkt[i] = byte(i*7 + n)
		}
		if err := m.SetPacket(pkt, 0, 0, n); err != nil {
			t.Fatal(err)
		}
		ctx := make([]byte, 192)
		binary.LittleEndian.PutUint32(ctx[76:], uint32(vm.PacketAddr(0)))
		binary.LittleEndian.PutUint32(ctx[80:], uint32(vm.PacketAddr(n)))
		m.SetContext(ctx)
		r0, err := m.Run(p)
		if err != nil || uint32(r0) != benchprog.JHashResult(pkt) {
			t.Fatalf("%d bytes: r0 = %#x, %v; want %#x", n, r0, err, benchprog.JHashResult(pkt))
		}
	}
}

// BenchmarkMachine_Run_JHash is hash-heavy code: benchprog's jhash over a
// 118-byte packet by direct packet access.
func BenchmarkMachine_Run_JHash(b *testing.B) {
	for _, e := range engines {
		b.Run(e.String(), func(b *testing.B) {
			p := load(b, benchprog.Spec().Programs[benchprog.JHash].Instructions, vm.Options{Engine: e})
			m := vm.NewMachine()
			pkt := make([]byte, 118)
			for i := range pkt {
				pkt[i] = byte(i)
			}
			if err := m.SetPacket(pkt, 0, 0, len(pkt)); err != nil {
				b.Fatal(err)
			}
			ctx := make([]byte, 192)
			binary.LittleEndian.PutUint32(ctx[76:], uint32(vm.PacketAddr(0)))
			binary.LittleEndian.PutUint32(ctx[80:], uint32(vm.PacketAddr(len(pkt))))
			m.SetContext(ctx)
			want := benchprog.JHashResult(pkt)
			b.ReportAllocs()
			for b.Loop() {
				if r0, err := m.Run(p); err != nil || uint32(r0) != want {
					b.Fatalf("r0 = %#x, %v", r0, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(m.Executed()), "ns/insn")
		})
	}
}

// BenchmarkMachine_Run_HelperExit is the cost of one helper call: a
// program making 64 calls to a helper that returns its argument plus one
// (ns/call is the run's time over the calls, the floor included), so
// compiled code leaves for Go and resumes 64 times per run.
func BenchmarkMachine_Run_HelperExit(b *testing.B) {
	const calls = 64
	insns := asm.Instructions{asm.Mov.Imm(asm.R1, 0)}
	for range calls {
		insns = append(insns, asm.BuiltinFunc(1).Call(), asm.Mov.Reg(asm.R1, asm.R0))
	}
	insns = append(insns, asm.Return())
	helpers := make([]vm.HelperFunc, 2)
	helpers[1] = func(_ *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) { return r1 + 1, nil }
	for _, e := range engines {
		b.Run(e.String(), func(b *testing.B) {
			p := load(b, insns, vm.Options{Engine: e, Helpers: helpers})
			m := vm.NewMachine()
			b.ReportAllocs()
			for b.Loop() {
				if r0, err := m.Run(p); err != nil || r0 != calls {
					b.Fatalf("r0 = %d, %v", r0, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/calls, "ns/call")
		})
	}
}
