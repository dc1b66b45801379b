package engine

import (
	"fmt"
	"slices"
	"syscall"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/maps"
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
	readOnly func(mapIndex int32) bool // map (by link index) programs cannot write
}

// analyze makes the cheap checks the kernel's verifier makes: a forward
// dataflow over each function's control flow graph (checks_flow.go) that
// reports only what holds on a path the verifier walks.
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
	a.subprograms()
	for k, sp := range a.subs {
		if sp.fn != nil {
			if proto, ok := sp.fn.Type.(*btf.FuncProto); ok && !isScalar(proto.Return) {
				a.warnf(sp.start, CheckGlobalFunc, "global function %s() doesn't return scalar", sp.fn.Name)
			}
		}
		a.scanFlow(k)
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
func (a *analysis) entryState(k int) regState {
	var regs regState
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

// access checks a load or store at base+off of n bytes as the verifier's
// check_packet_access does: the fixed offset must lie in [0, range).
func (a *analysis) access(i int, sp *subprog, base absReg, off, n int64) {
	switch base.kind {
	case rFP:
		if d := -(base.off + off); d > sp.depth {
			sp.depth = d
		}
	case rPkt:
		at := base.off + off
		switch {
		case base.rng < 0:
			a.warnf(i, CheckPacketBound, "packet access at offset %d, size %d, where the pointer was found at or beyond data_end", at, n)
		case at < 0 || at+n > base.rng:
			if base.rng == 0 {
				a.warnf(i, CheckPacketBound, "packet access at offset %d, size %d, without a bound check (r=0)", at, n)
			} else {
				a.warnf(i, CheckPacketBound, "packet access at offset %d, size %d, beyond the checked bound %d", at, n, base.rng)
			}
		}
	}
}

// call records a bpf-to-bpf call or tail call and checks a global callee's
// context arguments.
func (a *analysis) call(i int, sp *subprog, regs *regState) {
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
