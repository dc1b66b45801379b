package vm

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"unsafe"

	x "github.com/tcxgo/tcx/internal/vm/amd64"
)

// native is a program compiled to amd64 machine code.
type native struct {
	code  *x.Code
	base  uintptr // the entry that resumes at jitState.resume
	start uintptr // the entry that starts at op 0
	fresh uintptr // the entry that starts a run at op 0 (RunCtx)
	off   []int32 // op index -> code offset of its first instruction
	// dirty[i] is, for a subprogram entry i, how far below r10 the
	// subprogram's r10-relative stores reach (0: none); see Machine.dirtyLo.
	dirty []int32
	calls bool // the program has bpf-to-bpf calls
	// fixed says the code addresses the stack as frame 0's (jitc.fixed):
	// it must run at depth 0, and runs interpreted elsewhere.
	fixed bool
	// unsettles says a run of the program may end with Machine state
	// RunCtx would have to set again: its frames (calls) or its may_goto
	// count (see Machine.settled).
	unsettles bool
	// ctxSites are the context accesses at constant offsets that have a
	// short path (jitc.ctxShort), by index; verdicts the last decision
	// on them (Machine.jitCtxSites), shared by the Machines running it.
	ctxSites []ctxSite
	verdicts atomic.Pointer[siteVerdicts]
	// siteWords is the image words ctxSites access (CtxSiteWords).
	siteWords uint64
}

// BPF r0-r9 live in machine registers for the whole run; r12 holds the
// Machine, rbp the instruction budget (jitState.budget), rcx, r10 and r11
// are scratch. BPF r10, the frame pointer, stays in Machine.regs[10]
// (fpMem): it only changes at bpf-to-bpf calls and returns and tail
// calls, most accesses through it are proven stack offsets, and the
// budget changes at every taken jump, where a read-modify-write of memory
// chained store-forwarding latency through every branch.
var jitReg = [regFP]x.Reg{x.RAX, x.RDI, x.RSI, x.RDX, x.R9, x.R8, x.RBX, x.R13, x.R14, x.R15}

const (
	jState  = x.R12
	jBudget = x.RBP // jitState.budget while compiled code runs
	jT0     = x.R11 // address, then host pointer
	jT1     = x.R10
	jCX     = x.RCX // region pointer, shift count
)

// fpMem is where BPF r10 lives (Machine.regs[10], kept by Go's setFrame
// and compiled calls and returns).
func fpMem() x.Mem { return x.M(jState, offRegs+8*regFP) }

// stackAt is the operand of the stack byte at r10+off, which stackProofs
// proved to lie in the frame; it may clobber r11.
func (c *jitc) stackAt(off int32) x.Mem {
	if c.fixed {
		return x.M(jState, offStack+StackSize+off) // frame 0's r10
	}
	c.a.Load(4, jT0, fpMem())
	return x.MI(jState, jT0, offStack+off)
}

// addrTo puts BPF register r plus off in dst (an address to translate).
func (c *jitc) addrTo(dst x.Reg, r uint8, off int32) {
	if r == regFP {
		c.a.Load(8, dst, fpMem())
		if off != 0 {
			c.a.Lea(true, dst, x.M(dst, off))
		}
		return
	}
	c.a.Lea(true, dst, x.M(jitReg[r], off))
}

