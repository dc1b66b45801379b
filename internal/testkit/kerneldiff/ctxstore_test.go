package kerneldiff_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// TestKernel_QueueMappingStores stores into skb->queue_mapping as an
// immediate (BPF_ST) and from a register (BPF_STX) around the kernel's
// drop rule, which differs between the two: an immediate is dropped when
// it is NO_QUEUE_MAPPING (0xffff) or more as a signed 32-bit number and
// otherwise keeps its low 16 bits (-1 is 0xffff), a register is dropped
// from 0xffff up as an unsigned 64-bit number. The program loads the field
// back; the packet's field after the run must be the same, on both engines.
func TestKernel_QueueMappingStores(t *testing.T) {
	kerneltest.RequireKernel(t)
	frame := make([]byte, 64)
	frame[12], frame[13] = 0x08, 0x00
	type store struct {
		imm bool
		v   int64
	}
	var cases []store
	for _, v := range []int64{0, 5, 0xfffe, 0xffff, 0x10000, 0x7fffffff, -1, -2, -0x8000, -0x10000, -0x80000000} {
		cases = append(cases, store{true, v})
	}
	for _, v := range []int64{5, 0xfffe, 0xffff, -1, -2, 1<<32 | 5, 0x7fffffff} {
		cases = append(cases, store{false, v})
	}
	for _, c := range cases {
		name := fmt.Sprintf("st_imm_%d", c.v)
		insns := asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R2, 0x0302),
			asm.StoreMem(asm.R6, skb.CtxQueueMapping, asm.R2, asm.Word),
		}
		if c.imm {
			insns = append(insns, asm.StoreImm(asm.R6, skb.CtxQueueMapping, c.v, asm.Word))
		} else {
			name = fmt.Sprintf("stx_reg_%d", c.v)
			insns = append(insns, asm.LoadImm(asm.R2, c.v, asm.DWord), asm.StoreMem(asm.R6, skb.CtxQueueMapping, asm.R2, asm.Word))
		}
		insns = append(insns, asm.LoadMem(asm.R0, asm.R6, skb.CtxQueueMapping, asm.Word), asm.Return())
		spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
			"p": {Name: "p", Type: ebpf.SchedCLS, License: "GPL", Instructions: insns},
		}}
		t.Run(name, func(t *testing.T) {
			kern, err := kernel.NewTestRunner(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer kern.Close()
			out, err := kern.Run("p", kernel.RunInput{Data: frame})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []engine.Engine{engine.EngineInterp, engine.EngineJIT} {
				coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, Engine: e})
				if err != nil {
					t.Fatal(err)
				}
				x, err := coll.NewExecutor(0)
				if err != nil {
					t.Fatal(err)
				}
				pkt, err := skb.New(frame, skb.Loopback())
				if err != nil {
					t.Fatal(err)
				}
				res, err := x.Run(coll.Programs["p"], pkt)
				coll.Close()
				if err != nil {
					t.Fatalf("%v: %v", e, err)
				}
				if res.Retval != out.Retval || uint32(pkt.QueueMapping) != out.Retval {
					t.Errorf("%v: queue_mapping read back %#x, packet's %#x; kernel %#x", e, res.Retval, pkt.QueueMapping, out.Retval)
				}
			}
		})
	}
}
