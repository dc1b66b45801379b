package vm

import (
	"testing"

	"github.com/cilium/ebpf/asm"
)

// TestStackProofs checks each rule of the stack analysis on programs
// built for it: where a register must be known as r10 plus an offset,
// and where it must not (the proof would let an access skip its check).
func TestStackProofs(t *testing.T) {
	helpers := make([]HelperFunc, 8)
	helpers[asm.FnMapLookupElem] = func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { return 0, nil }
	type want struct {
		label string // the op the fact holds before
		reg   int
		known bool
		off   int64
	}
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		want  []want
	}{
		{"copy and add", asm.Instructions{
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -8), asm.Sub.Imm(asm.R2, 8),
			asm.Mov.Reg(asm.R3, asm.R2),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return(),
		}, []want{{"at", 2, true, -16}, {"at", 3, true, -16}}},
		{"a 32-bit copy is not a pointer", asm.Instructions{
			asm.Mov.Reg32(asm.R2, asm.RFP),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return(),
		}, []want{{"at", 2, false, 0}}},
		{"adding a register", asm.Instructions{
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Reg(asm.R2, asm.R3),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return(),
		}, []want{{"at", 2, false, 0}}},
		{"paths that agree", asm.Instructions{
			asm.JEq.Imm(asm.R1, 0, "a"),
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -8), asm.Ja.Label("b"),
			asm.Mov.Reg(asm.R2, asm.RFP).WithSymbol("a"), asm.Sub.Imm(asm.R2, 8),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("b"), asm.Return(),
		}, []want{{"b", 2, true, -8}}},
		{"paths that differ", asm.Instructions{
			asm.JEq.Imm(asm.R1, 0, "a"),
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -8), asm.Ja.Label("b"),
			asm.Mov.Reg(asm.R2, asm.RFP).WithSymbol("a"), asm.Add.Imm(asm.R2, 8),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("b"), asm.Return(),
		}, []want{{"b", 2, false, 0}}},
		{"a path where it is not a pointer", asm.Instructions{
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.JEq.Imm(asm.R1, 0, "b"),
			asm.Mov.Imm(asm.R2, -8),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("b"), asm.Return(),
		}, []want{{"b", 2, false, 0}}},
		{"a loop that moves it", asm.Instructions{
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Mov.Imm(asm.R3, 4),
			asm.Add.Imm(asm.R2, -8).WithSymbol("loop"),
			asm.Add.Imm(asm.R3, -1),
			asm.JNE.Imm(asm.R3, 0, "loop"),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return(),
		}, []want{{"loop", 2, false, 0}, {"at", 2, false, 0}}},
		{"a loop that keeps it", asm.Instructions{
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -8), asm.Mov.Imm(asm.R3, 4),
			asm.StoreImm(asm.R2, 0, 1, asm.Word).WithSymbol("loop"),
			asm.Add.Imm(asm.R3, -1),
			asm.JNE.Imm(asm.R3, 0, "loop"),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return(),
		}, []want{{"loop", 2, true, -8}, {"at", 2, true, -8}}},
		{"loads, atomics and LD_IND overwrite", asm.Instructions{
			asm.Mov.Reg(asm.R2, asm.RFP), asm.Mov.Reg(asm.R3, asm.RFP), asm.Mov.Reg(asm.R4, asm.RFP),
			asm.Mov.Reg(asm.R0, asm.RFP), asm.Mov.Reg(asm.R5, asm.RFP),
			asm.LoadMem(asm.R2, asm.RFP, -8, asm.DWord),
			asm.StoreXAdd(asm.R5, asm.R3, asm.DWord),
			asm.Instruction{OpCode: asm.OpCode(asm.StXClass).SetMode(asm.AtomicMode).SetSize(asm.DWord), Dst: asm.R5, Src: asm.R4, Offset: -8, Constant: int64(asm.Xchg)},
			asm.Mov.Reg(asm.R5, asm.RFP).WithSymbol("ld"),
			asm.LoadInd(asm.R0, asm.R1, 0, asm.Byte),
			asm.Mov.Imm(asm.R1, 0).WithSymbol("at"), asm.Return(),
		}, []want{{"ld", 2, false, 0}, {"ld", 4, false, 0}, {"ld", 0, false, 0}, {"at", 0, false, 0}, {"at", 5, true, 0}}},
		{"an entry that is a loop head starts unknown", asm.Instructions{
			asm.Add.Imm(asm.R3, 1).WithSymbol("top"),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.JLT.Imm(asm.R3, 4, "top"),
			asm.Mov.Imm(asm.R0, 0), asm.Return(),
		}, []want{{"top", 2, false, 0}}},
		{"helper calls keep r6-r9 only", asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.RFP), asm.Mov.Reg(asm.R5, asm.RFP), asm.Mov.Reg(asm.R6, asm.RFP), asm.Mov.Reg(asm.R9, asm.RFP),
			asm.Add.Imm(asm.R9, -4),
			asm.FnMapLookupElem.Call(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return(),
		}, []want{{"at", 1, false, 0}, {"at", 5, false, 0}, {"at", 6, true, 0}, {"at", 9, true, -4}}},
		{"bpf-to-bpf calls: the callee knows nothing, the caller keeps r6-r9", asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, -8), asm.Mov.Reg(asm.R7, asm.R1),
			asm.Call.Label("f"),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return(),
			asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("f"), asm.Return(),
		}, []want{{"at", 1, false, 0}, {"at", 7, true, -8}, {"f", 1, false, 0}}},
	} {
		p, err := Load(c.insns, Options{Helpers: helpers})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		facts := stackProofs(p)
		at := map[string]int{}
		raw := 0
		for _, ins := range c.insns {
			if sym := ins.Symbol(); sym != "" {
				at[sym] = raw
			}
			raw += int(ins.Size() / asm.InstructionSize)
		}
		for _, w := range c.want {
			op := -1
			for i, r := range p.insn {
				if int(r) == at[w.label] {
					op = i
				}
			}
			got := facts[op][w.reg]
			if got.known != w.known || (w.known && got.off != w.off) {
				t.Errorf("%s: before %s, r%d: %+v; want known %v off %d", c.name, w.label, w.reg, got, w.known, w.off)
			}
		}
	}
}

