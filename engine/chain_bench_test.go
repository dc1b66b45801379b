package engine_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/userspace"
)

// chainSpec is one SCHED_CLS program that counts in the mark and passes
// the packet on: r2 = skb->mark; r2++; skb->mark = r2; return TCX_NEXT.
func chainSpec() *ebpf.CollectionSpec {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 8, asm.Word),
		asm.Add.Imm(asm.R2, 1),
		asm.StoreMem(asm.R1, 8, asm.R2, asm.Word),
		asm.Mov.Imm(asm.R0, -1),
		asm.Return(),
	}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{},
		Programs: map[string]*ebpf.ProgramSpec{
			"next": {Name: "next", Type: ebpf.SchedCLS, Instructions: insns, License: "GPL"},
		},
	}
}

// BenchmarkRuntime_ReceiveELF is BenchmarkRuntime_Receive with ELF
// programs: n engine programs on lo's ingress, each incrementing the mark
// and returning TCX_NEXT.
func BenchmarkRuntime_ReceiveELF(b *testing.B) {
	frame := etherFrame(0x88b5, 64)
	for _, n := range []int{1, 8, 63} {
		rt := userspace.New()
		p := newCollection(b, chainSpec(), engine.Options{NumCPU: 1}).Programs["next"]
		for range n {
			h, err := rt.NewProgram("next", engine.NewRunner(p))
			if err != nil {
				b.Fatal(err)
			}
			if err := rt.Attach(1, tcx.Ingress, h, tcx.AttachOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("progs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, len(frame), 256)
			for b.Loop() {
				copy(buf, frame)
				if out := rt.Receive(1, buf[:len(frame)]); out.Fate != userspace.Delivered {
					b.Fatal("not delivered")
				}
			}
		})
	}
}
