package userspace

import (
	"maps"

	"github.com/tcxgo/tcx"
)

type deviceKind uint8

const (
	kindPlain    deviceKind = iota // transmits onto a wire nobody reads
	kindLoopback                   // transmit = receive on itself
	kindVeth                       // transmit = receive on the peer
)

// device is a network device with its two hooks.
type device struct {
	ifindex int
	name    string
	kind    deviceKind
	peer    *device // veth only
	hooks   [2]hook
	// qdisc and filters are the classic tc side, control plane only; the
	// packet path runs the snapshot in each hook entry's miniq.
	qdisc   QdiscKind
	filters [2][]filter
	// ingressQueue is whether the device has its ingress netdev_queue, the
	// slot clsact and ingress qdiscs live in. The kernel creates it on the
	// first qdisc add and frees it only with the device; while it holds no
	// qdisc, deleting one fails differently (see DeleteQdisc).
	ingressQueue bool
}

// ifnameSize is IFNAMSIZ: names have at most 15 bytes.
const ifnameSize = 16

// register gives d the next free ifindex (cyclic, like the kernel's
// dev_index_reserve) and makes it visible. Caller holds mu.
func (rt *Runtime) register(d *device) {
	for rt.devs[rt.nextIfindex] != nil || rt.nextIfindex <= 0 {
		rt.nextIfindex++
		if rt.nextIfindex >= maxID {
			rt.nextIfindex = 1
		}
	}
	d.ifindex = rt.nextIfindex
	rt.nextIfindex++
	rt.devs[d.ifindex] = d
	rt.names[d.name] = d
	rt.publishTable()
}

func (rt *Runtime) publishTable() {
	t := maps.Clone(rt.devs)
	rt.table.Store(&t)
}

func (rt *Runtime) checkName(name string) error {
	switch {
	case name == "":
		return errInval
	case len(name) >= ifnameSize:
		return errInval
	case rt.names[name] != nil:
		return errExist
	}
	return nil
}

// AddDevice adds a plain device (a dummy: what it transmits leaves the
// runtime). A taken name gives EEXIST.
func (rt *Runtime) AddDevice(name string) (ifindex int, err error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if err := rt.checkName(name); err != nil {
		return 0, opError("add device", err)
	}
	d := &device{name: name, kind: kindPlain}
	rt.register(d)
	return d.ifindex, nil
}

// AddVethPair adds the veth pair a <-> b: what one end transmits, the other
// receives. Like the kernel, which registers the peer first, b gets the
// lower ifindex.
func (rt *Runtime) AddVethPair(a, b string) (ia, ib int, err error) {
	const op = "add veth pair"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if err := rt.checkName(a); err != nil {
		return 0, 0, opError(op, err)
	}
	if err := rt.checkName(b); err != nil || a == b {
		if err == nil {
			err = errExist
		}
		return 0, 0, opError(op, err)
	}
	da, db := &device{name: a, kind: kindVeth}, &device{name: b, kind: kindVeth}
	da.peer, db.peer = db, da
	rt.register(db)
	rt.register(da)
	return da.ifindex, db.ifindex, nil
}

// Ifindex looks a device up by name.
func (rt *Runtime) Ifindex(name string) (int, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if d := rt.names[name]; d != nil {
		return d.ifindex, true
	}
	return 0, false
}

// DeleteDevice removes a device, and for a veth end its peer too (like ip
// link del). Loopback cannot be deleted (EOPNOTSUPP). Qdiscs go first, then
// tcx is uninstalled: links turn defunct (ifindex 0), plain attachments are
// dropped, no revision moves.
func (rt *Runtime) DeleteDevice(ifindex int) error {
	const op = "delete device"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := rt.devs[ifindex]
	switch {
	case d == nil:
		return opError(op, errNoDev)
	case d.kind == kindLoopback:
		return opError(op, errNotSupp)
	}
	for _, x := range []*device{d, d.peer} {
		if x == nil {
			continue
		}
		rt.unregister(x)
	}
	return nil
}

func (rt *Runtime) unregister(d *device) {
	delete(rt.devs, d.ifindex)
	delete(rt.names, d.name)
	rt.publishTable()
	if d.qdisc != QdiscNone {
		rt.destroyQdisc(d)
	}
	for _, dir := range []tcx.Direction{tcx.Ingress, tcx.Egress} {
		rt.uninstall(d, dir)
	}
}

// uninstall is tcx_uninstall: the hook goes away without a commit.
func (rt *Runtime) uninstall(d *device, dir tcx.Direction) {
	e := d.hooks[dir].entry.Load()
	if e == nil {
		return
	}
	d.hooks[dir].entry.Store(nil)
	e.bundle.Clear(func(t tuple) {
		if t.Link != nil {
			t.Link.dev = nil
		} else {
			rt.putProg(t.Prog)
		}
	})
}
