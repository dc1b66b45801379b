package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/skb"
)

// bpf_timer on the engine's clock. A struct bpf_timer lives in a map value;
// the engine keeps its state beside, keyed by the timer's address, so the
// value's bytes stay what programs and userspace see in the kernel (zero).
// A timer fires when its deadline has passed on the engine's clock: at the
// end of the run of any program of the collection (the kernel fires it in a
// softirq soon after; a timer of 1 ns has fired by the time the test run
// returns), from Collection.ServeTimers when no run comes (tcx run serves
// every collection so), or when the caller asks (Collection.RunTimers).
// Not modelled: deleting or overwriting the map element does not cancel
// its timer.

// Clocks bpf_timer_init accepts, and bpf_timer_start's flags.
const (
	clockRealtime  = 0
	clockMonotonic = 1
	clockBoottime  = 7
	maxClocks      = 16
	timerAbs       = 1 << 0 // BPF_F_TIMER_ABS
	timerCPUPin    = 1 << 1 // BPF_F_TIMER_CPU_PIN
	timerBytes     = 16     // sizeof(struct bpf_timer)
)

// timer is one initialised struct bpf_timer.
type timer struct {
	e        *mapEntry
	key      uint64 // address of a read-only copy of the element's key
	value    uint64 // address of the element's value
	clock    uint64
	fn       uint64   // the callback (FuncAddr), 0 until set
	prog     *Program // the program the callback belongs to
	deadline uint64
	armed    bool
	runner   *Executor // the executor running the callback, if one is
}

// dueTimer is a timer runTimers fires, with the callback it had when it
// came due.
type dueTimer struct {
	t    *timer
	fn   uint64
	prog *Program
}

// timers is a collection's timer table.
type timers struct {
	mu    sync.Mutex
	byAdr map[uint64]*timer
	// armed counts the armed timers; runs read it without the lock to
	// skip the timer pass when nothing is armed.
	armed atomic.Int64
	// kick wakes ServeTimers when a timer is armed or the collection
	// closes (one pending wake-up is enough).
	kickOnce sync.Once
	kick     chan struct{}
}

func (ts *timers) kicks() chan struct{} {
	ts.kickOnce.Do(func() { ts.kick = make(chan struct{}, 1) })
	return ts.kick
}

// wake tells ServeTimers to look again, without waiting.
func (ts *timers) wake() {
	select {
	case ts.kicks() <- struct{}{}:
	default:
	}
}

func (c *Collection) timerClock(t *timer) uint64 {
	if t.clock == clockRealtime && c.opts.Clock == nil {
		return uint64(time.Now().UnixNano())
	}
	return c.now()
}

// timerArg finds the timer at addr, which must be 16 writable bytes of a
// map value.
func timerArg(m *vm.Machine, addr uint64) (*Executor, *timer, error) {
	if _, err := m.Mem(addr, timerBytes, true); err != nil {
		return nil, nil, err
	}
	x := executor(m)
	ts := &x.coll.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return x, ts.byAdr[addr], nil
}

// timerInit is bpf_timer_init(timer, map, flags).
func timerInit(m *vm.Machine, r1, r2, r3, _, _ uint64) (uint64, error) {
	clock := r3 & (maxClocks - 1)
	if r3 >= maxClocks || (clock != clockMonotonic && clock != clockRealtime && clock != clockBoottime) {
		return errno(linuxerr.EINVAL), nil
	}
	x, t, err := timerArg(m, r1)
	if err != nil {
		return 0, err
	}
	if t != nil {
		return errno(linuxerr.EBUSY), nil
	}
	e, err := x.slotMap(r2)
	if err != nil {
		return 0, err
	}
	key, value, err := x.coll.timerElem(e, r1)
	if err != nil {
		return 0, err
	}
	ts := &x.coll.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.byAdr[r1] != nil {
		return errno(linuxerr.EBUSY), nil
	}
	if ts.byAdr == nil {
		ts.byAdr = map[uint64]*timer{}
	}
	ts.byAdr[r1] = &timer{e: e, key: key, value: value, clock: clock}
	return 0, nil
}

// timerElem finds the map element the timer at addr lives in and maps a
// read-only copy of its key for the callback's key argument.
func (c *Collection) timerElem(e *mapEntry, addr uint64) (key, value uint64, err error) {
	var base uint64
	for _, b := range e.base {
		if addr>>32 == b>>32 {
			base = b
		}
	}
	if base == 0 {
		return 0, 0, fmt.Errorf("bpf_timer_init: timer %#x is not in map %q: %w", addr, e.name, syscall.EINVAL)
	}
	slot := int((addr - base) / e.stride)
	k := make([]byte, e.keySize) // once per timer
	if isArray(e) {
		binary.LittleEndian.PutUint32(k, uint32(slot))
	} else {
		next := make([]byte, e.keySize)
		var prev []byte
		for e.m.NextKey(prev, next) == nil {
			if s, ok := e.slots.LookupSlot(next, 0); ok && s == slot {
				copy(k, next)
				break
			}
			prev = append(prev[:0], next...)
		}
	}
	key, err = c.as.Map(vm.Region{Data: k, ReadOnly: true})
	return key, base + uint64(slot)*e.stride, err
}

func isArray(e *mapEntry) bool {
	t := e.m.Info().Type
	return t == ebpf.Array || t == ebpf.PerCPUArray
}

// timerSetCallback is bpf_timer_set_callback(timer, callback).
func timerSetCallback(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
	x, t, err := timerArg(m, r1)
	if err != nil {
		return 0, err
	}
	if t == nil {
		return errno(linuxerr.EINVAL), nil
	}
	p := x.coll.programOf(m.Program())
	ts := &x.coll.timers
	ts.mu.Lock()
	t.fn, t.prog = r2, p
	ts.mu.Unlock()
	return 0, nil
}

