package chaindiff

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// benchChains are the chain lengths of the chain benchmarks.
var benchChains = []int{1, 8, 63}

// countSpec holds n distinct programs (tcx refuses the same program twice
// on a hook) that each add one to the mark and return TCX_NEXT.
func countSpec(n int) *ebpf.CollectionSpec {
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}
	for i := range n {
		name := fmt.Sprintf("count%d", i)
		spec.Programs[name] = &ebpf.ProgramSpec{Name: name, Type: ebpf.SchedCLS, SectionName: "tc", License: "GPL",
			Instructions: asm.Instructions{
				asm.LoadMem(asm.R2, asm.R1, skb.CtxMark, asm.Word),
				asm.Add.Imm(asm.R2, 1),
				asm.StoreMem(asm.R1, skb.CtxMark, asm.R2, asm.Word),
				asm.Mov.Imm(asm.R0, -1),
				asm.Return(),
			}}
	}
	return spec
}

// benchFrame is 64 bytes of ethertype 0x88b5 to B's address.
func benchFrame() []byte {
	f := make([]byte, 64)
	b := mac(0xb)
	copy(f, b[:])
	f[12], f[13] = 0x88, 0xb5
	return f
}

// BenchmarkChain_Userspace: one frame out of veth A's egress through a
// chain of n engine programs, across the pair and delivered on B, on the
// userspace runtime. Compare the growth with n to BenchmarkChain_Kernel.
func BenchmarkChain_Userspace(b *testing.B) {
	for _, c := range []struct {
		name   string
		engine engine.Engine
	}{{"interp", engine.EngineInterp}, {"jit", engine.EngineJIT}} {
		for _, n := range benchChains {
			b.Run(fmt.Sprintf("%s/progs=%d", c.name, n), func(b *testing.B) {
				benchUserspace(b, n, c.engine)
			})
		}
	}
}

func benchUserspace(b *testing.B, n int, e engine.Engine) {
	{
		{
			coll, err := engine.NewCollection(countSpec(n), engine.Options{NumCPU: 1, Engine: e})
			if err != nil {
				b.Fatal(err)
			}
			defer coll.Close()
			rt := userspace.New()
			a, _, err := rt.AddVethPair("A", "B")
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				p, err := rt.NewProgram("count", engine.NewRunner(coll.Programs[fmt.Sprintf("count%d", i)]))
				if err != nil {
					b.Fatal(err)
				}
				if err := rt.Attach(a, tcx.Egress, p, tcx.AttachOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			frame := benchFrame()
			buf := make([]byte, len(frame))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, frame)
				if out := rt.Transmit(a, buf); out.Fate != userspace.Delivered {
					b.Fatalf("outcome %+v", out)
				}
			}
		}
	}
}

// BenchmarkChain_Kernel is BenchmarkChain_Userspace on the kernel: the
// same programs attached with tcx to veth A's egress in a fresh namespace,
// the frame sent from an AF_PACKET socket (the send returns once the
// egress hook and the veth transmit ran; the peer's receive runs in
// softirq, often on the same CPU). The difference between chain lengths
// is the kernel's cost per extra program.
func BenchmarkChain_Kernel(b *testing.B) {
	kb := kerneltest.NewBackend(b)
	a, _, err := kb.NetNS().AddVethPair("A", "B")
	if err != nil {
		b.Fatal(err)
	}
	coll, err := kb.LoadCollection(countSpec(benchChains[len(benchChains)-1]), kernel.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer coll.Close()
	s, err := kb.NetNS().OpenPacketSocket(a, 0x88b5)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	attached := 0
	for _, n := range benchChains {
		for ; attached < n; attached++ {
			if err := kb.Attach(a, tcx.Egress, coll.Programs[fmt.Sprintf("count%d", attached)], tcx.AttachOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("progs=%d", n), func(b *testing.B) {
			frame := benchFrame()
			for b.Loop() {
				if err := s.Send(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
