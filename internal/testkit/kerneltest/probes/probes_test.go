package probes

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx"
)

func TestSpec(t *testing.T) {
	spec := Selftest(8)
	if len(spec.Programs) != 8 || spec.Maps[SeenMap].MaxEntries != MaxProbe+1 {
		t.Fatalf("spec: %d programs, seen map %+v", len(spec.Programs), spec.Maps[SeenMap])
	}
	for n := 1; n <= 8; n++ {
		p := spec.Programs[Probe{N: n}.Name()]
		if p == nil || p.Type != ebpf.SchedCLS {
			t.Fatalf("tc%d: %+v", n, p)
		}
		insns := p.Instructions
		key, ret := insns[0], insns[len(insns)-2]
		if key.Constant != int64(n) || ret.OpCode != asm.Mov.Op(asm.ImmSource) || ret.Constant != int64(SelftestVerdict(n)) {
			t.Errorf("tc%d: key %v, verdict %v", n, key, ret)
		}
		if ref := insns[3].Reference(); ref != SeenMap {
			t.Errorf("tc%d: map reference %q", n, ref)
		}
	}
	if SelftestVerdict(4) != tcx.VerdictNext || SelftestVerdict(5) != tcx.VerdictPass {
		t.Error("selftest verdicts: tc1..tc4 NEXT, tc5..tc8 PASS")
	}
}
