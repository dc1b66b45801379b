package engine

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// TestApplyFixup: the engine's own fixup application (used where
// cilium/ebpf applies none, off Linux) patches core_skb exactly as
// COREFixup.Apply does, poisoned instructions included.
func TestApplyFixup(t *testing.T) {
	spec, err := LoadCollectionSpec("../testdata/progs/core_skb.o")
	if err != nil {
		t.Fatal(err)
	}
	target, err := UAPITypes()
	if err != nil {
		t.Fatal(err)
	}
	local, err := btf.NewBuilder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	insns := spec.Programs["core_skb"].Instructions
	ours, theirs := make(asm.Instructions, len(insns)), make(asm.Instructions, len(insns))
	copy(ours, insns)
	copy(theirs, insns)
	var relos []*btf.CORERelocation
	var idx []int
	for i := range insns {
		if r := btf.CORERelocationMetadata(&insns[i]); r != nil {
			relos, idx = append(relos, r), append(idx, i)
		}
	}
	if len(relos) < 10 {
		t.Fatalf("%d relocations in core_skb; want at least 10", len(relos))
	}
	fixups, err := btf.CORERelocate(relos, []*btf.Spec{target}, spec.ByteOrder, local.Add)
	if err != nil {
		t.Fatal(err)
	}
	poisoned := 0
	for k, f := range fixups {
		i := idx[k]
		if err := f.Apply(&theirs[i]); err != nil {
			t.Skipf("cilium/ebpf applies no fixups here: %v", err)
		}
		if err := applyFixup(&ours[i], f.String()); err != nil {
			t.Fatalf("%s: %v", f.String(), err)
		}
		a, b := ours[i], theirs[i]
		if a.OpCode != b.OpCode || a.Dst != b.Dst || a.Src != b.Src || a.Offset != b.Offset || a.Constant != b.Constant {
			t.Errorf("insn %d, fixup %s: engine %v, cilium/ebpf %v", i, f.String(), a, b)
		}
		if b.IsBuiltinCall() && b.Constant == btf.COREBadRelocationSentinel {
			poisoned++
		}
	}
	if poisoned == 0 {
		t.Error("no poisoned instruction compared")
	}
}
