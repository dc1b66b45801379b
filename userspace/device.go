package userspace

import (
	"encoding/binary"
	"maps"
	"runtime"
	"sync/atomic"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/skb"
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
	rt      *Runtime // the runtime (network namespace) the device is in
	peer    *device  // veth only; possibly in another runtime
	hooks   [2]hook
	// addr is dev->dev_addr in the low 48 bits (big endian), read by the
	// packet path for eth_type_trans.
	addr atomic.Uint64
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
	d.rt = rt
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

// skbDevice is the device as eth_type_trans sees it: its address, and
// ff:ff:ff:ff:ff:ff as broadcast (all zero for loopback, as in the kernel).
func (d *device) skbDevice() skb.Device {
	dev := skb.Device{Ifindex: uint32(d.ifindex)}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], d.addr.Load())
	copy(dev.Addr[:], b[2:])
	if d.kind != kindLoopback {
		dev.Broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	return dev
}

// SetHardwareAddr sets a device's MAC address (ip link set address), which
// decides pkt_type for frames it receives: PACKET_HOST for frames to it,
// PACKET_OTHERHOST for other unicast. Devices start with 00:00:00:00:00:00.
// Loopback's address cannot be changed (EOPNOTSUPP); an unknown device
// gives ENODEV.
func (rt *Runtime) SetHardwareAddr(ifindex int, addr [6]byte) error {
	const op = "set hardware address"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := rt.devs[ifindex]
	switch {
	case d == nil:
		return opError(op, errNoDev)
	case d.kind == kindLoopback:
		return opError(op, errNotSupp)
	}
	var b [8]byte
	copy(b[2:], addr[:])
	d.addr.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

// AddVethPairTo adds the veth pair a <-> b with b in the runtime peer (a
// veth pair across two network namespaces, ip link add a type veth peer
// name b netns ...): each end gets the next ifindex of its own runtime,
// b first. Frames crossing it are scrubbed as between namespaces (mark
// and delivery time cleared), and bpf_redirect_peer from a's or b's
// ingress works across it. With peer == rt it is AddVethPair.
func (rt *Runtime) AddVethPairTo(a string, peer *Runtime, b string) (ia, ib int, err error) {
	const op = "add veth pair"
	if peer == nil {
		return 0, 0, opError(op, errInval)
	}
	if peer == rt {
		return rt.AddVethPair(a, b)
	}
	unlock := lockPair(rt, peer)
	defer unlock()
	if err := rt.checkName(a); err != nil {
		return 0, 0, opError(op, err)
	}
	if err := peer.checkName(b); err != nil {
		return 0, 0, opError(op, err)
	}
	da, db := &device{name: a, kind: kindVeth}, &device{name: b, kind: kindVeth}
	da.peer, db.peer = db, da
	peer.register(db)
	rt.register(da)
	return da.ifindex, db.ifindex, nil
}

// lockPair takes the control locks of two runtimes without holding one
// while blocking on the other (it backs off and retries the other way), so
// two goroutines locking the same pair in opposite order cannot deadlock;
// it returns the unlock. Runtimes have no global order to lock by, and a
// package-wide one would be shared mutable state.
func lockPair(x, y *Runtime) func() {
	for {
		x.mu.Lock()
		if y.mu.TryLock() {
			return func() {
				y.mu.Unlock()
				x.mu.Unlock()
			}
		}
		x.mu.Unlock()
		runtime.Gosched()
		x, y = y, x
	}
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
	unlock := rt.lockDevice(ifindex)
	defer unlock()
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
		x.rt.unregister(x)
	}
	return nil
}

// lockDevice takes rt's lock and, when ifindex is a veth end whose peer is
// in another runtime, that runtime's lock too; it returns the unlock.
func (rt *Runtime) lockDevice(ifindex int) func() {
	for {
		rt.mu.Lock()
		d := rt.devs[ifindex]
		if d == nil || d.peer == nil || d.peer.rt == rt {
			return rt.mu.Unlock
		}
		other := d.peer.rt
		rt.mu.Unlock()
		unlock := lockPair(rt, other)
		if d := rt.devs[ifindex]; d != nil && d.peer != nil && d.peer.rt == other {
			return unlock
		}
		unlock() // the device changed meanwhile: look again
	}
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
