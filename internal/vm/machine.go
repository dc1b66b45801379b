package vm

import (
	"errors"
	"fmt"
	"math"
	"syscall"
)

// frame is a saved caller: where to resume, in which program (a tail call
// may have replaced the callee's), the depth that program's entry frame
// has, and its callee-saved r6-r9.
type frame struct {
	ret      int32
	prog     *Program
	progBase int
	saved    [4]uint64
	// retAddr is where compiled code of prog goes on at op ret, if
	// compiled code made the call (0 otherwise: the return goes through
	// Go). Every push sets it.
	retAddr uintptr
}

// maxRunFrames is the deepest a run's call chain can get: a tail call made
// inside a subprogram replaces that subprogram's frame, so the tail-called
// program starts deeper and may itself call MaxFrames-1 levels down; the
// chain goes on for MaxTailCalls tail calls, as the kernel's does.
const maxRunFrames = MaxFrames + MaxTailCalls*(MaxFrames-1)

// Pending requests raised by helpers, handled when the helper returns.
const (
	pendTail uint8 = 1 << iota
	pendExit
	pendExitDone // exitR0 holds the result
	pendAbort
)

// errNotRunning is returned by helper APIs used outside a helper call.
var errNotRunning = fmt.Errorf("vm: no program is running: %w", syscall.EINVAL)

// errExit unwinds nested interpreter loops after Machine.Exit.
var errExit = errors.New("vm: program exit requested by helper")

// Machine runs programs: it holds the registers, the stack, the packet and
// context of the current run and the per-run regions. It is not safe for
// concurrent use; use one per goroutine and reuse it (Run does not
// allocate).
type Machine struct {
	regs [256]uint64 // indexed by uint8 register numbers: no bounds checks
	// The stack holds every frame a run can reach (maxRunFrames); a run
	// touches only the frames it uses, and only those get cleared.
	stack [maxRunFrames * StackSize]byte

	// The stack bytes written since they were last zeroed: a run starts on
	// a zeroed stack without paying for a 512-byte clear every time.
	dirtyLo, dirtyHi uint32

	regions []region // [packet, stack, ctx, code, dynamic..., shared...]
	frames  [maxRunFrames]frame
	depth   int
	// progBase is the depth of the current program's entry frame: 0, or
	// where a tail call from a subprogram put it. MaxFrames bounds the
	// frames from there on.
	progBase int
	prog     *Program // program of the current frame (tail calls change it)
	as       *AddressSpace
	asGen    uint64
	ctxSet   bool
	// policyFor is the program the context's permissions were last set
	// for (setPolicy).
	policyFor *Program
	ctxAcc    ContextAccessor
	ctxImg    ctxImage
	user      any

	pktData, pktEnd uint32 // packet offsets of data and data_end, for LD_ABS

	limit    uint64
	steps    int // instructions executed, synchronised at helper calls
	executed uint64
	tail     int
	mayGoto  uint64
	ndyn     int

	pc      int // op index of the helper call in progress
	pending uint8
	// settled says the last run ended at compiled code's own exit with no
	// Go code run on its behalf, by a program that neither calls nor
	// counts may_goto: the frame, tail-call and may_goto state are then
	// as reset leaves them, and RunCtx need not set them again.
	settled bool
	next    *Program
	exitR0  uint64
	abort   error

	jit jitState // compiled code's exits and instruction budget
}

// NewMachine returns a Machine with no packet, no context and no limit.
func NewMachine() *Machine {
	m := &Machine{regions: make([]region, firstShared, firstShared+16), dirtyLo: math.MaxUint32}
	m.jit.limit = runLimit(0)
	m.forgetSlots()
	m.regions[RegionStack] = region{buf: m.stack[:], hi: uint32(len(m.stack)), perm: permRead | permWrite | permAtomic}
	return m
}