// Offsets into Machine and region the code uses.
var (
	offRegs      = int32(unsafe.Offsetof(Machine{}.regs))
	offStack     = int32(unsafe.Offsetof(Machine{}.stack))
	offRegions   = int32(unsafe.Offsetof(Machine{}.regions))
	offMayGoto   = int32(unsafe.Offsetof(Machine{}.mayGoto))
	offDirtyLo   = int32(unsafe.Offsetof(Machine{}.dirtyLo))
	offDirtyHi   = int32(unsafe.Offsetof(Machine{}.dirtyHi))
	offJIT       = int32(unsafe.Offsetof(Machine{}.jit))
	offResume    = offJIT + int32(unsafe.Offsetof(jitState{}.resume))
	offBudget    = offJIT + int32(unsafe.Offsetof(jitState{}.budget))
	offCode      = offJIT + int32(unsafe.Offsetof(jitState{}.code))
	offPC        = offJIT + int32(unsafe.Offsetof(jitState{}.pc))
	offPktLo     = offJIT + int32(unsafe.Offsetof(jitState{}.pktLo))
	offPktMax    = offJIT + int32(unsafe.Offsetof(jitState{}.pktMax))
	offPktDel    = offJIT + int32(unsafe.Offsetof(jitState{}.pktDelta))
	offSave      = offJIT + int32(unsafe.Offsetof(jitState{}.save))
	offCtxFr     = offJIT + int32(unsafe.Offsetof(jitState{}.ctxFresh))
	offCtxDirt   = offJIT + int32(unsafe.Offsetof(jitState{}.ctxDirty))
	offCtxImg    = offJIT + int32(unsafe.Offsetof(jitState{}.ctxImg))
	offCtxPl     = offJIT + int32(unsafe.Offsetof(jitState{}.ctxPlain))
	offCtxPol    = offJIT + int32(unsafe.Offsetof(jitState{}.ctxPol))
	offCtxAl     = offJIT + int32(unsafe.Offsetof(jitState{}.ctxAlias))
	offCPU       = offJIT + int32(unsafe.Offsetof(jitState{}.cpu))
	offCtxLo     = offJIT + int32(unsafe.Offsetof(jitState{}.ctxLo))
	offCtxMax    = offJIT + int32(unsafe.Offsetof(jitState{}.ctxMax))
	offLimit     = offJIT + int32(unsafe.Offsetof(jitState{}.limit))
	offMemo      = offJIT + int32(unsafe.Offsetof(jitState{}.memo))
	memoSize     = int32(unsafe.Sizeof(slotMemo{}))
	offMemoLo    = int32(unsafe.Offsetof(slotMemo{}.lo))
	offMemoMax   = int32(unsafe.Offsetof(slotMemo{}.max))
	offMemoDelta = int32(unsafe.Offsetof(slotMemo{}.delta))
	offWays      = offJIT + int32(unsafe.Offsetof(jitState{}.ways))
	offWayNext   = offJIT + int32(unsafe.Offsetof(jitState{}.wayNext))
	offSiteWay   = offJIT + int32(unsafe.Offsetof(jitState{}.siteWay))
	offSteps     = int32(unsafe.Offsetof(Machine{}.steps))
	offMPC       = int32(unsafe.Offsetof(Machine{}.pc))

	regionSize = int32(unsafe.Sizeof(region{}))
	offRBuf    = int32(unsafe.Offsetof(region{}.buf))
	offRBase   = int32(unsafe.Offsetof(region{}.base))
	offRLo     = int32(unsafe.Offsetof(region{}.lo))
	offRHi     = int32(unsafe.Offsetof(region{}.hi))
	offRPerm   = int32(unsafe.Offsetof(region{}.perm))
	offRStride = int32(unsafe.Offsetof(region{}.stride))
	offRSlot   = int32(unsafe.Offsetof(region{}.slot))
	offRMagic  = int32(unsafe.Offsetof(region{}.magic))
	offRPolicy = int32(unsafe.Offsetof(region{}.policy))
	offRArrB   = int32(unsafe.Offsetof(region{}.arrBase))
	offRArrN   = int32(unsafe.Offsetof(region{}.arrN))
	offRArrS   = int32(unsafe.Offsetof(region{}.arrStride))
)

// maxCode bounds the machine code of one program (rel32 jumps reach 2
// GiB; a million instructions compile to far less).
const maxCode = 1 << 30

// jitc compiles one program.
type jitc struct {
	a      x.Asm
	p      *Program
	ops    []x.Label // op index -> label
	common x.Label
	stubs  []stub   // out-of-line exits, emitted after the body
	late   []func() // out-of-line slow paths, emitted after the body
	err    error    // why the program cannot be compiled
	// translators are the shared address translation routines, by
	// access size and permissions (see translateCall).
	translators map[int]x.Label
	// dirtyAt is native.dirty: how far below r10 each subprogram's
	// untracked stores reach.
	dirtyAt []int32
	// facts are the stack proofs before every op (stackProofs).
	facts []fpFacts
	// pkt are the packet range proofs before every op and guard the
	// loads of packet pointers they rest on (pktProofs); nil without.
	pkt   []pktFacts
	guard []uint8
	// ctxSites is native.ctxSites.
	ctxSites []ctxSite
	// salt tells this program's access sites from other programs' in
	// siteMemoAt.
	salt uint64
	// fixed: the program makes no bpf-to-bpf call, so every frame it
	// runs in is the one it was entered in, which is frame 0 but for a
	// tail call made from a subprogram. Its stack accesses then take
	// frame 0's address as an immediate instead of loading r10 for each
	// (stackAt); Go runs the rare entry at another depth interpreted
	// (native.fixed).
	fixed bool
}

