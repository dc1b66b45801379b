package userspace

import (
	"sync"
	"sync/atomic"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/mprog"
)

// Runtime is one userspace tcx world, the analogue of a fresh network
// namespace with its own program and link ID spaces and a flat pin
// namespace. It implements tcx.Backend.
type Runtime struct {
	// mu is the RTNL analogue: every control operation holds it, so they
	// are serialised across all devices, as in the kernel.
	mu          sync.Mutex
	devs        map[int]*device
	names       map[string]*device
	nextIfindex int
	progs       idSpace[*program]
	links       idSpace[*link]
	pins        map[string]*link

	// table is the packet path's read-only snapshot of devs, replaced
	// (copy on write) whenever a device comes or goes.
	table   atomic.Pointer[map[int]*device]
	packets sync.Pool
}

var _ tcx.Backend = (*Runtime)(nil)

// New returns a runtime with the loopback device "lo" at ifindex 1, like a
// fresh network namespace.
func New() *Runtime {
	rt := &Runtime{
		devs:        map[int]*device{},
		names:       map[string]*device{},
		nextIfindex: 1,
		progs:       newIDSpace[*program](),
		links:       newIDSpace[*link](),
		pins:        map[string]*link{},
	}
	rt.packets.New = func() any { return new(Packet) }
	rt.mu.Lock()
	rt.register(&device{name: "lo", kind: kindLoopback})
	rt.mu.Unlock()
	return rt
}

type bundle = mprog.Bundle[program, link]
type tuple = mprog.Tuple[program, link]
type relative = mprog.Relative[program, link]

// tcxEntry is one hook's shared state (struct tcx_entry): the tcx bundle and
// the classic tc filters of a clsact/ingress qdisc on the same hook. It
// exists while programs are attached or a qdisc uses it.
type tcxEntry struct {
	bundle *bundle
	// miniq is what the packet path runs after tcx: nil without a qdisc.
	miniq atomic.Pointer[filterChain]
	// qdiscs counts the qdiscs using the entry (miniq_active).
	qdiscs int
}

func (e *tcxEntry) active() bool { return e.bundle.Count() > 0 || e.qdiscs > 0 }

// hook is one direction of a device; entry is nil while nothing uses it.
type hook struct {
	entry atomic.Pointer[tcxEntry]
}

// fetchOrCreate is tcx_entry_fetch_or_create. A created entry is not yet
// visible to packets; publish makes it so.
func (d *device) fetchOrCreate(dir tcx.Direction) (e *tcxEntry, created bool) {
	if e = d.hooks[dir].entry.Load(); e != nil {
		return e, false
	}
	return &tcxEntry{bundle: mprog.New[program, link]()}, true
}

func (d *device) publish(dir tcx.Direction, e *tcxEntry) { d.hooks[dir].entry.Store(e) }

// settle frees the hook's entry once neither programs nor a qdisc use it,
// so the next attach starts again at revision 1.
func (d *device) settle(dir tcx.Direction, e *tcxEntry) {
	if !e.active() && d.hooks[dir].entry.Load() == e {
		d.hooks[dir].entry.Store(nil)
	}
}

func validDir(dir tcx.Direction) bool { return dir == tcx.Ingress || dir == tcx.Egress }