// SetPacket makes buf the packet: addresses PacketAddr(meta) up to
// PacketAddr(end) are accessible (data_meta to data_end), data is where
// LD_ABS offset 0 points. Helpers that resize the packet call it again.
func (m *Machine) SetPacket(buf []byte, meta, data, end int) error {
	m.jit.published = false
	if meta < 0 || meta > data || data > end || end > len(buf) || PacketBase+uint64(len(buf)) > math.MaxUint32 {
		return fmt.Errorf("set packet: meta %d data %d end %d len %d: %w", meta, data, end, len(buf), syscall.EINVAL)
	}
	m.regions[RegionPacket] = region{
		buf:  buf,
		base: uint32(PacketBase),
		lo:   uint32(PacketBase) + uint32(meta),
		hi:   uint32(PacketBase) + uint32(end),
		perm: permRead | permWrite,
	}
	m.pktData, m.pktEnd = uint32(data), uint32(end)
	return nil
}

// SetContext makes ctx the context (for SCHED_CLS the 192-byte
// __sk_buff image the skb layer maintains); r1 starts at CtxAddr. Accesses
// follow the running program's CtxPolicy. nil removes it (r1 starts at 0).
func (m *Machine) SetContext(ctx []byte) {
	m.jit.published = false
	m.ctxSet, m.ctxAcc, m.ctxImg = ctx != nil, nil, ctxImage{}
	m.regions[RegionCtx] = region{buf: ctx, hi: clamp32(len(ctx))}
	m.policyFor = nil
	m.setPolicy(m.prog)
}

// ContextAccessor performs context loads and stores for the context's owner
// when they are not plain memory: the kernel rewrites every __sk_buff access
// (convert_ctx_access), so a narrow load returns a shifted field, a tc_index
// store keeps 16 bits, an oversized queue_mapping store is dropped. off and
// size (1, 2, 4, 8) are within the size given to SetContextAccessor and
// allowed by the program's CtxPolicy, if any; v is the whole source register
// (or sign-extended immediate). Returning false faults the run
// (FaultCtxAccess). Atomics and helper Mem on the context always fault.
type ContextAccessor interface {
	LoadCtx(off, size int) (uint64, bool)
	StoreCtx(off, size int, v uint64) bool
}

// ContextImmStorer is an optional interface of a ContextAccessor whose
// conversions treat an immediate store (BPF_ST) apart from a register
// store, as the kernel's queue_mapping conversion does. Stores of
// immediates go to StoreCtxImm, with the instruction's immediate, instead
// of StoreCtx.
type ContextImmStorer interface {
	StoreCtxImm(off, size int, imm int32) bool
}

// SetContextAccessor makes the context a region of size bytes whose every
// access goes to acc; r1 starts at CtxAddr. It replaces SetContext.
func (m *Machine) SetContextAccessor(acc ContextAccessor, size int) {
	m.jit.published = false
	m.ctxSet, m.ctxAcc = acc != nil, acc
	m.ctxImg = ctxImage{}
	if ci, ok := acc.(ContextImage); ok {
		img, fresh, dirty, plain := ci.CtxImage()
		if fresh != nil && dirty != nil && plain != nil && len(img) >= size && len(plain.read) >= size {
			m.ctxImg = ctxImage{img: img, fresh: fresh, dirty: dirty, plain: plain}
		}
	}
	m.regions[RegionCtx] = region{}
	if acc != nil {
		m.regions[RegionCtx].hi = clamp32(size)
	}
	m.policyFor = nil
	m.setPolicy(m.prog)
}

