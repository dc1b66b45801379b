package engine_test

import (
	"testing"

	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
)

// TestExecutor_Run_ContextPartial runs, on one executor and one packet
// whose fields the test changes between runs, programs that compare only
// the fields their compiled context sites read before a run
// (Program.ctxPartial): one reading data, data_end and the mark at
// constant offsets, one reading data at a constant offset and the
// priority at an offset computed at run time (no site: it needs the whole
// image), alternately. Every run must see the packet as it is then, on
// both engines.
func TestExecutor_Run_ContextPartial(t *testing.T) {
	sites := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skb.CtxDataEnd, asm.Word),
		asm.LoadMem(asm.R0, asm.R1, skb.CtxMark, asm.Word),
		asm.Sub.Reg(asm.R3, asm.R2),
		asm.Add.Reg(asm.R0, asm.R3), // mark + len
		asm.Return(),
	}
	indirect := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
		asm.And.Imm(asm.R2, 0), // 0, which the compiler cannot know
		asm.Mov.Reg(asm.R3, asm.R1),
		asm.Add.Reg(asm.R3, asm.R2),
		asm.LoadMem(asm.R0, asm.R3, skb.CtxPriority, asm.Word),
		asm.Return(),
	}
	for _, e := range []engine.Engine{engine.EngineInterp, engine.EngineJIT} {
		spec := handSpec(sites)
		spec.Programs["indirect"] = spec.Programs["prog"].Copy()
		spec.Programs["indirect"].Name, spec.Programs["indirect"].Instructions = "indirect", indirect
		c := newCollection(t, spec, engine.Options{NumCPU: 1, Engine: e})
		x, err := c.NewExecutor(0)
		if err != nil {
			t.Fatal(err)
		}
		pkt, err := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 12 {
			pkt.Mark, pkt.Priority = uint32(1000*i), uint32(7*i+1)
			if i%4 == 3 {
				pkt.Mark = 0 // back to an earlier value
			}
			res, err := x.Run(c.Programs["prog"], pkt)
			if want := pkt.Mark + uint32(pkt.Len()); err != nil || res.Retval != want {
				t.Fatalf("%s run %d: sites %d, %v; want mark+len = %d", e, i, res.Retval, err, want)
			}
			pkt.Priority += 3 // changed after the image was checked for prog
			res, err = x.Run(c.Programs["indirect"], pkt)
			if err != nil || res.Retval != pkt.Priority {
				t.Fatalf("%s run %d: indirect %d, %v; want the priority %d", e, i, res.Retval, err, pkt.Priority)
			}
		}
	}
}
