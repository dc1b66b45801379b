package engine

import (
	"errors"
	"fmt"
	"github.com/tcxgo/tcx/fib"
	"math/rand/v2"
	"sync/atomic"
	"syscall"

	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

// pktBase is the address the packet's first byte (skb->data) is mapped
// at; __sk_buff.data, data_end and data_meta hold its low 32 bits.
const pktBase = uint32(vm.PacketBase)

// Executor runs programs of one collection as one simulated CPU: it holds
// the interpreter's registers and stack, the __sk_buff image of the current
// run and the per-run helper state. It is not safe for concurrent use; keep
// one per goroutine and reuse it: Run does not allocate.
type Executor struct {
	coll *Collection
	cpu  int
	m    *vm.Machine
	ctx  ctxView
	rng  rand.PCG
	// statePkt is the packet whose helper state the machine holds
	// (bindPacket).
	statePkt *skb.Packet

	// Per-run helper state, cleaned up by finish.
	resv  [vm.MaxDynamicRegions]reservation
	nresv int
	lock  []byte // the bpf_spin_lock held, if any

	// The sockets the run holds pointers to (helpers_sock.go).
	socks  [vm.MaxDynamicRegions]sockRef
	nsocks int

	// iterKey is bpf_for_each_map_elem's key and next-key buffer.
	iterKey []byte
	// due holds the timers one runTimers fires, reused.
	due []dueTimer

	// The packet bytes last given to the Machine, to skip remapping them.
	mapped []byte

	// print holds bpf_trace_printk's message while it is formatted.
	print printBufs

	// The packet of TestRun, reused across runs.
	own skb.Packet

	// fib is the routes of the running packet's namespace, set by a
	// Runner; nil: the collection's Options.FIB.
	fib *fib.Table
}

// reservation is a ring buffer record handed to the program.
type reservation struct {
	addr uint64
	rb   *maps.RingBuf
	off  int
}

// NewExecutor returns an executor running as CPU cpu (0 <= cpu <
// NumCPU): bpf_get_smp_processor_id reports it and per-CPU maps use its
// values. The collection's own executors (Program.Run, TestRun, Runner)
// also use these CPUs; an executor sharing a CPU with a concurrent run
// shares that CPU's per-CPU values with it, which the kernel never does.
func (c *Collection) NewExecutor(cpu int) (*Executor, error) {
	if cpu < 0 || cpu >= c.numCPU {
		return nil, fmt.Errorf("new executor: cpu %d of %d: %w", cpu, c.numCPU, syscall.EINVAL)
	}
	return newExecutor(c, cpu), nil
}

func newExecutor(c *Collection, cpu int) *Executor {
	x := &Executor{coll: c, cpu: cpu, m: vm.NewMachine()}
	x.ctx.plain = c.plainCtx
	x.rng.Seed(rand.Uint64(), uint64(cpu))
	x.m.SetUser(x)
	x.m.SetContextAccessor(&x.ctx, skb.CtxSize)
	x.m.SetLimit(c.limit)
	x.m.SetCPU(cpu)
	x.own.Quirks = c.opts.Quirks
	return x
}

// CPU is the CPU the executor runs as.
func (x *Executor) CPU() int { return x.cpu }

// Run runs prog (a program of the executor's collection) on pkt: pkt's
// fields and bytes are the sk_buff the program sees through __sk_buff,
// direct packet access and the skb helpers, and they hold the program's
// changes afterwards. A run that faults, exceeds the instruction limit or
// has a helper fail returns the error (*Fault, *LimitError, *HelperError)
// with Retval TC_ACT_SHOT and counts it on prog (Program.Faults); changes
// made before the error stay, as they would in the kernel.
func (x *Executor) Run(prog *Program, pkt *skb.Packet) (res Result, err error) {
	if prog == nil || pkt == nil || prog.coll != x.coll || x.coll.closed.Load() {
		return x.refuse(prog, pkt)
	}
	x.ctx.pkt = pkt
	if pkt != x.statePkt {
		x.bindPacket(pkt)
	}
	if d := pkt.Data(); len(d) != len(x.mapped) || len(d) == 0 || &d[0] != &x.mapped[0] {
		x.remap(d)
	}
	// A program that read its context in an earlier run gets the image
	// laid out now, in Go, rather than at its first context load, which
	// compiled code would have to leave for (see ctxView); laying it out
	// costs a comparison when the packet shows the same (ctx.cache).
	// (refresh, in line: the floor of a run is a few calls.)
	// A program whose context sites are all compiled needs only their
	// fields shown (ctxPartial), which is mostly the length and base.
	eager := prog.ctxEager.Load()
	x.ctx.fresh = 0
	if eager {
		x.ctx.sync() // nothing to do but after a panic: every run ends synced
		if f := &prog.ctxFields; prog.ctxPartial.Load() && x.ctx.cache.Shows(pkt, pktBase, f) {
			x.ctx.fresh = f.Words()
		} else {
			x.ctx.cache.Lay(x.ctx.img[:], pkt, pktBase)
			x.ctx.fresh = vm.CtxAllWords
		}
	}
	x.ctx.laid, x.ctx.missed = false, false // by the run itself (ctxView)
	r0, err := x.m.RunCtx(prog.vm)
	// res is the result itself (named), filled in place: building it
	// aside and copying it out would read its fields back right after
	// writing them, which stalls.
	res.Retval, res.Executed = uint32(r0), x.m.Executed()
	if x.ctx.laid {
		x.ctx.learn(prog, eager)
	}
	// (sync, in line: one call, to convert only what was stored.)
	if d := x.ctx.dirty; d != 0 {
		x.ctx.cache.ReadCtxWords(pkt, x.ctx.img[:], d)
		x.ctx.dirty = 0
	}
	if x.nresv != 0 || x.lock != nil || x.nsocks != 0 {
		x.finish()
	}
	// Timers that came due fire now, as the kernel's softirq would soon
	// after; a callback that faults ends only itself (RunTimers reports
	// such errors).
	if x.coll.timers.armed.Load() != 0 {
		x.runTimers() //nolint:errcheck // see above
	}
	x.ctx.pkt = nil
	if pkt.Redirecting() { // without copying the redirect out to look at it
		res.Redirect = redirectOf(pkt)
	}
	if err != nil {
		prog.faults.Add(1)
		res.Retval = skb.ActShot
		x.explain(err)
		return res, fmt.Errorf("run %s: %w", prog.name, err)
	}
	return res, nil
}

// redirectOf is pkt's pending redirect as Result reports it.
func redirectOf(pkt *skb.Packet) Redirect {
	kind, ifindex, ingress := pkt.RedirectTarget()
	return Redirect{Kind: kind, Ifindex: ifindex, Ingress: ingress}
}

// refuse is Run's answer to what it cannot run, out of Run's way.
func (x *Executor) refuse(prog *Program, pkt *skb.Packet) (Result, error) {
	switch {
	case prog == nil || pkt == nil:
		return Result{Retval: skb.ActShot}, fmt.Errorf("run: nil program or packet: %w", syscall.EINVAL)
	case prog.coll != x.coll:
		return Result{Retval: skb.ActShot}, fmt.Errorf("run %s: program of another collection: %w", prog.name, syscall.EINVAL)
	}
	return Result{Retval: skb.ActShot}, fmt.Errorf("run %s: collection closed: %w", prog.name, syscall.EBADF)
}

// explain adds what only the engine knows to a fault: the source line of
// the faulting instruction and the name of the map it reached into. The
// fault comes from the program the run ended in (a tail call may have
// changed it).
func (x *Executor) explain(err error) {
	var f *vm.Fault
	if !errors.As(err, &f) {
		return
	}
	if p := x.coll.programOf(f.Program()); p != nil && f.PC >= 0 {
		f.Source = p.source(f.PC)
	}
	if f.Space == vm.SpaceMapValue {
		f.Map = x.coll.regionMap(f.Addr >> 32)
	}
}

// programOf is the collection's program loaded as vp.
func (c *Collection) programOf(vp *vm.Program) *Program {
	if vp == nil {
		return nil
	}
	for _, p := range c.Programs {
		if p.vm == vp {
			return p
		}
	}
	return nil
}

// regionMap names the map whose values live in region id.
func (c *Collection) regionMap(id uint64) string {
	for _, e := range c.entries {
		for _, b := range e.base {
			if b>>32 == id {
				return e.name
			}
		}
	}
	return ""
}

// publish maps the packet's current bytes and brings the __sk_buff image
// (data, data_end, data_meta, len, protocol, ...) up to date, if the run
// laid it out; otherwise the first context access lays it out. It runs
// after every helper that may change the packet, which is when the kernel
// invalidates the program's packet pointers.
func (x *Executor) publish() {
	x.mapPacket()
	if x.ctx.fresh != 0 {
		x.ctx.refresh()
	}
}

// mapPacket maps the packet's current bytes, if they moved or changed
// length.
func (x *Executor) mapPacket() {
	if d := x.ctx.pkt.Data(); len(d) != len(x.mapped) || len(d) == 0 || &d[0] != &x.mapped[0] {
		x.remap(d)
	}
}

// remap maps d, the packet's bytes.
func (x *Executor) remap(d []byte) {
	if err := x.m.SetPacket(d, 0, 0, len(d)); err != nil {
		// Only a packet beyond 4 GiB could fail: skb caps growth far below.
		panic(err)
	}
	x.mapped = d
}

// finish releases what the kernel's verifier would have forced the program
// to release: ring buffer records it neither submitted nor discarded, and
// a spin lock still held, references to sockets it did not release.
func (x *Executor) finish() {
	for i := range x.nresv {
		r := &x.resv[i]
		if r.rb != nil {
			r.rb.Discard(r.off, 0)
		}
		*r = reservation{}
	}
	x.nresv = 0
	if x.lock != nil {
		spinUnlock(x.lock)
		x.lock = nil
	}
	x.dropSockets()
}

// ctxView is the __sk_buff of the current run: loads read the image the
// skb layer lays out (with the kernel's narrow-load rules), stores go
// through skb's conversion to the packet and the image. The image is laid
// out on the first access after the packet may have changed (not fresh), so a
// run or helper that never touches the context does not pay for it.
type ctxView struct {
	pkt *skb.Packet
	// fresh is the words of img that show pkt (vm.ContextImage): all of
	// them, those of the program's sites (Program.ctxPartial) or none.
	fresh uint64
	// laid says the image was laid out during the run (by a load or
	// store of the program), which makes later runs of the program lay it
	// out before they start (Program.ctxEager); missed that it was laid
	// out because the program reached past the words it had fresh, which
	// makes them lay all of it out.
	laid, missed bool
	// dirty is the words of img the VM stored into directly (plain
	// stores, vm.CtxDirtyWords): the packet's fields behind them catch
	// up in sync, before anything reads them.
	dirty uint64
	img   [skb.CtxSize]byte
	// cache says what img was laid out from: laying out the image of a
	// packet that shows the same is a comparison.
	cache skb.CtxCache
	plain *vm.CtxPolicy // loads and stores that are plain image accesses (skb.CtxPlainLoad, CtxPlainStore)
}

func (v *ctxView) refresh() {
	v.sync()
	v.cache.Lay(v.img[:], v.pkt, pktBase)
	v.fresh, v.laid = vm.CtxAllWords, true
}

// need lays the whole image out for an access of the program, unless it
// is fresh; a program that had some words fresh reached past them.
func (v *ctxView) need() {
	if v.fresh != vm.CtxAllWords {
		v.missed = v.missed || v.fresh != 0
		v.refresh()
	}
}

// learn is what a run that laid the image out teaches about prog: to lay
// it out before its runs (eager), and all of it if the run reached past
// the words it had fresh.
func (v *ctxView) learn(prog *Program, eager bool) {
	if !eager {
		prog.ctxEager.Store(true)
	}
	if v.missed {
		prog.ctxPartial.Store(false)
	}
}

// ctxView must stay a vm.ContextImage: the VM finds out by a type
// assertion, which would fail silently and leave every access to Go.
var _ vm.ContextImage = (*ctxView)(nil)

// CtxImage lets the VM (interpreter and compiled code) do the plain
// loads and stores straight on the image while it is fresh, without a
// call.
func (v *ctxView) CtxImage() ([]byte, *uint64, *uint64, *vm.CtxPolicy) {
	return v.img[:], &v.fresh, &v.dirty, v.plain
}

// sync brings the packet's fields up to the plain stores made into the
// image, those whose words are dirty: after a run, before a helper reads
// the packet, before the image is rebuilt.
func (v *ctxView) sync() {
	if v.dirty != 0 {
		v.flush()
	}
}

// flush is sync's work, out of line so that sync is a comparison where
// it is called (before every run of a program that reads its context,
// in every skb helper).
func (v *ctxView) flush() {
	v.cache.ReadCtxWords(v.pkt, v.img[:], v.dirty)
	v.dirty = 0
}

func (v *ctxView) LoadCtx(off, size int) (uint64, bool) {
	v.need()
	return skb.CtxLoad(v.img[:], off, size), true
}

func (v *ctxView) StoreCtx(off, size int, v64 uint64) bool {
	v.need()
	v.sync()
	return v.cache.StoreCtx(v.pkt, v.img[:], off, size, v64)
}

func (v *ctxView) StoreCtxImm(off, size int, imm int32) bool {
	v.need()
	v.sync()
	return v.cache.StoreCtxImm(v.pkt, v.img[:], off, size, imm)
}

// executor returns the executor a helper runs on.
func executor(m *vm.Machine) *Executor { return m.User().(*Executor) }

// execPool is a collection's executors, slot i running as CPU i. Taking a
// free slot and giving it back are an atomic compare-and-swap and a store
// (plus a load of waiting): the packet path takes no lock. A run that
// finds every slot busy (more goroutines running programs than simulated
// CPUs) parks on wake instead of spinning, and is woken by a release.
type execPool struct {
	slots []poolSlot
	// waiting counts runs parked or about to park on wake; a release
	// sends on wake only then. wake holds at most one token per slot: a
	// release that finds it full drops its token, since enough waiters
	// will wake anyway to retry for every slot.
	waiting atomic.Int32
	wake    chan struct{}
	// cpuWaiting and cpuWake are the same for runs that want one CPU
	// (acquireCPU), per slot, one token at most.
	cpuWaiting []atomic.Int32
	cpuWake    []chan struct{}
}

func (p *execPool) init(n int) {
	p.slots = make([]poolSlot, n)
	p.wake = make(chan struct{}, n)
	p.cpuWaiting = make([]atomic.Int32, n)
	p.cpuWake = make([]chan struct{}, n)
	for i := range p.cpuWake {
		p.cpuWake[i] = make(chan struct{}, 1)
	}
}

// acquire borrows a free executor of the pool: slot i is CPU i, so no two
// concurrent runs share per-CPU values. Executors are created on first use.
func (c *Collection) acquire() (*poolSlot, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("run: collection closed: %w", syscall.EBADF)
	}
	if s := c.tryAcquire(); s != nil {
		return s, nil
	}
	p := &c.pool
	for {
		// Register before the second look: a release that frees a slot
		// after that look sees waiting > 0 and leaves a token, so no
		// wake-up is lost (the atomics are sequentially consistent).
		p.waiting.Add(1)
		s := c.tryAcquire()
		if s == nil {
			<-p.wake
		}
		p.waiting.Add(-1)
		if s == nil {
			s = c.tryAcquire()
		}
		if s != nil {
			return s, nil
		}
	}
}