// stub is an out-of-line exit to Go at op pc.
type stub struct {
	l     x.Label
	pc    int
	code  uint32
	final bool // the program's own exit: see finalStub
}

// compileNative translates p; on failure p runs in the interpreter and
// Compiled reports why.
func compileNative(p *Program) {
	n, err := compileAmd64(p)
	if err != nil {
		p.nativeWhy = err.Error()
		return
	}
	p.native = n
}

func compileAmd64(p *Program) (*native, error) {
	if len(p.code) > math.MaxInt32/64 {
		return nil, fmt.Errorf("program of %d instructions is too long to compile", len(p.code))
	}
	c := &jitc{p: p, ops: make([]x.Label, len(p.code)), translators: map[int]x.Label{}}
	a := &c.a
	for i := range c.ops {
		c.ops[i] = a.NewLabel()
	}
	c.common = a.NewLabel()
	c.facts = stackProofs(p)
	c.pkt, c.guard = pktProofs(p, c.facts, p.pktPtrs)
	c.dirtyAt = c.dirty()
	c.salt = codeSalt(p.code)
	c.fixed = !slices.ContainsFunc(p.code, func(o op) bool { return o.kind == kCall })

	// Entry: load the registers, continue where Go says.
	c.entry()
	a.JmpM(x.M(jState, offResume))
	// Entry at op 0, where a run starts: the same, then a direct jump, so
	// that the indirect jump above serves only the resumptions after
	// exits, which it then predicts (a run alternating between its start
	// and one resumption would otherwise mispredict both).
	start := a.NewLabel()
	a.Bind(start)
	c.entry()
	a.Jmp(c.ops[0])
	// Entry of a fresh run (RunCtx): r0 and r2-r9 zeroed here, r1 loaded,
	// the budget the whole limit, so that Go neither clears the registers
	// in memory nor stores the budget for this code to load back at once;
	// the common exit writes both before Go reads them.
	fresh := a.NewLabel()
	a.Bind(fresh)
	for i, r := range jitReg {
		if i == 1 {
			a.Load(8, r, x.M(jState, offRegs+8))
		} else {
			a.ALURR(false, x.XOR, r, r)
		}
	}
	a.Load(8, jBudget, x.M(jState, offLimit))
	c.ctxLiveEntry()
	// Op 0 comes next: the fresh entry, every run's, falls into it.

	for pc := range p.code {
		a.Bind(c.ops[pc])
		if pc > 0 && c.guard != nil && c.guard[pc-1] != 0 {
			c.pktPtrGuard(pc)
		}
		c.op(pc)
		if c.err != nil {
			return nil, c.err
		}
	}
	for i := 0; i < len(c.late); i++ {
		c.late[i]()
	}
	for _, s := range c.stubs {
		a.Bind(s.l)
		if s.final {
			c.exitFinal(s.pc)
			continue
		}
		c.exitHere(s.pc, s.code)
	}
	// Common exit: registers and budget back to the Machine, return.
	a.Bind(c.common)
	for i, r := range jitReg {
		a.Store(8, x.M(jState, offRegs+int32(8*i)), r)
	}
	a.Store(8, x.M(jState, offBudget), jBudget)
	a.Ret()
	if !a.Finish() {
		return nil, fmt.Errorf("internal error: unbound label")
	}
	if len(a.B) > maxCode {
		return nil, fmt.Errorf("%d bytes of machine code, more than %d", len(a.B), maxCode)
	}
	code, err := x.Map(a.B)
	if err != nil {
		return nil, err
	}
	n := &native{code: code, base: code.Addr(), start: code.Addr() + uintptr(a.Bound(start)),
		fresh: code.Addr() + uintptr(a.Bound(fresh)),
		off:   make([]int32, len(p.code)), dirty: c.dirtyAt, ctxSites: c.ctxSites, siteWords: siteWords(c.ctxSites),
		calls: !c.fixed, fixed: c.fixed}
	n.unsettles = n.calls || slices.ContainsFunc(p.code, func(o op) bool { return o.kind == kMayGoto })
	for i, l := range c.ops {
		n.off[i] = int32(a.Bound(l))
	}
	return n, nil
}

