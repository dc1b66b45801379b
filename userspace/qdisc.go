package userspace

import (
	"slices"

	"github.com/tcxgo/tcx"
)

// QdiscKind is a classic tc qdisc that shares a hook with tcx.
type QdiscKind uint8

const (
	QdiscNone    QdiscKind = iota
	QdiscClsact            // a filter block on ingress and one on egress
	QdiscIngress           // the old ingress qdisc: one block, run on ingress
)

// Filter is a direct-action cls_bpf filter ("tc filter add ... bpf da").
type Filter struct {
	// Priority orders filters (lower runs first). 0 picks one like the
	// kernel's tcf_auto_prio: one below the lowest priority in use at or
	// above 0x8000, else 0xc000; ENOSPC if 0x8000 itself is taken.
	Priority uint16
	// Handle names the filter within its priority; 0 picks the lowest
	// free one.
	Handle uint32
	// Classid is TCA_BPF_CLASSID, what the program finds in tc_classid.
	Classid uint32
	Program tcx.Program
}

type filter struct {
	prio    uint16
	handle  uint32
	classid uint32
	prog    *program
}

// filterChain is an immutable snapshot of one hook's filters in run order.
type filterChain struct {
	f []filter
}

func (k QdiscKind) dirs() []tcx.Direction {
	switch k {
	case QdiscClsact:
		return []tcx.Direction{tcx.Ingress, tcx.Egress}
	case QdiscIngress:
		return []tcx.Direction{tcx.Ingress}
	}
	return nil
}

// AddQdisc installs a clsact or ingress qdisc. It takes a share of each
// hook's tcx entry, creating it if needed, so a hook's revision keeps
// counting while the qdisc lives.
//
// The checks follow tc_modify_qdisc for parent ffff:fff1 with
// NLM_F_CREATE|NLM_F_EXCL: ENODEV without the device; then the device gets
// its ingress queue for good (dev_ingress_queue_create runs before anything
// else can fail, see DeleteQdisc); EEXIST if a clsact or ingress qdisc is
// there, whatever kind was asked for; ENOENT for a kind that is neither
// (qdisc_create: "unknown qdisc kind").
func (rt *Runtime) AddQdisc(ifindex int, kind QdiscKind) error {
	const op = "add qdisc"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := rt.devs[ifindex]
	if d == nil {
		return opError(op, errNoDev)
	}
	d.ingressQueue = true
	switch {
	case d.qdisc != QdiscNone:
		return opError(op, errExist)
	case kind != QdiscClsact && kind != QdiscIngress:
		return opError(op, errNoEnt)
	}
	d.qdisc = kind
	for _, dir := range kind.dirs() {
		e, created := d.fetchOrCreate(dir)
		e.qdiscs++
		e.miniq.Store(&filterChain{})
		if created {
			d.publish(dir, e)
		}
	}
	return nil
}

// DeleteQdisc removes the device's clsact or ingress qdisc with all its
// filters. A hook entry that no program uses any more is freed (its
// revision starts over).
//
// Like RTM_DELQDISC for parent ffff:fff1 (the request carries no kind, so
// either qdisc goes): ENODEV without the device; ENOENT if the device has
// no ingress queue, which only a qdisc add creates; EINVAL if it has one
// but the queue holds the noop qdisc (handle 0, not the ffff: asked for),
// that is once any qdisc add was tried on the device, until the device is
// deleted.
func (rt *Runtime) DeleteQdisc(ifindex int) error {
	const op = "delete qdisc"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := rt.devs[ifindex]
	switch {
	case d == nil:
		return opError(op, errNoDev)
	case !d.ingressQueue:
		return opError(op, errNoEnt)
	case d.qdisc == QdiscNone:
		return opError(op, errInval)
	}
	rt.destroyQdisc(d)
	return nil
}

func (rt *Runtime) destroyQdisc(d *device) {
	for _, dir := range d.qdisc.dirs() {
		for _, f := range d.filters[dir] {
			rt.putProg(f.prog)
		}
		d.filters[dir] = nil
		if e := d.hooks[dir].entry.Load(); e != nil {
			e.miniq.Store(nil)
			e.qdiscs--
			d.settle(dir, e)
		}
	}
	d.qdisc = QdiscNone
}

// filterBlock is __tcf_qdisc_find and __tcf_block_find for the filter
// block that dir names: ENODEV without the device, EINVAL without a clsact
// or ingress qdisc. The ingress qdisc has one block, and its class lookup
// (ingress_find) accepts any minor, so a filter named from the egress side
// (parent ffff:fff3) lands in that block too and runs on ingress.
func (rt *Runtime) filterBlock(ifindex int, dir tcx.Direction) (*device, tcx.Direction, error) {
	d := rt.devs[ifindex]
	switch {
	case d == nil:
		return nil, 0, errNoDev
	case !validDir(dir) || d.qdisc == QdiscNone:
		return nil, 0, errInval
	case d.qdisc == QdiscIngress:
		return d, tcx.Ingress, nil
	}
	return d, dir, nil
}