// acquireCPU borrows the executor of CPU cpu, parked while another run
// holds it (as acquire waits, on the slot's own wake channel); a cpu
// outside the pool borrows any free one (acquire).
func (c *Collection) acquireCPU(cpu int) (*poolSlot, error) {
	if cpu < 0 || cpu >= len(c.pool.slots) {
		return c.acquire()
	}
	if c.closed.Load() {
		return nil, fmt.Errorf("run: collection closed: %w", syscall.EBADF)
	}
	p := &c.pool
	s := &p.slots[cpu]
	for !s.take() {
		p.cpuWaiting[cpu].Add(1)
		if !s.take() {
			<-p.cpuWake[cpu]
			p.cpuWaiting[cpu].Add(-1)
			continue
		}
		p.cpuWaiting[cpu].Add(-1)
		break
	}
	if s.x == nil {
		s.x = newExecutor(c, cpu)
	}
	return s, nil
}

func (s *poolSlot) take() bool { return !s.busy.Load() && s.busy.CompareAndSwap(false, true) }

func (c *Collection) tryAcquire() *poolSlot {
	for i := range c.pool.slots {
		s := &c.pool.slots[i]
		if !s.take() {
			continue
		}
		if s.x == nil {
			s.x = newExecutor(c, i)
		}
		return s
	}
	return nil
}

// release gives s back and wakes a parked run, if any: one that waits
// for this CPU and one that waits for any.
func (p *execPool) release(s *poolSlot) {
	s.busy.Store(false)
	if cpu := s.x.cpu; p.cpuWaiting[cpu].Load() > 0 {
		select {
		case p.cpuWake[cpu] <- struct{}{}:
		default:
		}
	}
	if p.waiting.Load() > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}
