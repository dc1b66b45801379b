package kernel

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx"
)

func benchBackend(b *testing.B) *Backend {
	b.Helper()
	if err := Supported(); err != nil {
		if os.Getenv("TCX_REQUIRE_KERNEL") == "1" {
			b.Fatal(err)
		}
		b.Skip(err)
	}
	ns, err := NewNetNS()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ns.Close() })
	be, err := New(ns, Options{PinDir: os.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return be
}

// BenchmarkBackend_Query measures one BPF_PROG_QUERY through the namespace's
// thread; the Direct sub-benchmark, the baseline measured in the same run,
// issues the same query from the calling thread (on the host's lo), so the
// difference is the cost of the thread hop.
func BenchmarkBackend_Query(b *testing.B) {
	be := benchBackend(b)
	b.Run("NetNS", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.Query(1, tcx.Ingress, tcx.QueryOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Direct", func(b *testing.B) {
		for b.Loop() {
			attr := progQueryAttr{targetIfindex: 1, attachType: tcx.AttachTCXIngress}
			if _, err := sysBPF(cmdProgQuery, &attr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBackend_AttachDetach is one plain attach plus its detach on lo:
// the kernel's RCU grace periods, next to which the thread hop is small.
func BenchmarkBackend_AttachDetach(b *testing.B) {
	be := benchBackend(b)
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		b.Fatal(err)
	}
	prog, err := newProgram(p)
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	for b.Loop() {
		if err := be.Attach(1, tcx.Ingress, prog, tcx.AttachOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := be.Detach(1, tcx.Ingress, prog, tcx.DetachOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