// ContextImage is an optional interface of a ContextAccessor that keeps
// the context as bytes. *fresh is the set of 4-byte words of img that
// show the context now (bit i for the word at 4*i, as CtxDirtyWords;
// CtxAllWords: all of it). While it is CtxAllWords, a load that plain allows
// at (off, size) returns the little-endian value of img[off:off+size],
// and a store plain allows writes the value's low size bytes there and
// sets in *dirty the bits of the 4-byte words it addressed (CtxDirtyWords),
// so the VM does them itself instead of calling LoadCtx or StoreCtx (the
// program's CtxPolicy still applies). Accesses plain allows through
// CtxPolicy.AllowAlias act on the bytes and with the mask it names
// instead; their dirty bits are still those of (off, size), so an owner
// whose aliases write elsewhere than where they start maps them itself.
// The owner catches up with the stores when it sees *dirty != 0, only in
// the fields whose words are set (after a run that stored only skb->mark
// the engine converts the mark, not every writable field), and clears it.
// A store the image drops (AllowStoreBelow) may still set its bits. img,
// fresh, dirty and plain must stay valid, and img as large as the context,
// while the accessor is set.
//
// An owner may vouch for fewer words than all: a run of a compiled
// program whose context sites (Program.CtxSiteWords) are all fresh takes
// them straight from the image; every other access, in compiled code or
// the interpreter, needs all words fresh and otherwise calls LoadCtx or
// StoreCtx, which must then bring the whole image up to date.
type ContextImage interface {
	ContextAccessor
	CtxImage() (img []byte, fresh *uint64, dirty *uint64, plain *CtxPolicy)
}

// CtxAllWords is every word of a context image, fresh or dirty.
const CtxAllWords = ^uint64(0)

// CtxDirtyWords is the set of 4-byte words of the context a store of
// size bytes at off addresses, as ContextImage's dirty records it: bit i
// for the word at 4*i, every word from 63 on sharing bit 63.
func CtxDirtyWords(off, size int) uint64 {
	lo, hi := min(max(off, 0)>>2, 63), min(max(off+size-1, 0)>>2, 63)
	return 2<<hi - 1<<lo // bits lo..hi (2<<63 wraps to 0, as it must)
}

// ctxImage is what a ContextImage gave SetContextAccessor.
type ctxImage struct {
	img   []byte
	fresh *uint64
	dirty *uint64
	plain *CtxPolicy
}

// clamp32 fits a length into a region's 32-bit offsets.
func clamp32(n int) uint32 { return uint32(min(uint64(max(n, 0)), math.MaxUint32)) }

// SetUser sets the value helpers get from User: the per-run state of the
// helper layer (e.g. the skb being processed).
func (m *Machine) SetUser(v any) { m.user = v }

// SetCPU sets the CPU the Machine runs as, which picks the values of
// per-CPU arrays (AddressSpace.NewArrayHandle); 0 by default.
func (m *Machine) SetCPU(cpu int) { m.jit.cpu = uint64(cpu) }

// User is the value given to SetUser.
func (m *Machine) User() any { return m.user }

// SetLimit bounds the instructions one Run may execute (0: no limit). A
// run over the limit ends with a *LimitError; the check happens at taken
// jumps, so a run stops at most one straight-line stretch past the limit.
func (m *Machine) SetLimit(n uint64) {
	m.limit = n
	m.jit.limit = runLimit(n)
}

// runLimit is the limit compiled code counts down from for SetLimit(n):
// no limit is a limit no run reaches; half the range keeps budget =
// limit - acc from overflowing (acc goes negative on forward jumps).
func runLimit(n uint64) int64 {
	if n != 0 && n < math.MaxInt/2 {
		return int64(n)
	}
	return math.MaxInt / 2
}

// Executed is the number of instructions the last Run executed (helpers
// count as one instruction, the call).
func (m *Machine) Executed() uint64 { return m.executed }

// Program is the program the current frame runs: during a helper call,
// the caller (after tail calls, the tail-called one).
func (m *Machine) Program() *Program { return m.prog }

// AddressSpace is the address space of the current (or last) run.
func (m *Machine) AddressSpace() *AddressSpace { return m.as }

