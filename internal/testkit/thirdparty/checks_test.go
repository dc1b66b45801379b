package thirdparty_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/checkprogs"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/internal/testkit/thirdparty"
	"github.com/tcxgo/tcx/kernel"
)

// checkedReasons are the verifier messages of what the engine's load-time
// checks cover.
var checkedReasons = regexp.MustCompile(`combined stack size|tail_calls are not allowed|Caller passes invalid args|doesn't return scalar|expects pointer to ctx|modified ctx ptr|invalid access to packet|outside of the packet`)

// ownObjects are the project's tc objects the kernel loads (the kernel
// differential's corpus, its helper probes, the datapath and operator
// programs): the checks must stay silent on all of them too.
var ownObjects = []string{"../../../testdata/progs", "../../../testdata/progs/ops", "../kerneldiff/testdata", "../../../skb/testdata"}

// TestThirdParty_LoadTimeChecks loads every tc program of the rejected
// selftests, of the corpus and of the project's own objects on its own
// into the kernel and into the engine (default options, then Strict): a
// program the engine warns about
// must be one the kernel refuses (no false alarm), Strict must refuse
// exactly the programs with warnings, with EACCES, and the programs the
// kernel refuses for a reason the checks cover are counted as caught or
// missed ("when provable": the checks are cheap, not a verifier).
func TestThirdParty_LoadTimeChecks(t *testing.T) {
	kerneltest.RequireKernel(t)
	var objs []string
	dirs := append(append([]string{thirdparty.RejectedDir}, thirdparty.Dirs...), ownObjects...)
	for _, dir := range dirs {
		o, err := thirdparty.Objects(dir)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	var nprogs, covered, caught, falseAlarms int
	for _, obj := range objs {
		_, tcOnly, err := thirdparty.Specs(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range sortedKeys(tcOnly.Programs) {
			one := tcOnly.Copy()
			one.Programs = map[string]*ebpf.ProgramSpec{name: one.Programs[name]}
			id := filepath.Base(obj) + "/" + name
			coll, eerr := engine.NewCollection(one, engine.Options{NumCPU: 1})
			if eerr != nil {
				continue // refused for another reason (helpers, kfuncs, ...)
			}
			warns := checkWarnings(coll)
			coll.Close()
			nprogs++
			kern, kerr := kernel.NewTestRunner(one)
			if kerr == nil {
				kern.Close()
			}
			isCovered := kerr != nil && checkedReasons.MatchString(kerr.Error())
			if isCovered {
				covered++
			}
			switch {
			case len(warns) > 0 && kerr == nil:
				falseAlarms++
				t.Errorf("%s: the kernel loads it, the engine warns: %v", id, warns)
			case len(warns) > 0:
				caught++
				t.Logf("%s: caught: %v (kernel: %v)", id, warns[0], firstLine(kerr))
			case isCovered:
				t.Logf("%s: missed: the kernel refuses it (%v), the engine's checks do not see it", id, firstLine(kerr))
			}
			_, serr := engine.NewCollection(one, engine.Options{NumCPU: 1, Strict: true})
			if (serr != nil) != (len(warns) > 0) || (serr != nil && !errors.Is(serr, syscall.EACCES)) {
				t.Errorf("%s: strict load: %v, with %d warnings by default", id, serr, len(warns))
			}
		}
	}
	line := fmt.Sprintf("load-time checks: %d programs, %d refused by the kernel for a checked reason, %d caught, %d false alarms", nprogs, covered, caught, falseAlarms)
	fmt.Println(line)
	t.Log(line)
	if caught < 5 {
		t.Errorf("caught %d programs; the rejected selftests hold at least 5 the checks see", caught)
	}
}

func checkWarnings(c *engine.Collection) []engine.Warning {
	var out []engine.Warning
	for _, w := range c.Warnings {
		if w.Check != engine.CheckSkipped {
			out = append(out, w)
		}
	}
	return out
}

func firstLine(err error) string {
	s := err.Error()
	if m := checkedReasons.FindString(s); m != "" {
		return m
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestLoadTimeChecks_Boundaries puts each check on both sides of the
// kernel's limit with small hand-written programs and asserts that the
// engine warns exactly where the kernel's verifier refuses.
func TestLoadTimeChecks_Boundaries(t *testing.T) {
	kerneltest.RequireKernel(t)
	// chain: main and two callees using the given stack bytes each.
	chain := func(sizes ...int16) asm.Instructions {
		var insns asm.Instructions
		for i, n := range sizes {
			sym := fmt.Sprintf("f%d", i)
			insns = append(insns, asm.StoreMem(asm.R10, -n, asm.R1, asm.DWord).WithSymbol(sym))
			if i+1 < len(sizes) {
				insns = append(insns, asm.Call.Label(fmt.Sprintf("f%d", i+1)))
			}
			insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
		}
		return insns
	}
	// tail: main uses n bytes and calls f, which tail-calls (which the
	// kernel allows a subprogram with BTF only).
	fn := func(name string) *btf.Func {
		ctx := &btf.Pointer{Target: &btf.Struct{Name: "__sk_buff"}}
		proto := &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}, Params: []btf.FuncParam{{Name: "skb", Type: ctx}}}
		return &btf.Func{Name: name, Type: proto, Linkage: btf.StaticFunc}
	}
	tail := func(n int16) asm.Instructions {
		return asm.Instructions{
			btf.WithFuncMetadata(asm.StoreMem(asm.R10, -n, asm.R1, asm.DWord), fn("p")),
			asm.Call.Label("f"),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
			btf.WithFuncMetadata(asm.LoadMapPtr(asm.R2, 0).WithReference("jmp").WithSymbol("f"), fn("f")),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnTailCall.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}
	}
	// pkt: checks 14 bytes, then loads size bytes at offset 12 (or, with
	// no check, right away).
	pkt := func(check bool, size asm.Size) asm.Instructions {
		insns := asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 76, asm.Word), // data
			asm.LoadMem(asm.R3, asm.R1, 80, asm.Word), // data_end
		}
		if check {
			insns = append(insns, asm.Mov.Reg(asm.R4, asm.R2), asm.Add.Imm(asm.R4, 14), asm.JGT.Reg(asm.R4, asm.R3, "out"))
		}
		return append(insns, asm.LoadMem(asm.R0, asm.R2, 12, size), asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return())
	}
	for _, c := range []struct {
		name  string
		insns asm.Instructions
	}{
		{"stack 16+256+240", chain(16, 256, 240)},
		{"stack 16+256+256", chain(16, 256, 256)},
		{"stack 512", chain(512)},
		{"tail call under 240", tail(240)},
		{"tail call under 256", tail(256)},
		{"2 bytes in a 14-byte bound", pkt(true, asm.Half)},
		{"4 bytes in a 14-byte bound", pkt(true, asm.Word)},
		{"unchecked", pkt(false, asm.Byte)},
		{"join of 14 and 14 bytes", checkprogs.Join(14, 14)},
		{"join of 20 and 14 bytes", checkprogs.Join(20, 14)},
		{"join of 14 and 12 bytes", checkprogs.Join(14, 12)},
		{"join of 12 and 14 bytes", checkprogs.Join(12, 14)},
		{"loop keeping its bound", checkprogs.Loop(false)},
		{"loop losing its bound", checkprogs.Loop(true)},
		{"variable offset up to 0xff", checkprogs.VarOffset(0xff)},
		{"variable offset up to 0xffff", checkprogs.VarOffset(0xffff)},
	} {
		spec := &ebpf.CollectionSpec{
			Maps:     map[string]*ebpf.MapSpec{"jmp": {Name: "jmp", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
			Programs: map[string]*ebpf.ProgramSpec{"p": {Name: "p", Type: ebpf.SchedCLS, License: "GPL", Instructions: c.insns}},
		}
		kern, kerr := kernel.NewTestRunner(spec)
		if kerr == nil {
			kern.Close()
		}
		coll, err := engine.NewCollection(spec, engine.Options{NumCPU: 1})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		warns := checkWarnings(coll)
		coll.Close()
		if (kerr != nil) != (len(warns) > 0) {
			t.Errorf("%s: kernel %v; engine warnings %v", c.name, kerr, warns)
		} else {
			t.Logf("%s: kernel %v; engine %v", c.name, kerr, warns)
		}
	}
}