// TestStackOff checks which accesses through a known stack pointer are
// proven to stay in the frame: all of their bytes, in the frame's 512.
func TestStackOff(t *testing.T) {
	var f fpFacts
	f[2] = fpFact{known: true, off: -8}
	for _, c := range []struct {
		o   op
		ok  bool
		off int32
	}{
		{op{kind: kLdxDW, dst: 0, src: 2, off: 0}, true, -8},
		{op{kind: kLdxDW, dst: 0, src: 2, off: 1}, false, 0},     // one byte above the frame
		{op{kind: kStxW, dst: 2, src: 0, off: 4}, true, -4},      // the last 4 bytes
		{op{kind: kStB, dst: 2, off: -504}, true, -512},          // the first byte
		{op{kind: kStB, dst: 2, off: -505}, false, 0},            // below the frame
		{op{kind: kLdxB, dst: 0, src: 3, off: -8}, false, 0},     // r3 unknown
		{op{kind: kLdxB, dst: 0, src: regFP, off: -8}, true, -8}, // r10
		{op{kind: kAtomic64, dst: 2, src: 0}, false, 0},          // atomics check
	} {
		off, ok := stackOff(&c.o, &f)
		if ok != c.ok || off != c.off {
			t.Errorf("%+v: %d, %v; want %d, %v", c.o, off, ok, c.off, c.ok)
		}
	}
}