// timerStart is bpf_timer_start(timer, nsecs, flags).
func timerStart(m *vm.Machine, r1, r2, r3, _, _ uint64) (uint64, error) {
	if r3&^(timerAbs|timerCPUPin) != 0 {
		return errno(linuxerr.EINVAL), nil
	}
	x, t, err := timerArg(m, r1)
	if err != nil {
		return 0, err
	}
	ts := &x.coll.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t == nil || t.fn == 0 {
		return errno(linuxerr.EINVAL), nil
	}
	t.deadline = r2
	if r3&timerAbs == 0 {
		t.deadline += x.coll.timerClock(t)
	}
	if !t.armed {
		t.armed = true
		ts.armed.Add(1)
	}
	ts.wake()
	return 0, nil
}

// timerCancel is bpf_timer_cancel(timer): 1 if it was armed, 0 if not,
// -EDEADLK from the timer's own callback; either way the callback is
// forgotten.
func timerCancel(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	x, t, err := timerArg(m, r1)
	if err != nil {
		return 0, err
	}
	if t == nil {
		return errno(linuxerr.EINVAL), nil
	}
	ts := &x.coll.timers
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t.runner == x { // cancelling itself; another CPU's cancel goes on
		return errno(linuxerr.EDEADLK), nil
	}
	// The kernel drops the callback too (drop_prog_refcnt): a start needs
	// a bpf_timer_set_callback first again.
	t.fn, t.prog = 0, nil
	if !t.armed {
		return 0, nil
	}
	t.armed = false
	ts.armed.Add(-1)
	return 1, nil
}

// RunTimers fires every bpf_timer whose deadline has passed on the
// engine's clock, each at most once, and reports how many ran. Runs of
// the collection's programs do this at their end; a caller driving the
// clock (Options.Clock) calls it after moving the clock on.
func (c *Collection) RunTimers() (int, error) {
	s, err := c.acquire()
	if err != nil {
		return 0, err
	}
	defer c.pool.release(s)
	return s.x.runTimers()
}

// runTimers fires the due timers on this executor.
func (x *Executor) runTimers() (int, error) {
	ts := &x.coll.timers
	if ts.armed.Load() == 0 {
		return 0, nil
	}
	ts.mu.Lock()
	due := x.due[:0]
	for _, t := range ts.byAdr {
		if t.armed && x.coll.timerClock(t) >= t.deadline {
			t.armed, t.runner = false, x
			ts.armed.Add(-1)
			// The callback as it is now: a run may set another one
			// while this one runs.
			due = append(due, dueTimer{t, t.fn, t.prog})
		}
	}
	x.due = due
	ts.mu.Unlock()
	var errs error
	for _, d := range due {
		if d.prog != nil {
			x.m.SetContext(nil)
			_, err := x.m.RunCallback(d.prog.vm, d.fn, d.t.e.handle, d.t.key, d.t.value)
			x.m.SetContextAccessor(&x.ctx, skb.CtxSize)
			x.finish()
			if err != nil && errs == nil {
				errs = fmt.Errorf("timer callback of %s: %w", d.prog.name, err)
			}
		}
		ts.mu.Lock()
		d.t.runner = nil
		ts.mu.Unlock()
	}
	clear(due) // no timer kept alive by the buffer
	return len(due), errs
}

// ServeTimers fires the collection's bpf_timers when they come due on its
// clock, without a run or a RunTimers call to prompt it, until ctx is done
// or the collection is closed; run it in a goroutine of its own. It sleeps
// until the earliest deadline, and wakes when a program arms a timer. With
// Options.Clock, whose time it cannot sleep on, it looks every tick
// instead; tick also bounds every sleep (0: a millisecond with
// Options.Clock, a second without). Callbacks run on one of the
// collection's executors, taken as a run takes one, so they never run
// beside a program on the same simulated CPU; firing allocates nothing.
// It returns ctx's error, or nil once the collection is closed. A callback
// that faults ends only itself; onError, if not nil, hears of it.
//
// Test runs stay deterministic without it: a due timer fires at the end
// of the next run, on the clock the caller controls.
func (c *Collection) ServeTimers(ctx context.Context, tick time.Duration, onError func(error)) error {
	if tick <= 0 {
		tick = time.Second
		if c.opts.Clock != nil {
			tick = time.Millisecond
		}
	}
	ts := &c.timers
	kick := ts.kicks()
	sleep := time.NewTimer(tick)
	defer sleep.Stop()
	for {
		if c.closed.Load() {
			return nil
		}
		if ts.armed.Load() != 0 {
			if _, err := c.RunTimers(); err != nil && onError != nil && !c.closed.Load() {
				onError(err)
			}
		}
		sleep.Reset(c.nextTimer(tick))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-kick:
		case <-sleep.C:
		}
	}
}

// nextTimer is how long ServeTimers may sleep: until the earliest armed
// deadline on a clock it can sleep on, at most tick.
func (c *Collection) nextTimer(tick time.Duration) time.Duration {
	ts := &c.timers
	if ts.armed.Load() == 0 || c.opts.Clock != nil {
		return tick
	}
	wait := tick
	ts.mu.Lock()
	for _, t := range ts.byAdr {
		if !t.armed {
			continue
		}
		d := time.Duration(0)
		if now := c.timerClock(t); t.deadline > now {
			d = time.Duration(min(t.deadline-now, uint64(tick)))
		}
		wait = min(wait, d)
	}
	ts.mu.Unlock()
	return wait
}
