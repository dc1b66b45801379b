package engine

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/skb"
)

// Program is one loaded SCHED_CLS program. It is immutable and may run on
// any number of executors at once.
type Program struct {
	name    string
	section string
	coll    *Collection
	vm      *vm.Program
	faults  atomic.Uint64
	// ctxEager says a run of the program laid out its context image;
	// later runs lay it out before they start (Executor.Run). Only a
	// matter of speed: the image is the same either way.
	ctxEager atomic.Bool
	// ctxFields is the fields of the image the program's compiled
	// context sites access (vm.Program.CtxSiteWords); while ctxPartial,
	// a run compares only those with what the image shows before it
	// starts, instead of the whole image (Executor.Run). A run that then
	// reaches for another word (an offset in a register, a tail call, the
	// interpreter) lays the whole image out and clears ctxPartial.
	ctxFields  skb.CtxFields
	ctxPartial atomic.Bool
	lines      []sourceLine // BTF line info by raw instruction offset, ascending
}

// maxPartialCompares is the most Packet words a partial comparison of
// the context image may take (skb.CtxFields.Compares).
const maxPartialCompares = 6

// newProgram is the engine's Program for vp.
func newProgram(c *Collection, name, section string, vp *vm.Program, insns asm.Instructions) *Program {
	p := &Program{name: name, section: section, coll: c, vm: vp, lines: sourceLines(insns)}
	// Beyond a few words Lay's unrolled comparison of all of them is as
	// cheap (ctx_fields) and Shows cannot be used.
	if w := vp.CtxSiteWords(); w != 0 {
		p.ctxFields = skb.CtxFieldsOf(w)
		p.ctxPartial.Store(p.ctxFields.Compares() <= maxPartialCompares)
	}
	return p
}

// sourceLine is where a stretch of instructions starting at insn came from.
type sourceLine struct {
	insn int
	text string
}

// sourceLines collects the BTF line info of a linked program.
func sourceLines(insns asm.Instructions) []sourceLine {
	var lines []sourceLine
	iter := insns.Iterate()
	for iter.Next() {
		src := iter.Ins.Source()
		if src == nil {
			continue
		}
		text := strings.TrimSpace(src.String())
		if l, ok := src.(*btf.Line); ok {
			text = fmt.Sprintf("%s:%d: %s", path.Base(l.FileName()), l.LineNumber(), strings.TrimSpace(l.Line()))
		}
		lines = append(lines, sourceLine{int(iter.Offset), text})
	}
	return lines
}

// source is the source line of raw instruction insn, "" without line info.
func (p *Program) source(insn int) string {
	i := sort.Search(len(p.lines), func(i int) bool { return p.lines[i].insn > insn })
	if i == 0 {
		return ""
	}
	return p.lines[i-1].text
}

// Name is the program's function name in the ELF.
func (p *Program) Name() string { return p.name }

// SectionName is the ELF section the program came from ("tc", "classifier", ...).
func (p *Program) SectionName() string { return p.section }

// Len is the program's length in raw instructions, subprograms included.
func (p *Program) Len() int { return p.vm.Len() }

// Collection is the collection the program belongs to.
func (p *Program) Collection() *Collection { return p.coll }

// Faults is how many runs entered at this program ended in an error (a
// *Fault, *LimitError or *HelperError, wherever in its tail-call chain it
// happened).
func (p *Program) Faults() uint64 { return p.faults.Load() }

func (p *Program) String() string { return fmt.Sprintf("engine.Program(%s)", p.name) }

// Result is the outcome of one run. It is small enough to be returned in
// registers: a Result returned in memory cost its caller more than a
// short program's whole run, the caller's wide loads of it waiting for
// the narrow stores that had just filled it.
type Result struct {
	// Retval is the low 32 bits of r0, the tc verdict. A run that ended
	// in an error reports TC_ACT_SHOT (2): the hook drops the packet.
	Retval uint32
	// Redirect is the redirect the packet holds after the run (the last
	// bpf_redirect, bpf_redirect_peer or bpf_redirect_neigh), Kind
	// skb.RedirectNone if none was asked for. The hook acts on it only
	// when Retval is TC_ACT_REDIRECT.
	Redirect Redirect
	// Executed is the number of instructions the run executed.
	Executed uint64
}

// Redirect is where a run asked for its packet to go: the packet's
// pending redirect (skb.Packet.PendingRedirect) but bpf_redirect_neigh's
// next hop, which the packet holds.
type Redirect struct {
	Kind    skb.RedirectKind
	Ifindex uint32
	Ingress bool // BPF_F_INGRESS
}

// Run runs p on pkt on one of the collection's executors (see
// Executor.Run). It waits only while every executor is busy.
func (p *Program) Run(pkt *skb.Packet) (Result, error) {
	s, err := p.coll.acquire()
	if err != nil {
		return Result{Retval: skb.ActShot}, err
	}
	defer p.coll.pool.release(s)
	return s.x.Run(p, pkt)
}
