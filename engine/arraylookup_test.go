package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
)

// keyPlaces are where the lookup tests' programs point r2: the key they
// built on the stack (nil: left as it is), or memory the helper may not
// read as a key.
var keyPlaces = []struct {
	name   string
	keyPtr asm.Instructions
}{
	{"stack key", nil},
	{"context key", asm.Instructions{asm.Mov.Reg(asm.R2, asm.R6)}},
	{"NULL key", asm.Instructions{asm.Mov.Imm(asm.R2, 0)}},
	{"key past the frame", asm.Instructions{asm.Add.Imm(asm.R2, 2)}},
}

// arrayCounter counts in value[mark] of map "m" (the key the mark, read
// into the stack, or through keyPtr): it returns the new count, 0x7fff for
// NULL.
func arrayCounter(keyPtr asm.Instructions) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R1, skb.CtxMark, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("m"),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
	}
	insns = append(insns, keyPtr...)
	return append(insns, lookupAndCount()...)
}

// TestMapLookup_ArrayOnBothEngines: compiled code answers
// bpf_map_lookup_elem on arrays itself (vm.Options.ArrayLookup); the
// answers, the values reached through them and the faults must be the
// interpreter's, for plain and per-CPU arrays on two CPUs, indices past
// the end, and keys the helper may not read.
func TestMapLookup_ArrayOnBothEngines(t *testing.T) {
	marks := []uint32{0, 3, 4, 0xffffffff, 3, 1, 3, 0x80000000, 2}
	for _, typ := range []ebpf.MapType{ebpf.Array, ebpf.PerCPUArray} {
		for _, c := range keyPlaces {
			var got [2][]string
			for i, e := range []engine.Engine{engine.EngineInterp, engine.EngineJIT} {
				m := &ebpf.MapSpec{Name: "m", Type: typ, KeySize: 4, ValueSize: 12, MaxEntries: 4}
				coll := newCollection(t, handSpec(arrayCounter(c.keyPtr), m), engine.Options{NumCPU: 2, Engine: e})
				if ok, why := coll.Programs["prog"].Compiled(); e == engine.EngineJIT && !ok {
					t.Fatalf("not compiled: %s", why)
				}
				got[i] = runMarks(t, coll, marks)
			}
			for k := range marks {
				if got[0][k] != got[1][k] {
					t.Errorf("%s, %s: interpreter %s\njit %s", typ, c.name, got[0][k], got[1][k])
				}
			}
			if c.keyPtr == nil {
				// Index 3 is counted by runs 1 (cpu 1), 4 and 6 (cpu 0).
				want := map[ebpf.MapType]string{ebpf.Array: "0x3 <nil>", ebpf.PerCPUArray: "0x2 <nil>"}[typ]
				if g := got[1][6]; g != "cpu 0 mark 0x3: "+want {
					t.Errorf("%s: third count of index 3: %s, want %s", typ, g, want)
				}
				if g := got[1][2]; g != "cpu 0 mark 0x4: 0x7fff <nil>" {
					t.Errorf("%s: index past the end: %s", typ, g)
				}
			} else if !strings.Contains(got[1][0], "insn 8: read of 4 bytes") {
				t.Errorf("%s, %s: want a fault of the helper's key read: %s", typ, c.name, got[1][0])
			}
		}
	}
}

// runMarks runs coll's "prog" once per mark, on CPU k%2 for the k-th,
// and describes each result.
func runMarks(t *testing.T, coll *engine.Collection, marks []uint32) []string {
	var out []string
	for k, mark := range marks {
		x, err := coll.NewExecutor(k % 2)
		if err != nil {
			t.Fatal(err)
		}
		pkt, _ := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
		pkt.Mark = mark
		res, err := x.Run(coll.Programs["prog"], pkt)
		out = append(out, fmt.Sprintf("cpu %d mark %#x: %#x %v", k%2, mark, res.Retval, err))
	}
	return out
}

// lookupAndCount calls bpf_map_lookup_elem with r1 and r2 set and adds
// one to the value's first word: the program returns the new count,
// 0x7fff for NULL.
func lookupAndCount() asm.Instructions {
	return asm.Instructions{
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "null"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R1),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0x7fff).WithSymbol("null"),
		asm.Return(),
	}
}