// Run executes p. With no args r1 is CtxAddr (0 without a context);
// otherwise args are r1, r2, ... (at most 5). The result is r0.
//
// A run that breaks the rules ends with a *Fault, *LimitError or
// *HelperError and r0 = 0; a Go panic inside the interpreter or a helper
// is recovered here and reported as a *Fault of kind FaultPanic.
func (m *Machine) Run(p *Program, args ...uint64) (r0 uint64, err error) {
	if len(args) == 0 && p != nil && p.native != nil {
		return m.RunCtx(p)
	}
	return m.run(p, 0, args)
}

// RunCallback starts a run at the subprogram fn of p (a FuncAddr a program
// loaded with ld_imm64 src 4 and handed to a helper, e.g. a bpf_timer
// callback that fires after the run that armed it), with r1.. = args.
func (m *Machine) RunCallback(p *Program, fn uint64, args ...uint64) (uint64, error) {
	if p == nil {
		return 0, fmt.Errorf("run callback: nil program: %w", syscall.EINVAL)
	}
	t, ok := p.funcs[int32(uint32(fn))]
	if fn>>32 != uint64(RegionCode) || !ok {
		return 0, fmt.Errorf("run callback %#x: not a function of the program: %w", fn, syscall.EINVAL)
	}
	return m.run(p, int(t), args)
}

func (m *Machine) run(p *Program, entry int, args []uint64) (r0 uint64, err error) {
	if len(args) > 5 {
		return 0, fmt.Errorf("run: %d arguments, at most 5: %w", len(args), syscall.EINVAL)
	}
	if p == nil {
		return 0, fmt.Errorf("run: nil program: %w", syscall.EINVAL)
	}
	m.prog = p
	m.bind(p.as)
	m.reset(p)
	if len(args) == 0 {
		if m.ctxSet {
			m.regs[1] = CtxAddr
		}
	} else {
		copy(m.regs[1:6], args)
	}
	// Go panics are recovered where Go code runs on the program's behalf
	// (serveNative, execGuarded), so that a compiled run that never leaves
	// its machine code pays for no deferred call.
	if p.native != nil {
		r0, err = m.runNative(p, entry, 0)
	} else {
		r0, err = m.execGuarded(p, entry)
	}
	return m.done(r0, err)
}

// done ends a run that returned r0, err.
func (m *Machine) done(r0 uint64, err error) (uint64, error) {
	m.executed = uint64(m.steps)
	m.prog = nil // helper APIs are for helpers, during a run
	if err == errExit {
		return m.exitR0, nil
	}
	if err != nil {
		return 0, err
	}
	return r0, nil
}

// execGuarded interprets p from op pc to the exit of frame 0, turning a
// Go panic (an interpreter or helper bug) into a FaultPanic.
func (m *Machine) execGuarded(p *Program, pc int) (r0 uint64, err error) {
	defer func() {
		if v := recover(); v != nil {
			r0, err = 0, m.panicFault(v)
		}
	}()
	return m.exec(p, pc, 0)
}

// panicFault is the fault a Go panic recovered during a run becomes.
func (m *Machine) panicFault(v any) *Fault {
	f := m.fault(m.prog, -1, FaultPanic, 0, 0, 0)
	f.Panic = v
	return f
}

// bind makes the Machine's region table reflect as.
func (m *Machine) bind(as *AddressSpace) {
	if gen := as.gen.Load(); m.as != as || m.asGen != gen {
		m.rebind(as, gen)
	}
}

// rebind is bind's work when the address space changed, out of line so
// that the run path stays small.
//
//go:noinline
func (m *Machine) rebind(as *AddressSpace, gen uint64) {
	shared := *as.snap.Load()
	m.regions = append(m.regions[:firstShared], shared...)
	m.as, m.asGen = as, gen
	m.forgetSlots()
}

