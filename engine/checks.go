package engine

import (
	"fmt"
	"slices"
	"syscall"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// The checks of Warning.Check.
const (
	// CheckSkipped: a program or map left out because no SCHED_CLS
	// program needs it (never an error, even with Options.Strict).
	CheckSkipped = "skipped"
	// CheckStackDepth: the stack of a chain of bpf-to-bpf calls exceeds
	// the kernel's 512 bytes, or a subprogram tail-calls above 256.
	CheckStackDepth = "stack-depth"
	// CheckGlobalFunc: a global function (verified on its own by the
	// kernel, from its BTF prototype) returns no scalar, or a caller
	// passes something other than the context where it expects one.
	CheckGlobalFunc = "global-func"
	// CheckPacketBound: a direct packet access reaches beyond the bound
	// its pointer was checked against (or was never checked).
	CheckPacketBound = "packet-bound"
)

// maxStack is the kernel's MAX_BPF_STACK.
const maxStack = 512

// Warning is one finding of the load-time checks: something the kernel's
// verifier refuses that the engine would otherwise run. The engine's
// memory checks make running it safe, but the kernel would not load it.
type Warning struct {
	Program string // "" for the collection
	Check   string // CheckStackDepth, ...
	Insn    int    // raw instruction offset, -1 if none
	Msg     string
}

func (w Warning) String() string {
	prefix := ""
	if w.Program != "" {
		prefix = fmt.Sprintf("program %q: ", w.Program)
	}
	if w.Insn >= 0 {
		prefix += fmt.Sprintf("insn %d: ", w.Insn)
	}
	return prefix + w.Msg + " [" + w.Check + "]"
}

func (c *Collection) warn(w Warning) {
	c.Warnings = append(c.Warnings, w)
	if c.opts.Logger != nil {
		c.opts.Logger.Warn("engine load-time check", "program", w.Program, "check", w.Check, "insn", w.Insn, "msg", w.Msg)
	}
}

// check runs the load-time checks on one linked program: warnings, or with
// Options.Strict the first finding as an error (EACCES, the verifier's).
func (c *Collection) check(name string, insns asm.Instructions) error {
	readOnly := func(idx int32) bool {
		return idx >= 0 && int(idx) < len(c.entries) && c.entries[idx].m.Info().Flags&maps.FlagRdonlyProg != 0
	}
	for _, w := range analyze(insns, readOnly) {
		w.Program = name
		if c.opts.Strict {
			return fmt.Errorf("program %q: insn %d: %s (strict): %w", name, w.Insn, w.Msg, syscall.EACCES)
		}
		c.warn(w)
	}
	return nil
}

// Register kinds of the analysis.
const (
	rUnknown = iota
	rScalar  // a constant
	rFP      // r10 + off
	rCtx     // context + off
	rPkt     // skb->data + off, accessible up to rng
	rPktEnd  // skb->data_end
	rMapRO   // a value of a map programs cannot write (.rodata)
	rFunc    // the address of function off (a subprog index), a callback
)

type absReg struct {
	kind uint8
	off  int64
	rng  int64 // rPkt: checked bound, from the packet start
}

// subprog is one function of a linked program.
type subprog struct {
	start, end int // indices into the instruction list
	depth      int64
	tailCall   bool
	async      bool  // a timer callback: a root of its own
	calls      []int // callee subprog indices
	fn         *btf.Func
	ctxArgs    [5]bool
	memArgs    [5]bool // pointers to memory the function may write
}

// analysis holds one program's instructions by index with their raw
// offsets.
type analysis struct {
	ins      []asm.Instruction
	off      []int
	index    map[int]int // raw offset -> index
	subs     []*subprog
	warns    []Warning
	preds    []int                     // ways into each instruction
	saved    map[int]*[11]absReg       // state at a jump target with one way in
	readOnly func(mapIndex int32) bool // map (by link index) programs cannot write
}

// analyze makes the cheap checks the kernel's verifier makes: a linear
// abstract interpretation of each function that forgets everything at jump
// targets, so that it only reports what holds on every path.
func analyze(insns asm.Instructions, readOnly func(mapIndex int32) bool) []Warning {
	a := &analysis{index: make(map[int]int), readOnly: readOnly}
	iter := insns.Iterate()
	for iter.Next() {
		a.index[int(iter.Offset)] = len(a.ins)
		a.ins = append(a.ins, *iter.Ins)
		a.off = append(a.off, int(iter.Offset))
	}
	if len(a.ins) == 0 {
		return nil
	}
	targets := a.jumpTargets()
	a.predecessors()
	a.saved = make(map[int]*[11]absReg)
	a.subprograms()
	for i, sp := range a.subs {
		a.scan(i, sp, targets)
	}
	a.stackDepth()
	return a.warns
}

// target is the index a jump or call at index i goes to, -1 if none.
func (a *analysis) target(i int) int {
	ins := a.ins[i]
	var rel int64
	switch {
	case ins.IsFunctionCall(), ins.IsLoadOfFunctionPointer():
		rel = ins.Constant
	case ins.OpCode.Class().IsJump() && ins.OpCode.JumpOp() == asm.Ja && ins.OpCode.Class() == asm.Jump32Class:
		rel = ins.Constant
	case ins.OpCode.Class().IsJump() && ins.OpCode.JumpOp() != asm.Call && ins.OpCode.JumpOp() != asm.Exit:
		rel = int64(ins.Offset)
	default:
		return -1
	}
	t, ok := a.index[a.off[i]+1+int(rel)]
	if !ok {
		return -1
	}
	return t
}

func (a *analysis) jumpTargets() []bool {
	t := make([]bool, len(a.ins))
	for i, ins := range a.ins {
		if ins.IsFunctionCall() || ins.IsLoadOfFunctionPointer() {
			continue
		}
		if j := a.target(i); j >= 0 {
			t[j] = true
		}
	}
	return t
}

// predecessors counts the ways into each instruction: jumps to it and the
// fall-through from the one before.
func (a *analysis) predecessors() {
	a.preds = make([]int, len(a.ins))
	for i, ins := range a.ins {
		if ins.IsFunctionCall() || ins.IsLoadOfFunctionPointer() {
			if i+1 < len(a.ins) {
				a.preds[i+1]++
			}
			continue
		}
		if j := a.target(i); j >= 0 {
			a.preds[j]++
		}
		op := ins.OpCode
		ends := op.Class().IsJump() && (op.JumpOp() == asm.Exit || op.JumpOp() == asm.Ja)
		if !ends && i+1 < len(a.ins) {
			a.preds[i+1]++
		}
	}
}

func (a *analysis) subprograms() {
	starts := []int{0}
	for i, ins := range a.ins {
		if ins.IsFunctionCall() || ins.IsLoadOfFunctionPointer() {
			if j := a.target(i); j >= 0 {
				starts = append(starts, j)
			}
		}
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	for k, s := range starts {
		end := len(a.ins)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		sp := &subprog{start: s, end: end, fn: btf.FuncMetadata(&a.ins[s])}
		if sp.fn != nil && k > 0 && sp.fn.Linkage == btf.GlobalFunc {
			if proto, ok := sp.fn.Type.(*btf.FuncProto); ok {
				for p, param := range proto.Params {
					if p < 5 && isCtxPointer(param.Type) {
						sp.ctxArgs[p] = true
					} else if p < 5 && isWritablePointer(param.Type) {
						sp.memArgs[p] = true
					}
				}
			}
		} else {
			sp.fn = nil // only global functions are verified on their own
		}
		a.subs = append(a.subs, sp)
	}
}

// subAt is the subprog starting at index i, -1 if none.
func (a *analysis) subAt(i int) int {
	for k, sp := range a.subs {
		if sp.start == i {
			return k
		}
	}
	return -1
}

func isCtxPointer(t btf.Type) bool {
	p, ok := btf.UnderlyingType(t).(*btf.Pointer)
	if !ok {
		return false
	}
	s, ok := btf.UnderlyingType(p.Target).(*btf.Struct)
	return ok && s.Name == "__sk_buff"
}

// isWritablePointer: a pointer whose target is not const.
func isWritablePointer(t btf.Type) bool {
	p, ok := btf.UnderlyingType(t).(*btf.Pointer)
	if !ok {
		return false
	}
	for target := p.Target; ; {
		switch v := target.(type) {
		case *btf.Const:
			return false
		case *btf.Typedef:
			target = v.Type
		case *btf.Volatile:
			target = v.Type
		default:
			return true
		}
	}
}

func isScalar(t btf.Type) bool {
	switch btf.UnderlyingType(t).(type) {
	case *btf.Int, *btf.Enum:
		return true
	}
	return false
}

func (a *analysis) warnf(i int, check, format string, args ...any) {
	a.warns = append(a.warns, Warning{Check: check, Insn: a.off[i], Msg: fmt.Sprintf(format, args...)})
}

// entryState is the registers at the start of function k.
func (a *analysis) entryState(k int) [11]absReg {
	var regs [11]absReg
	regs[10] = absReg{kind: rFP}
	sp := a.subs[k]
	switch {
	case k == 0:
		regs[1] = absReg{kind: rCtx}
	case sp.fn != nil:
		for p, isCtx := range sp.ctxArgs {
			if isCtx {
				regs[p+1] = absReg{kind: rCtx}
			}
		}
	}
	return regs
}

// scan interprets function k once, front to back.
func (a *analysis) scan(k int, sp *subprog, targets []bool) {
	if sp.fn != nil {
		if proto, ok := sp.fn.Type.(*btf.FuncProto); ok && !isScalar(proto.Return) {
			a.warnf(sp.start, CheckGlobalFunc, "global function %s() doesn't return scalar", sp.fn.Name)
		}
	}
	regs := a.entryState(k)
	reset := func() {
		for r := range 10 {
			regs[r] = absReg{}
		}
	}
	for i := sp.start; i < sp.end; i++ {
		if targets[i] && i != sp.start {
			if st := a.saved[i]; st != nil && a.preds[i] == 1 {
				regs = *st // the one jump here carried its state
			} else {
				reset()
			}
		}
		ins := a.ins[i]
		op := ins.OpCode
		switch cls := op.Class(); {
		case cls == asm.LdXClass:
			base := regs[ins.Src]
			a.access(i, sp, base, int64(ins.Offset), int64(op.Size().Sizeof()))
			dst := absReg{}
			if base.kind == rCtx && base.off == 0 && op.Size() == asm.Word && op.Mode() == asm.MemMode {
				switch ins.Offset {
				case skb.CtxData:
					dst = absReg{kind: rPkt}
				case skb.CtxDataEnd:
					dst = absReg{kind: rPktEnd}
				}
			}
			regs[ins.Dst] = dst
		case (cls == asm.StClass || cls == asm.StXClass) && op.Mode() == asm.MemMode:
			a.access(i, sp, regs[ins.Dst], int64(ins.Offset), int64(op.Size().Sizeof()))
		case cls == asm.StXClass:
			a.access(i, sp, regs[ins.Dst], int64(ins.Offset), int64(op.Size().Sizeof()))
			if ins.Constant&1 != 0 { // BPF_FETCH
				regs[ins.Src] = absReg{}
			}
			regs[0] = absReg{} // cmpxchg
		case cls == asm.ALU64Class && op.ALUOp() == asm.Mov && op.Source() == asm.RegSource && ins.Offset == 0:
			regs[ins.Dst] = regs[ins.Src]
		case cls == asm.ALU64Class && op.ALUOp() == asm.Mov && op.Source() == asm.ImmSource:
			regs[ins.Dst] = absReg{kind: rScalar}
		case cls == asm.ALU64Class && (op.ALUOp() == asm.Add || op.ALUOp() == asm.Sub) && op.Source() == asm.ImmSource:
			r := regs[ins.Dst]
			d := ins.Constant
			if op.ALUOp() == asm.Sub {
				d = -d
			}
			switch r.kind {
			case rFP, rCtx, rPkt, rMapRO:
				r.off += d
			default:
				r = absReg{}
			}
			regs[ins.Dst] = r
		case cls.IsALU():
			regs[ins.Dst] = absReg{}
		case cls == asm.LdClass:
			regs[ins.Dst] = absReg{}
			if op.IsDWordLoad() && !ins.IsLoadFromMap() && !ins.IsLoadOfFunctionPointer() {
				regs[ins.Dst] = absReg{kind: rScalar}
			}
			if ins.IsLoadFromMap() && ins.Src == asm.PseudoMapValue && a.readOnly != nil && a.readOnly(int32(uint32(ins.Constant))) {
				regs[ins.Dst] = absReg{kind: rMapRO}
			}
			if ins.IsLoadOfFunctionPointer() {
				if k := a.subAt(a.target(i)); k >= 0 {
					regs[ins.Dst] = absReg{kind: rFunc, off: int64(k)}
				}
			}
			if op.Mode() == asm.AbsMode || op.Mode() == asm.IndMode {
				for r := range 6 {
					regs[r] = absReg{}
				}
			}
		case cls.IsJump():
			a.jump(i, sp, &regs, reset)
		}
	}
}

// access checks a load or store at base+off of n bytes.
func (a *analysis) access(i int, sp *subprog, base absReg, off, n int64) {
	switch base.kind {
	case rFP:
		if d := -(base.off + off); d > sp.depth {
			sp.depth = d
		}
	case rPkt:
		if end := base.off + off + n; end > base.rng {
			if base.rng == 0 {
				a.warnf(i, CheckPacketBound, "packet access at offset %d, size %d, without a bound check (r=0)", base.off+off, n)
			} else {
				a.warnf(i, CheckPacketBound, "packet access at offset %d, size %d, beyond the checked bound %d", base.off+off, n, base.rng)
			}
		}
	}
}

func (a *analysis) jump(i int, sp *subprog, regs *[11]absReg, reset func()) {
	ins := a.ins[i]
	op := ins.OpCode
	// save hands the taken branch's state to its target when that target
	// is ahead and has no other way in.
	save := func(st [11]absReg) {
		if j := a.target(i); j > i && a.preds[j] == 1 {
			a.saved[j] = &st
		}
	}
	switch op.JumpOp() {
	case asm.Exit:
		reset()
		return
	case asm.Ja:
		save(*regs)
		reset()
		return
	case asm.Call:
		a.call(i, sp, regs)
		for r := range 6 {
			regs[r] = absReg{}
		}
		for r := range regs {
			if regs[r].kind == rPkt || regs[r].kind == rPktEnd {
				regs[r] = absReg{} // helpers may move the packet
			}
		}
		return
	}
	if op.Source() != asm.RegSource {
		save(*regs)
		return
	}
	dst, src := regs[ins.Dst], regs[ins.Src]
	if dst.kind != rPkt && dst.kind != rPktEnd && src.kind != rPkt && src.kind != rPktEnd {
		save(*regs)
		return
	}
	// A comparison of data+off with data_end gives every packet pointer
	// the range off on the branch where data+off <= data_end (off+1 where
	// it is strictly below), as the kernel's try_match_pkt_pointers does;
	// the other branch gets none.
	if op.Class() != asm.JumpClass || dst.kind == rUnknown || src.kind == rUnknown {
		// A bound this analysis cannot read (a pointer it lost track of,
		// a 32-bit compare): it proves nothing about packet pointers from
		// here on.
		for r := range regs {
			if regs[r].kind == rPkt {
				regs[r] = absReg{}
			}
		}
		save(*regs)
		return
	}
	fall, taken := int64(-1), int64(-1)
	pe, ep := dst.kind == rPkt && src.kind == rPktEnd, dst.kind == rPktEnd && src.kind == rPkt
	o := dst.off
	if ep {
		o = src.off
	}
	switch jop := op.JumpOp(); {
	case pe && jop == asm.JGT, ep && jop == asm.JLT: // data+o > end: taken is out
		fall = o
	case pe && jop == asm.JGE, ep && jop == asm.JLE: // data+o >= end
		fall = o + 1
	case ep && jop == asm.JGT, pe && jop == asm.JLT: // data+o < end: taken is in
		taken = o + 1
	case ep && jop == asm.JGE, pe && jop == asm.JLE: // data+o <= end
		taken = o
	}
	bounded := func(st *[11]absReg, bound int64) {
		if bound <= 0 || (bound == 1 && o == 0) { // off 0 and strictly below: no range
			return
		}
		for r := range st {
			if st[r].kind == rPkt {
				st[r].rng = max(st[r].rng, bound)
			}
		}
	}
	other := *regs
	bounded(&other, taken)
	save(other)
	bounded(regs, fall)
}

// call records a bpf-to-bpf call or tail call and checks a global callee's
// context arguments.
func (a *analysis) call(i int, sp *subprog, regs *[11]absReg) {
	ins := a.ins[i]
	for r := 1; r <= 5; r++ {
		if regs[r].kind == rFP && -regs[r].off > sp.depth {
			sp.depth = -regs[r].off
		}
	}
	if ins.IsBuiltinCall() && asm.BuiltinFunc(ins.Constant) == asm.FnTailCall {
		sp.tailCall = true
		return
	}
	if ins.IsBuiltinCall() && regs[2].kind == rFunc {
		// Callbacks: the kernel counts a synchronous one as a frame
		// called from here and checks an asynchronous one (a timer's)
		// as a root of its own.
		switch asm.BuiltinFunc(ins.Constant) {
		case asm.FnTimerSetCallback:
			a.subs[regs[2].off].async = true
		case asm.FnLoop, asm.FnForEachMapElem, asm.FnFindVma, asm.FnUserRingbufDrain:
			sp.calls = append(sp.calls, int(regs[2].off))
		}
		return
	}
	if !ins.IsFunctionCall() {
		return
	}
	k := a.subAt(a.target(i))
	if k < 0 {
		return
	}
	sp.calls = append(sp.calls, k)
	callee := a.subs[k]
	if callee.fn == nil {
		return
	}
	for p, isMem := range callee.memArgs {
		if isMem && regs[p+1].kind == rMapRO {
			a.warnf(i, CheckGlobalFunc, "caller passes invalid args into %s(): R%d points to read-only map memory, which %s() may write", callee.fn.Name, p+1, callee.fn.Name)
		}
	}
	for p, isCtx := range callee.ctxArgs {
		arg := regs[p+1]
		if !isCtx || arg.kind == rUnknown || (arg.kind == rCtx && arg.off == 0) {
			continue
		}
		what := map[uint8]string{rScalar: "a scalar", rFP: "a stack pointer", rCtx: "a modified context pointer", rPkt: "a packet pointer", rPktEnd: "a packet pointer", rMapRO: "a map value", rFunc: "a function pointer"}[arg.kind]
		a.warnf(i, CheckGlobalFunc, "caller passes invalid args into %s(): R%d is %s, expects pointer to ctx", callee.fn.Name, p+1, what)
	}
}

// stackDepth walks the call graph from the main function as the kernel's
// check_max_stack_depth does: each frame rounded up to 16 bytes (the JIT's
// granularity), their sum at most 512.
func (a *analysis) stackDepth() {
	var walk func(k int, above int64, n int, seen []bool)
	reported := false
	walk = func(k int, above int64, n int, seen []bool) {
		if reported || seen[k] || n > 8 {
			return
		}
		sp := a.subs[k]
		if k != 0 && sp.tailCall && above >= 256 {
			reported = true
			a.warnf(sp.start, CheckStackDepth, "tail_calls are not allowed when call stack of previous frames is %d bytes. Too large", above)
			return
		}
		total := above + (sp.depth+15)&^15
		if total > maxStack {
			reported = true
			a.warnf(sp.start, CheckStackDepth, "combined stack size of %d calls is %d. Too large", n, total)
			return
		}
		seen[k] = true
		for _, c := range sp.calls {
			walk(c, total, n+1, seen)
		}
		seen[k] = false
	}
	walk(0, 0, 1, make([]bool, len(a.subs)))
	for k, sp := range a.subs {
		if sp.async {
			walk(k, 0, 1, make([]bool, len(a.subs)))
		}
	}
}