// AddFilter adds a direct-action cls_bpf filter ("tc filter add": netlink
// NLM_F_CREATE|NLM_F_EXCL). Within one priority the newest filter runs
// first, as in cls_bpf's list.
//
// The checks come in tc_new_tfilter's order: ENODEV, EINVAL without a qdisc
// for that direction (filterBlock), ENOSPC when Priority 0 finds 0x8000
// taken, EEXIST for a taken priority and handle, and only then the program
// (cls_bpf_change): EBADF for a closed handle, EINVAL for none (fd 0).
func (rt *Runtime) AddFilter(ifindex int, dir tcx.Direction, f Filter) error {
	return rt.changeFilter("add filter", ifindex, dir, f, true)
}

// ReplaceFilter is "tc filter replace" (NLM_F_CREATE without NLM_F_EXCL):
// AddFilter, except that a filter with the same priority and handle gets
// the new program and classid in place, keeping its position.
func (rt *Runtime) ReplaceFilter(ifindex int, dir tcx.Direction, f Filter) error {
	return rt.changeFilter("replace filter", ifindex, dir, f, false)
}

func (rt *Runtime) changeFilter(op string, ifindex int, dir tcx.Direction, f Filter, excl bool) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d, blk, err := rt.filterBlock(ifindex, dir)
	if err != nil {
		return opError(op, err)
	}
	fs := slices.Clone(d.filters[blk])
	if f.Priority == 0 {
		if f.Priority, err = autoPriority(fs); err != nil {
			return opError(op, err)
		}
	}
	// cls_bpf_get never finds handle 0: it always makes a new filter.
	at := -1
	if f.Handle != 0 {
		at = slices.IndexFunc(fs, func(x filter) bool { return x.prio == f.Priority && x.handle == f.Handle })
	}
	if at >= 0 && excl {
		return opError(op, errExist)
	}
	p, err := rt.progOf(f.Program)
	if err != nil {
		return opError(op, err)
	}
	if f.Handle == 0 {
		f.Handle = 1
		for slices.ContainsFunc(fs, func(x filter) bool { return x.prio == f.Priority && x.handle == f.Handle }) {
			f.Handle++
		}
	}
	nf := filter{prio: f.Priority, handle: f.Handle, classid: f.Classid, prog: p}
	rt.getProg(p)
	if at >= 0 {
		rt.putProg(fs[at].prog)
		fs[at] = nf
	} else {
		i := slices.IndexFunc(fs, func(x filter) bool { return x.prio >= nf.prio })
		if i < 0 {
			i = len(fs)
		}
		fs = slices.Insert(fs, i, nf)
	}
	rt.setFilters(d, blk, fs)
	return nil
}

// Priorities tcf_auto_prio hands out: it looks for the first filter at or
// above autoPrioFloor and picks one below it, or autoPrioFirst if there
// is none.
const (
	autoPrioFloor = 0x8000
	autoPrioFirst = 0xc000
)

// autoPriority picks a priority for a filter added with priority 0 to the
// block fs (sorted by priority).
func autoPriority(fs []filter) (uint16, error) {
	i := slices.IndexFunc(fs, func(x filter) bool { return x.prio >= autoPrioFloor })
	switch {
	case i < 0:
		return autoPrioFirst, nil
	case fs[i].prio == autoPrioFloor:
		return 0, errNoSpace // "lowest ID from auto-alloc range already in use"
	}
	return fs[i].prio - 1, nil
}

// DeleteFilter is "tc filter del" without protocol and kind: the filter
// with that priority and handle, the whole priority with handle 0, every
// filter of the block with both 0 (a flush, which succeeds on an empty
// block too). A handle without a priority is ENOENT before anything else
// is looked at; then ENODEV and EINVAL as for AddFilter; ENOENT if nothing
// matched.
func (rt *Runtime) DeleteFilter(ifindex int, dir tcx.Direction, priority uint16, handle uint32) error {
	const op = "delete filter"
	if priority == 0 && handle != 0 {
		return opError(op, errNoEnt)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d, blk, err := rt.filterBlock(ifindex, dir)
	if err != nil {
		return opError(op, err)
	}
	var keep []filter
	gone := 0
	for _, x := range d.filters[blk] {
		if (priority == 0 || x.prio == priority) && (handle == 0 || x.handle == handle) {
			rt.putProg(x.prog)
			gone++
			continue
		}
		keep = append(keep, x)
	}
	if gone == 0 && priority != 0 {
		return opError(op, errNoEnt)
	}
	rt.setFilters(d, blk, keep)
	return nil
}

func (rt *Runtime) setFilters(d *device, blk tcx.Direction, fs []filter) {
	d.filters[blk] = fs
	if e := d.hooks[blk].entry.Load(); e != nil {
		e.miniq.Store(&filterChain{f: slices.Clone(fs)})
	}
}