// forgetSlots empties compiled code's slot memos (jitState.memo, ways;
// the site entries name memos, so they miss with them). They
// describe slots of shared regions, which change only here, in rebind:
// a memo outlives the run that filled it, so that the next run's first
// access to the same map value (the same flow's entry) needs no
// translation.
func (m *Machine) forgetSlots() {
	for i := range m.jit.memo {
		m.jit.memo[i] = slotMemo{lo: math.MaxUint64}
		for w := range m.jit.ways[i] {
			m.jit.ways[i][w] = slotMemo{lo: math.MaxUint64}
		}
	}
}

func (m *Machine) reset(p *Program) {
	m.settled = false
	m.tail, m.steps, m.progBase = 0, 0, 0
	m.mayGoto = 1 << 23 // BPF_MAX_LOOPS
	// Helper requests, their tail-call target, abort and result are set
	// only with a pending bit.
	if m.pending != 0 {
		m.pending, m.next, m.abort, m.exitR0 = 0, nil, nil, 0
	}
	if m.ndyn != 0 {
		clear(m.regions[firstDynamic : firstDynamic+m.ndyn])
		m.ndyn = 0
	}
	m.setPolicy(p)
	clear(m.regs[:10])
	if m.dirtyLo < m.dirtyHi {
		clear(m.stack[m.dirtyLo:m.dirtyHi])
		m.dirtyLo, m.dirtyHi = math.MaxUint32, 0
	}
	m.setFrame(0)
	if p.native != nil && p.native.calls {
		m.ownFrames(p)
	}
}

// ownFrames makes the frames the entry program p can use p's: compiled
// calls push frames whose prog is already theirs (see jitc.call).
func (m *Machine) ownFrames(p *Program) {
	for k := range m.frames[:MaxFrames] {
		if m.frames[k].prog != p {
			m.frames[k].prog = p
		}
	}
}

// setPolicy sets the context region's permissions for program p (nil
// between runs). Every run sets them; a run of the program the Machine
// ran last finds them set (policyFor), in a call short enough to inline.
func (m *Machine) setPolicy(p *Program) {
	if p == m.policyFor && p != nil {
		return
	}
	m.setPolicyFor(p)
}

// setPolicyFor is setPolicy's work. The context's permissions follow the
// program's policy and the accessor: whatever changes the accessor sets
// policyFor to nil before it calls setPolicy.
func (m *Machine) setPolicyFor(p *Program) {
	m.policyFor = p
	r := &m.regions[RegionCtx]
	var policy *CtxPolicy
	if p != nil {
		policy = p.ctx
	}
	var perm uint8
	switch {
	case m.ctxAcc != nil:
		perm = permRead | permWrite | permSlow | permHook
	case policy != nil:
		perm = permRead | permWrite | permSlow
	default:
		perm = permRead | permWrite
	}
	if r.policy != policy || r.perm != perm {
		r.policy, r.perm = policy, perm
		// Compiled code's context window follows the region; the packet
		// window does not, so a tail call between programs of different
		// policies republishes only the context's.
		if m.jit.published {
			m.jitContext(p)
		}
		return
	}
	if m.jit.published && m.jit.sitesProg != p {
		m.jitCtxSites(p)
	}
}

// cur is the program a helper was called from.
func (m *Machine) cur() *Program { return m.prog }

// TailCall asks for a tail call into next once the calling helper returns
// (the helper layer's bpf_tail_call). It reports false, and nothing
// happens, when next is nil, lives in another address space, or the run
// already made MaxTailCalls tail calls; the helper then returns as the
// kernel's does on failure and the program continues.
func (m *Machine) TailCall(next *Program) bool {
	if next == nil || next.as != m.as || m.tail >= MaxTailCalls {
		return false
	}
	m.tail++
	m.next = next
	m.pending |= pendTail
	return true
}

// Exit ends the whole run when the calling helper returns, with r0 = the
// helper's return value (the conformance corpus's "unwind" helper).
func (m *Machine) Exit() { m.pending |= pendExit }

