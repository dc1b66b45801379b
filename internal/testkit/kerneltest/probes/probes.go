package probes

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx"
)

// SeenMap is the name of the array map (u32 key -> u32 value) the probes
// write: seen[n] = 1 when probe n ran.
const SeenMap = "seen"

// MaxProbe is the highest probe number SeenMap can record.
const MaxProbe = 255

// Probe is one probe program.
type Probe struct {
	N       int   // the seen slot it sets, 0..MaxProbe; it is named "tcN"
	Verdict int32 // what it returns (tcx.VerdictNext, VerdictPass, ...)
}

// Name is the program name, "tcN".
func (p Probe) Name() string { return fmt.Sprintf("tc%d", p.N) }

// SeenSpec is the spec of the shared seen map.
func SeenSpec() *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: SeenMap, Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: MaxProbe + 1}
}

// ProgramSpec is "seen[N] = 1; return Verdict" as a SCHED_CLS program that
// references SeenMap.
func (p Probe) ProgramSpec() *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Name: p.Name(),
		Type: ebpf.SchedCLS,
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, int64(p.N), asm.Word), // key on the stack
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, 0).WithReference(SeenMap),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"), // N beyond the map: record nothing
			asm.StoreImm(asm.R0, 0, 1, asm.Word),
			asm.Mov.Imm(asm.R0, p.Verdict).WithSymbol("out"),
			asm.Return(),
		},
		License: "Dual MIT/GPL",
	}
}

// Spec is a collection of the given probes plus SeenMap; programs are keyed
// by name ("tc1", ...). Loading it twice gives distinct programs (new IDs).
func Spec(probes ...Probe) *ebpf.CollectionSpec {
	spec := &ebpf.CollectionSpec{
		Maps:     map[string]*ebpf.MapSpec{SeenMap: SeenSpec()},
		Programs: make(map[string]*ebpf.ProgramSpec, len(probes)),
	}
	for _, p := range probes {
		spec.Programs[p.Name()] = p.ProgramSpec()
	}
	return spec
}

// SelftestVerdict is what tcN of the kernel's progs/test_tc_link.c returns:
// tc1..tc4 TCX_NEXT, tc5..tc8 TCX_PASS. Other numbers stand for the
// selftests' dummy programs, which pass.
func SelftestVerdict(n int) int32 {
	if n >= 1 && n <= 4 {
		return tcx.VerdictNext
	}
	return tcx.VerdictPass
}

// Selftest is tc1..tcN with the selftests' verdicts.
func Selftest(n int) *ebpf.CollectionSpec {
	probes := make([]Probe, n)
	for i := range probes {
		probes[i] = Probe{N: i + 1, Verdict: SelftestVerdict(i + 1)}
	}
	return Spec(probes...)
}
