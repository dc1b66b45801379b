package userspace

import (
	"slices"

	"github.com/tcxgo/tcx"
)

// QdiscKind is a classic tc qdisc that shares a hook with tcx.
type QdiscKind uint8

const (
	QdiscNone    QdiscKind = iota
	QdiscClsact            // filters on ingress and egress
	QdiscIngress           // the old ingress qdisc: ingress filters only
)

// Filter is a direct-action cls_bpf filter ("tc filter add ... bpf da").
type Filter struct {
	// Priority orders filters (lower runs first); 0 picks one like tc:
	// 0xc000 on an empty hook, else one below the lowest in use.
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

// AddQdisc installs a clsact or ingress qdisc (EEXIST if the device already
// has one). It takes a share of each hook's tcx entry, creating it if
// needed, so a hook's revision keeps counting while the qdisc lives.
func (rt *Runtime) AddQdisc(ifindex int, kind QdiscKind) error {
	const op = "add qdisc"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := rt.devs[ifindex]
	switch {
	case d == nil:
		return opError(op, errNoDev)
	case kind != QdiscClsact && kind != QdiscIngress:
		return opError(op, errInval)
	case d.qdisc != QdiscNone:
		return opError(op, errExist)
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

// DeleteQdisc removes the device's qdisc with all its filters. A hook entry
// that no program uses any more is freed (its revision starts over).
func (rt *Runtime) DeleteQdisc(ifindex int) error {
	const op = "delete qdisc"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := rt.devs[ifindex]
	switch {
	case d == nil:
		return opError(op, errNoDev)
	case d.qdisc == QdiscNone:
		return opError(op, errNoEnt)
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

// filterHook finds a device whose qdisc serves dir: ENODEV without the
// device, EINVAL without such a qdisc.
func (rt *Runtime) filterHook(ifindex int, dir tcx.Direction) (*device, error) {
	d := rt.devs[ifindex]
	switch {
	case d == nil:
		return nil, errNoDev
	case !validDir(dir) || !slices.Contains(d.qdisc.dirs(), dir):
		return nil, errInval
	}
	return d, nil
}

// AddFilter adds a direct-action cls_bpf filter, or replaces the program of
// the filter with the same priority and handle in place ("tc filter
// replace"). Within one priority the newest filter runs first, as in
// cls_bpf's list. EINVAL without a qdisc serving that direction.
func (rt *Runtime) AddFilter(ifindex int, dir tcx.Direction, f Filter) error {
	const op = "add filter"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d, err := rt.filterHook(ifindex, dir)
	if err != nil {
		return opError(op, err)
	}
	p, err := rt.progOf(f.Program)
	if err != nil {
		return opError(op, err)
	}
	fs := slices.Clone(d.filters[dir])
	if f.Priority == 0 {
		f.Priority = 0xc000
		if len(fs) > 0 {
			f.Priority = fs[0].prio - 1
		}
	}
	if f.Handle == 0 {
		f.Handle = 1
		for slices.ContainsFunc(fs, func(x filter) bool { return x.prio == f.Priority && x.handle == f.Handle }) {
			f.Handle++
		}
	}
	nf := filter{prio: f.Priority, handle: f.Handle, classid: f.Classid, prog: p}
	rt.getProg(p)
	if i := slices.IndexFunc(fs, func(x filter) bool { return x.prio == nf.prio && x.handle == nf.handle }); i >= 0 {
		rt.putProg(fs[i].prog)
		fs[i] = nf
	} else {
		at := len(fs)
		for i, x := range fs {
			if x.prio >= nf.prio {
				at = i
				break
			}
		}
		fs = slices.Insert(fs, at, nf)
	}
	rt.setFilters(d, dir, fs)
	return nil
}

// DeleteFilter deletes the filter with that priority and handle; handle 0
// deletes the whole priority, and priority 0 with handle 0 every filter of
// the hook. ENOENT if nothing matched.
func (rt *Runtime) DeleteFilter(ifindex int, dir tcx.Direction, priority uint16, handle uint32) error {
	const op = "delete filter"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d, err := rt.filterHook(ifindex, dir)
	if err != nil {
		return opError(op, err)
	}
	var keep []filter
	gone := 0
	for _, x := range d.filters[dir] {
		if (priority == 0 || x.prio == priority) && (handle == 0 || x.handle == handle) {
			rt.putProg(x.prog)
			gone++
			continue
		}
		keep = append(keep, x)
	}
	if gone == 0 && !(priority == 0 && handle == 0) {
		return opError(op, errNoEnt)
	}
	rt.setFilters(d, dir, keep)
	return nil
}

func (rt *Runtime) setFilters(d *device, dir tcx.Direction, fs []filter) {
	d.filters[dir] = fs
	if e := d.hooks[dir].entry.Load(); e != nil {
		e.miniq.Store(&filterChain{f: slices.Clone(fs)})
	}
}