// MapDynamic maps buf for the rest of the current run (a ring buffer
// record, a helper's result) and returns its address. At most
// MaxDynamicRegions per run.
func (m *Machine) MapDynamic(buf []byte, readOnly bool) (uint64, error) {
	if m.ndyn == MaxDynamicRegions {
		return 0, fmt.Errorf("map dynamic region: %w", syscall.ENOSPC)
	}
	if uint64(len(buf)) > math.MaxUint32 {
		return 0, fmt.Errorf("map dynamic region: %d bytes: %w", len(buf), syscall.E2BIG)
	}
	r := region{buf: buf, hi: clamp32(len(buf)), perm: permRead | permWrite}
	if readOnly {
		r.perm = permRead
	}
	id := firstDynamic + m.ndyn
	m.regions[id] = r
	m.ndyn++
	return uint64(id) << 32, nil
}

// UnmapDynamic revokes a region from MapDynamic (a submitted or
// discarded ring buffer record): later accesses fault.
func (m *Machine) UnmapDynamic(addr uint64) error {
	id := addr >> 32
	if uint32(addr) != 0 || id < firstDynamic || id >= uint64(firstDynamic+m.ndyn) {
		return fmt.Errorf("unmap dynamic region %#x: %w", addr, syscall.EINVAL)
	}
	m.regions[id] = region{}
	return nil
}

// Call runs the subprogram at fn (a FuncAddr loaded by ld_imm64 src 4) as a
// callback from a helper (bpf_loop, bpf_for_each_map_elem) with r1-r5 =
// args, in a new frame, and returns its r0. An error means the run is
// aborting; the helper should return it (the run aborts even if it does not).
func (m *Machine) Call(fn uint64, r1, r2, r3, r4, r5 uint64) (uint64, error) {
	p := m.prog
	if p == nil {
		return 0, errNotRunning
	}
	t, ok := p.funcs[int32(uint32(fn))]
	switch {
	case fn>>32 != uint64(RegionCode) || !ok:
		return 0, m.stickyAbort(m.fault(p, m.pc, FaultBadCall, fn, 0, 0))
	case m.depth+1-m.progBase >= MaxFrames || m.depth+1 >= len(m.frames):
		return 0, m.stickyAbort(m.fault(p, m.pc, FaultCallDepth, fn, 0, 0))
	}
	regs := &m.regs
	depth := m.depth
	f := &m.frames[depth]
	f.saved = [4]uint64{regs[6], regs[7], regs[8], regs[9]}
	f.progBase, f.retAddr = m.progBase, 0
	m.enterFrame(depth + 1)
	regs[1], regs[2], regs[3], regs[4], regs[5] = r1, r2, r3, r4, r5
	pc := m.pc
	r0, err := m.exec(p, int(t), depth+1)
	// Back to the helper's frame, whatever happened inside.
	m.setFrame(depth)
	m.prog, m.pc, m.progBase = p, pc, f.progBase
	m.setPolicy(p)
	regs[6], regs[7], regs[8], regs[9] = f.saved[0], f.saved[1], f.saved[2], f.saved[3]
	if err != nil {
		return 0, m.stickyAbort(err)
	}
	return r0, nil
}

// enterFrame makes frame d current, with a zeroed stack.
func (m *Machine) enterFrame(d int) {
	lo, hi := max(m.dirtyLo, uint32(d*StackSize)), min(m.dirtyHi, uint32((d+1)*StackSize))
	if lo < hi {
		clear(m.stack[lo:hi])
	}
	m.setFrame(d)
}

// setFrame makes frame d current: r10 at its top, and the stack region
// ending there, so a program holds its own frame and its callers' (which
// it may reach through pointers passed down) but nothing deeper.
func (m *Machine) setFrame(d int) {
	m.depth = d
	m.regs[10] = StackAddr((d + 1) * StackSize)
	m.regions[RegionStack].hi = uint32((d + 1) * StackSize)
}

func (m *Machine) stickyAbort(err error) error {
	if err != errExit && m.abort == nil {
		m.abort = err
		m.pending |= pendAbort
	}
	return err
}