// TestConstProofs checks the constant facts and the hints: a constant
// survives moves and constant adds, dies at a join of two values (two
// addresses in shared regions leave a hint that it is one) and at every
// other write; r1 starts as the context's address (a hint) and
// r0 after a helper as a map value (a hint); a register plus a constant
// held in another one is still a stack pointer.
func TestConstProofs(t *testing.T) {
	helpers := make([]HelperFunc, 8)
	helpers[asm.FnMapLookupElem] = func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { return 0, nil }
	insns := asm.Instructions{
		asm.LoadImm(asm.R2, 0x1500000000, asm.DWord), asm.Add.Imm(asm.R2, 8), asm.Sub.Imm(asm.R2, 2),
		asm.Mov.Reg(asm.R3, asm.R2), asm.Mov.Imm(asm.R4, -16), asm.Mov.Reg(asm.R5, asm.RFP), asm.Add.Reg(asm.R5, asm.R4),
		asm.Mov.Reg(asm.R6, asm.R1), asm.Add.Imm(asm.R6, 76),
		asm.LoadImm(asm.R8, 0x1500000010, asm.DWord), asm.LoadImm(asm.R9, 0x1900000000, asm.DWord), asm.Add.Reg(asm.R9, asm.R0),
		asm.Mov.Imm(asm.R7, 0).WithSymbol("a"),
		asm.JEq.Imm(asm.R1, 0, "b"), asm.Mov.Imm(asm.R7, 1), asm.Mov.Imm(asm.R4, -16),
		asm.LoadImm(asm.R8, 0x1500000008, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("b"),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Imm(asm.R1, 0).WithSymbol("c"), asm.Return(),
	}
	p, err := Load(insns, Options{Helpers: helpers})
	if err != nil {
		t.Fatal(err)
	}
	facts := stackProofs(p)
	at := func(label string) *fpFacts {
		raw := 0
		for _, ins := range insns {
			if ins.Symbol() == label {
				break
			}
			raw += int(ins.Size() / asm.InstructionSize)
		}
		for i, r := range p.insn {
			if int(r) == raw {
				return &facts[i]
			}
		}
		t.Fatalf("no op at %s", label)
		return nil
	}
	for _, c := range []struct {
		label string
		reg   int
		want  fpFact
	}{
		{"a", 2, fpFact{cnst: true, val: 0x1500000006}},
		{"a", 3, fpFact{cnst: true, val: 0x1500000006}},
		{"a", 4, fpFact{cnst: true, val: 1<<64 - 16}},
		{"a", 5, fpFact{known: true, off: -16}},
		{"a", 6, fpFact{hint: hintAddr, val: CtxAddr + 76}},
		{"a", 9, fpFact{hint: hintSlot}},                    // a global plus an index
		{"b", 7, fpFact{}},                                  // 0 or 1
		{"b", 8, fpFact{hint: hintSlot}},                    // one of two globals
		{"b", 4, fpFact{cnst: true, val: 1<<64 - 16}},       // the same on both paths
		{"c", 0, fpFact{hint: hintSlot}},                    // a helper's result
		{"c", 2, fpFact{}},                                  // r1-r5 die at calls
		{"c", 6, fpFact{hint: hintAddr, val: CtxAddr + 76}}, // r6-r9 do not
	} {
		if got := at(c.label)[c.reg]; got != c.want {
			t.Errorf("before %s, r%d: %+v; want %+v", c.label, c.reg, got, c.want)
		}
	}
}

// TestStackProofs_SpilledHint checks the context hint through a stack
// slot: kept across a helper call and restored by an 8-byte reload of
// the same slot; lost when a store overlaps the slot, when paths
// disagree, or for another slot.
func TestStackProofs_SpilledHint(t *testing.T) {
	helpers := make([]HelperFunc, 8)
	helpers[asm.FnMapLookupElem] = func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { return 0, nil }
	spill := asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord)
	reload := asm.LoadMem(asm.R1, asm.RFP, -16, asm.DWord)
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		hint  bool
	}{
		{"across a helper call", asm.Instructions{spill, asm.FnMapLookupElem.Call(), reload}, true},
		{"through a copy of r10", asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.RFP), asm.Add.Imm(asm.R6, -16), asm.StoreMem(asm.R6, 0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R1, 0), reload,
		}, true},
		{"a store over half the slot", asm.Instructions{spill, asm.StoreImm(asm.RFP, -12, 0, asm.Word), reload}, false},
		{"an atomic on the slot", asm.Instructions{spill, asm.Mov.Imm(asm.R2, 1), asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -16), asm.StoreXAdd(asm.R3, asm.R2, asm.DWord), reload}, false},
		{"another slot", asm.Instructions{spill, asm.LoadMem(asm.R1, asm.RFP, -8, asm.DWord)}, false},
		{"a narrow reload", asm.Instructions{spill, asm.LoadMem(asm.R1, asm.RFP, -16, asm.Word)}, false},
		{"paths that disagree", asm.Instructions{
			asm.JEq.Imm(asm.R2, 0, "other"),
			spill, asm.Ja.Label("join"),
			asm.StoreMem(asm.RFP, -16, asm.R2, asm.DWord).WithSymbol("other"),
			reload.WithSymbol("join"),
		}, false},
		{"paths that agree", asm.Instructions{
			asm.JEq.Imm(asm.R2, 0, "other"),
			spill, asm.Ja.Label("join"),
			asm.Mov.Reg(asm.R3, asm.R1).WithSymbol("other"), asm.StoreMem(asm.RFP, -16, asm.R3, asm.DWord),
			reload.WithSymbol("join"),
		}, true},
	} {
		insns := append(c.insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("at"), asm.Return())
		p, err := Load(insns, Options{Helpers: helpers})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		facts := stackProofs(p)
		got := facts[len(p.code)-2][1]
		if (got.hint == hintAddr && got.val == CtxAddr) != c.hint {
			t.Errorf("%s: r1 after the reload: %+v; want the context hint %v", c.name, got, c.hint)
		}
	}
}

// TestJIT_SpilledHintOverwritten: a spilled context pointer whose slot
// a store the analysis cannot place overwrites (through a pointer built
// from a loaded offset) is not the context when reloaded; the access
// through it must fault as in the interpreter, not read the image.
func TestJIT_SpilledHintOverwritten(t *testing.T) {
	insns := asm.Instructions{
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R2, -16),
		asm.StoreMem(asm.RFP, -8, asm.R2, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, -8, asm.DWord), // -16, unknown to the analysis
		asm.Add.Reg(asm.R2, asm.RFP),
		asm.Mov.Imm(asm.R3, 64),
		asm.StoreMem(asm.R2, 0, asm.R3, asm.DWord), // the slot now holds 64
		asm.LoadMem(asm.R1, asm.RFP, -16, asm.DWord),
		asm.LoadMem(asm.R0, asm.R1, 8, asm.Word),
		asm.Return(),
	}
	var faults [2]string
	for i, e := range []Engine{EngineInterp, EngineJIT} {
		p, err := Load(insns, Options{Engine: e})
		if err != nil {
			t.Fatal(err)
		}
		m := NewMachine()
		m.SetContext(make([]byte, 32))
		_, err = m.Run(p)
		if err == nil {
			t.Fatalf("%v: the load through 64 did not fault", e)
		}
		faults[i] = err.Error()
	}
	if faults[0] != faults[1] {
		t.Errorf("interpreter: %s\njit: %s", faults[0], faults[1])
	}
}