// entry loads the registers and the budget from the Machine and notes
// whether the context image is fresh: what every entry from Go does first.
func (c *jitc) entry() {
	for i, r := range jitReg {
		c.a.Load(8, r, x.M(jState, offRegs+int32(8*i)))
	}
	c.a.Load(8, jBudget, x.M(jState, offBudget))
	c.ctxLiveEntry()
}

// dirty computes, for each subprogram entry, the lowest r10 offset its
// stores proven to hit its own frame (the ones compiled without
// tracking, see stackOff) reach.
func (c *jitc) dirty() []int32 {
	p := c.p
	starts := []int32{0}
	for _, o := range p.code {
		if o.kind == kCall {
			starts = append(starts, o.off)
		}
	}
	for _, t := range p.funcs {
		starts = append(starts, t)
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	d := make([]int32, len(p.code))
	for k, s := range starts {
		e := int32(len(p.code))
		if k+1 < len(starts) {
			e = starts[k+1]
		}
		for i := s; i < e; i++ {
			if off, ok := stackOff(&p.code[i], &c.facts[i]); ok && isStore(p.code[i].kind) {
				d[s] = min(d[s], off)
			}
		}
	}
	return d
}

func (c *jitc) stub(pc int, code uint32) x.Label {
	l := c.a.NewLabel()
	c.stubs = append(c.stubs, stub{l: l, pc: pc, code: code})
	return l
}

// finalStub is the exit of the run itself, at op pc: BPF_EXIT at depth 0.
func (c *jitc) finalStub(pc int) x.Label {
	l := c.a.NewLabel()
	c.stubs = append(c.stubs, stub{l: l, pc: pc, code: exitExit, final: true})
	return l
}

// exitFinal leaves the run at op pc, its end: of the registers only r0
// goes back to the Machine, as nothing reads r1-r9 after the run's exit
// (RunCtx and serveNative return r0; a callback or a frame Go pushed
// returns at a depth above 0, through the common exit). Nine stores
// fewer on every run's way out.
func (c *jitc) exitFinal(pc int) {
	a := &c.a
	a.MovRI64(jT0, uint64(exitExit)|uint64(pc)<<32)
	a.Store(8, x.M(jState, offCode), jT0)
	a.Store(8, x.M(jState, offRegs), jitReg[0])
	a.Store(8, x.M(jState, offBudget), jBudget)
	a.Ret()
}

// exitHere's single store needs jitState.pc right after jitState.code
// (either array length is negative, a compile error, otherwise).
var (
	_ [unsafe.Offsetof(jitState{}.pc) - unsafe.Offsetof(jitState{}.code) - 4]struct{}
	_ [4 - (unsafe.Offsetof(jitState{}.pc) - unsafe.Offsetof(jitState{}.code))]struct{}
)

// exit leaves to Go at op pc.
func (c *jitc) exit(pc int, code uint32) { c.exitHere(pc, code) }

// exitHere stores the exit's reason and op index in one store (code and
// pc are adjacent, see jitState) and goes to the common exit: one store
// and one jump fewer per exit than a store and jump per reason.
func (c *jitc) exitHere(pc int, code uint32) {
	c.a.MovRI64(jT0, uint64(code)|uint64(pc)<<32)
	c.a.Store(8, x.M(jState, offCode), jT0)
	c.a.Jmp(c.common)
}

// jump is a taken jump from op pc to op t: count the instructions
// skipped (see exec), stop if the limit is reached, go.
func (c *jitc) jump(pc int, t int32) {
	a := &c.a
	if k := int32(pc+1) - t; k != 0 {
		a.ALURI(true, x.SUB, jBudget, k)
	}
	a.ALURI(true, x.CMP, jBudget, t)
	a.Jcc(x.CondL, c.stub(int(t), exitLimit))
	a.Jmp(c.ops[t])
}

func imm32ok(v uint64) bool { return int64(v) >= math.MinInt32 && int64(v) <= math.MaxInt32 }

var aluOf = map[uint8]x.ALU{
	kAdd64Imm: x.ADD, kSub64Imm: x.SUB, kOr64Imm: x.OR, kAnd64Imm: x.AND, kXor64Imm: x.XOR,
	kAdd64Reg: x.ADD, kSub64Reg: x.SUB, kOr64Reg: x.OR, kAnd64Reg: x.AND, kXor64Reg: x.XOR,
	kAdd32Imm: x.ADD, kSub32Imm: x.SUB, kOr32Imm: x.OR, kAnd32Imm: x.AND, kXor32Imm: x.XOR,
	kAdd32Reg: x.ADD, kSub32Reg: x.SUB, kOr32Reg: x.OR, kAnd32Reg: x.AND, kXor32Reg: x.XOR,
}

var shiftOf = map[uint8]x.Shift{
	kLsh64Imm: x.SHL, kRsh64Imm: x.SHR, kArsh64Imm: x.SAR, kLsh64Reg: x.SHL, kRsh64Reg: x.SHR, kArsh64Reg: x.SAR,
	kLsh32Imm: x.SHL, kRsh32Imm: x.SHR, kArsh32Imm: x.SAR, kLsh32Reg: x.SHL, kRsh32Reg: x.SHR, kArsh32Reg: x.SAR,
}

// Jump conditions; Jset is test + NE.
var condOf = map[uint8]x.Cond{
	kJeqImm: x.CondE, kJneImm: x.CondNE, kJgtImm: x.CondA, kJgeImm: x.CondAE, kJltImm: x.CondB, kJleImm: x.CondBE,
	kJsgtImm: x.CondG, kJsgeImm: x.CondGE, kJsltImm: x.CondL, kJsleImm: x.CondLE, kJsetImm: x.CondNE,
}

func (c *jitc) op(pc int) {
	a := &c.a
	o := &c.p.code[pc]
	// r10 is no machine register: an op reading it as a value has it
	// loaded into r11 (fpIn) first. No op writing dst has dst r10 (the
	// validator refuses writes to r10).
	regOf := func(r uint8) x.Reg {
		if r%11 >= regFP {
			return jT0
		}
		return jitReg[r]
	}
	dst, src := regOf(o.dst), regOf(o.src)
	fpIn := func(r uint8) {
		if r == regFP {
			a.Load(8, jT0, fpMem())
		}
	}
	switch k := o.kind; k {
	case kAdd64Imm, kSub64Imm, kOr64Imm, kAnd64Imm, kXor64Imm:
		if imm32ok(o.imm) {
			a.ALURI(true, aluOf[k], dst, int32(o.imm))
		} else {
			a.MovRI64(jT0, o.imm)
			a.ALURR(true, aluOf[k], dst, jT0)
		}
	case kAdd32Imm, kSub32Imm, kOr32Imm, kAnd32Imm, kXor32Imm:
		a.ALURI(false, aluOf[k], dst, int32(uint32(o.imm)))
	case kAdd64Reg, kSub64Reg, kOr64Reg, kAnd64Reg, kXor64Reg, kAdd32Reg, kSub32Reg, kOr32Reg, kAnd32Reg, kXor32Reg:
		w := k <= kXor64Reg
		if o.src == regFP {
			a.ALURM(w, aluOf[k], dst, fpMem())
		} else {
			a.ALURR(w, aluOf[k], dst, src)
		}
	case kMov64Imm, kMov32Imm:
		a.MovRI64(dst, o.imm)
	case kMov64Reg:
		if o.src == regFP {
			a.Load(8, dst, fpMem())
		} else {
			a.MovRR(true, dst, src)
		}
	case kMov32Reg, kZext32:
		if k == kZext32 {
			src = dst
		} else if o.src == regFP {
			a.Load(4, dst, fpMem())
			break
		}
		a.MovRR(false, dst, src)
	case kMul64Imm:
		if imm32ok(o.imm) {
			a.ImulRRI(true, dst, dst, int32(o.imm))
		} else {
			a.MovRI64(jT0, o.imm)
			a.ImulRR(true, dst, jT0)
		}
	case kMul32Imm:
		a.ImulRRI(false, dst, dst, int32(uint32(o.imm)))
	case kMul64Reg:
		fpIn(o.src)
		a.ImulRR(true, dst, src)
	case kMul32Reg:
		fpIn(o.src)
		a.ImulRR(false, dst, src)
	case kLsh64Imm, kRsh64Imm, kArsh64Imm:
		a.ShiftRI(true, shiftOf[k], dst, uint8(o.imm))
	case kLsh32Imm, kRsh32Imm, kArsh32Imm:
		a.ShiftRI(false, shiftOf[k], dst, uint8(o.imm))
		a.MovRR(false, dst, dst) // a shift by 0 need not write the register
	case kLsh64Reg, kRsh64Reg, kArsh64Reg:
		fpIn(o.src)
		a.MovRR(false, jCX, src)
		a.ShiftRCL(true, shiftOf[k], dst)
	case kLsh32Reg, kRsh32Reg, kArsh32Reg:
		fpIn(o.src)
		a.MovRR(false, jCX, src)
		a.ShiftRCL(false, shiftOf[k], dst)
		a.MovRR(false, dst, dst)
	case kNeg64:
		a.Neg(true, dst)
	case kNeg32:
		a.Neg(false, dst)
	case kDiv64Imm, kSDiv64Imm, kMod64Imm, kSMod64Imm, kDiv32Imm, kSDiv32Imm, kMod32Imm, kSMod32Imm,
		kDiv64Reg, kSDiv64Reg, kMod64Reg, kSMod64Reg, kDiv32Reg, kSDiv32Reg, kMod32Reg, kSMod32Reg:
		if k >= kAdd64Reg && k <= kNeg64 || k >= kAdd32Reg {
			fpIn(o.src) // div's first use of src is its copy into r11
		}
		c.div(o, dst, src)
	case kMovSX8To64:
		fpIn(o.src)
		a.Movsx(true, 1, dst, src)
	case kMovSX16To64:
		fpIn(o.src)
		a.Movsx(true, 2, dst, src)
	case kMovSX32To64:
		fpIn(o.src)
		a.Movsx(true, 4, dst, src)
	case kMovSX8To32:
		fpIn(o.src)
		a.Movsx(false, 1, dst, src)
	case kMovSX16To32:
		fpIn(o.src)
		a.Movsx(false, 2, dst, src)
	case kZext16:
		a.Movzx16(dst, dst)
	case kSwap16:
		a.Bswap(false, dst)
		a.ShiftRI(false, x.SHR, dst, 16)
	case kSwap32:
		a.Bswap(false, dst)
	case kSwap64:
		a.Bswap(true, dst)
	case kNop:
	case kJa:
		c.jump(pc, o.off)
	case kMayGoto:
		// Taken when the budget is exhausted, else spend one.
		taken, next := a.NewLabel(), a.NewLabel()
		a.ALUMI(true, x.CMP, x.M(jState, offMayGoto), 0)
		a.Jcc(x.CondE, taken)
		a.ALUMI(true, x.SUB, x.M(jState, offMayGoto), 1)
		a.Jmp(next)
		a.Bind(taken)
		c.jump(pc, o.off)
		a.Bind(next)
	case kCall:
		c.call(pc, o)
	case kCallHelper, kCallx, kPoisoned:
		if k == kCallHelper && o.off == c.p.arrayLookup && o.off != 0 {
			c.mapLookup(pc)
			break
		}
		if h, ok := c.p.pktHelpers[o.off]; ok && k == kCallHelper && c.pktHelper(pc, h) {
			break
		}
		c.exit(pc, exitHelper)
	case kExit:
		c.ret(pc)
	case kLdxB, kLdxH, kLdxW, kLdxDW, kLdxSB, kLdxSH, kLdxSW, kStB, kStH, kStW, kStDW, kStxB, kStxH, kStxW, kStxDW:
		c.mem(pc, o)
	case kAtomic32, kAtomic64:
		c.atomic(pc, o)
	case kLdAbsB, kLdAbsH, kLdAbsW, kLdIndB, kLdIndH, kLdIndW:
		c.ldAbs(pc, o)
	default:
		base, reg, w32, ok := jumpKind(k)
		if !ok {
			// An op kind added to the interpreter but not here: the
			// program runs interpreted, and Compiled says why.
			c.err = fmt.Errorf("op kind %d at instruction %d is not compiled", k, c.p.insn[pc])
			return
		}
		fpIn(o.dst)
		if reg {
			if o.dst != regFP {
				fpIn(o.src)
			}
			if base == kJsetImm {
				a.TestRR(!w32, dst, src)
			} else {
				a.ALURR(!w32, x.CMP, dst, src)
			}
		} else {
			imm := int32(o.imm)
			if w32 {
				imm = int32(uint32(o.imm))
			} else if !imm32ok(o.imm) {
				c.err = fmt.Errorf("jump immediate %#x at instruction %d out of range", o.imm, c.p.insn[pc])
				return
			}
			if base == kJsetImm {
				a.TestRI(!w32, dst, imm)
			} else {
				a.ALURI(!w32, x.CMP, dst, imm)
			}
		}
		skip := a.NewLabel()
		a.Jcc(condOf[base].Invert(), skip)
		c.jump(pc, o.off)
		a.Bind(skip)
	}
}

// div emits division and modulo with the ISA's rules: x/0 = 0, x%0 = x
// (ALU32: zero-extended), INT_MIN/-1 = INT_MIN and INT_MIN%-1 = 0 (where
// idiv would trap). rax and rdx hold r0 and r3, so they are parked in r10
// and rcx around the divide.
func (c *jitc) div(o *op, dst, src x.Reg) {
	a := &c.a
	k := o.kind
	w := k <= kXor64Imm || (k >= kAdd64Reg && k <= kNeg64)
	signed := k == kSDiv64Imm || k == kSMod64Imm || k == kSDiv32Imm || k == kSMod32Imm ||
		k == kSDiv64Reg || k == kSMod64Reg || k == kSDiv32Reg || k == kSMod32Reg
	mod := k == kMod64Imm || k == kSMod64Imm || k == kMod32Imm || k == kSMod32Imm ||
		k == kMod64Reg || k == kSMod64Reg || k == kMod32Reg || k == kSMod32Reg
	reg := k >= kAdd64Reg && k <= kNeg64 || k >= kAdd32Reg
	done := a.NewLabel()
	if reg {
		a.MovRR(w, jT0, src)
	} else if w {
		a.MovRI64(jT0, o.imm)
	} else {
		a.MovRI64(jT0, uint64(uint32(o.imm)))
	}
	// An immediate divisor is never 0 (lowering turned those into moves)
	// and is -1 or not at compile time.
	minusOne := !reg && (w && o.imm == math.MaxUint64 || !w && uint32(o.imm) == math.MaxUint32)
	if reg {
		nonzero := a.NewLabel()
		a.TestRR(w, jT0, jT0)
		a.Jcc(x.CondNE, nonzero)
		switch {
		case !mod:
			a.ALURR(false, x.XOR, dst, dst)
		case !w:
			a.MovRR(false, dst, dst)
		}
		a.Jmp(done)
		a.Bind(nonzero)
	}
	if signed && minusOne {
		if mod {
			a.ALURR(false, x.XOR, dst, dst)
		} else {
			a.Neg(w, dst)
		}
		a.Bind(done)
		return
	}
	if signed && reg {
		normal := a.NewLabel()
		a.ALURI(w, x.CMP, jT0, -1)
		a.Jcc(x.CondNE, normal)
		if mod {
			a.ALURR(false, x.XOR, dst, dst)
		} else {
			a.Neg(w, dst)
		}
		a.Jmp(done)
		a.Bind(normal)
	}
	a.MovRR(true, jT1, x.RAX)
	a.MovRR(true, jCX, x.RDX)
	if dst != x.RAX {
		a.MovRR(true, x.RAX, dst)
	}
	if signed {
		a.SignExtendRAX(w)
	} else {
		a.ALURR(false, x.XOR, x.RDX, x.RDX)
	}
	a.Div(w, signed, jT0)
	if mod {
		a.MovRR(w, jT0, x.RDX)
	} else {
		a.MovRR(w, jT0, x.RAX)
	}
	a.MovRR(true, x.RAX, jT1)
	a.MovRR(true, x.RDX, jCX)
	a.MovRR(true, dst, jT0)
	a.Bind(done)
}
