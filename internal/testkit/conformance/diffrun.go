package conformance

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/tcxgo/tcx"
)

// replica is one backend's side of the differential test: its Env and the
// handles, IDs and ifindexes the logical slots of the generated operations
// resolve to. Everything it reports is in logical names (p3.1 = the second
// program loaded into slot 3, L17 = the link created by operation 17, lo /
// veth), so that the two backends' reports compare as strings.
type replica struct {
	env   Env
	b     tcx.Backend
	progs [progSlots]handle[tcx.Program]
	links [linkSlots]handle[tcx.Link]
	gen   [progSlots]int

	progNames map[uint32]string
	linkNames map[uint32]string
	staleProg [progSlots]uint32 // ID of the slot's previous program
	staleLink uint32            // link ID behind the last closed link handle
	progSlot  map[uint32]int    // program ID -> slot (all generations)
	// maybeAlive holds the IDs of the programs loaded here that were not
	// yet seen gone (an ID never comes back within a run).
	maybeAlive map[uint32]bool
	// onVeth marks slots with a program on a veth hook at the last
	// snapshot: the kernel's veth sends IPv6 autoconfiguration packets of
	// its own at random times, so pings cannot tell what such a probe saw.
	onVeth [progSlots]bool
	// qdiscs remembers the kind of qdisc each device got (to delete it by
	// kind, as tc does); filters the program slot of each classic filter.
	qdiscs  [devSlots]*Qdisc
	filters map[[2]int]int // {dev, dir} -> program slot

	veth    int // ifindex of the veth end (stale once deleted)
	peer    int // its peer
	hasVeth bool
	revs    [devSlots * 2]uint64 // last observed revision per hook
}

type handle[T tcx.Object] struct {
	obj    T
	valid  bool // obj was set
	closed bool
}

// probeVerdict gives the pool a mix of NEXT and PASS programs, so pings
// show where a chain stops, and one (slot 6) returning TC_ACT_PIPE, a code
// tcx does not know: it ends the tcx chain but counts as NEXT, so classic
// tc still runs. No probe drops: a dropped ping would only time out.
func probeVerdict(slot int) int32 {
	switch {
	case slot == 6:
		return 3 // TC_ACT_PIPE
	case slot >= 7:
		return tcx.VerdictPass
	}
	return tcx.VerdictNext
}

func newReplica(env Env) (*replica, error) {
	r := &replica{
		env: env, b: env.Backend(),
		progNames: map[uint32]string{}, linkNames: map[uint32]string{}, progSlot: map[uint32]int{},
		maybeAlive: map[uint32]bool{}, filters: map[[2]int]int{},
	}
	for i := range progSlots {
		if err := r.load(i); err != nil {
			return nil, err
		}
	}
	if err := r.addVeth(); err != nil {
		return nil, err
	}
	for i := range r.revs {
		r.revs[i] = 1
	}
	return r, nil
}

func (r *replica) load(slot int) error {
	p, err := r.env.Probe(slot, probeVerdict(slot))
	if err != nil {
		return fmt.Errorf("load probe %d: %w", slot, err)
	}
	r.progs[slot] = handle[tcx.Program]{obj: p, valid: true}
	r.progNames[p.ID()] = fmt.Sprintf("p%d.%d", slot, r.gen[slot])
	r.progSlot[p.ID()] = slot
	r.maybeAlive[p.ID()] = true
	r.gen[slot]++
	return nil
}

func (r *replica) addVeth() error {
	a, b, err := r.env.AddVeth("dv0a", "dv0b")
	if err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	r.veth, r.peer, r.hasVeth = a, b, true
	return nil
}

func (r *replica) ifindex(dev int) int {
	if dev == 0 {
		return r.env.Loopback()
	}
	return r.veth
}

func (r *replica) devName(ifindex uint32) string {
	switch {
	case ifindex == 0:
		return "0"
	case int(ifindex) == r.env.Loopback():
		return "lo"
	case int(ifindex) == r.veth && r.hasVeth:
		return "veth"
	case int(ifindex) == r.peer && r.hasVeth:
		return "peer"
	}
	return fmt.Sprintf("?ifindex%d", ifindex)
}

func (r *replica) progName(id uint32) string { return name(r.progNames, "?prog", id) }
func (r *replica) linkName(id uint32) string { return name(r.linkNames, "?link", id) }

// name maps a backend's ID to its logical name; IDs the replica never
// handed out show up with their number (and differ between backends).
func name(names map[uint32]string, unknown string, id uint32) string {
	if id == 0 {
		return "0"
	}
	if n, ok := names[id]; ok {
		return n
	}
	return fmt.Sprintf("%s%d", unknown, id)
}

// unknownID is far above any ID either backend hands out in a test run.
const unknownID = 0x7ffffff0

// relative turns a logical reference into the relative fields: handle
// references set Relative, ID references set RelativeID, whatever the flags
// say (a mismatch is a valid request too: the kernel then reads the other
// union member as 0).
//
// Program and link IDs are separate ID spaces, numbered differently on the
// two backends, so a program ID sent where the flags ask for a link ID (or
// the other way round) would hit an unrelated object on one backend and
// nothing on the other: such IDs go out as an ID nothing has.
func (r *replica) relative(x ref, flags tcx.Flags) (tcx.Object, uint32) {
	linkID := flags&tcx.FlagLink != 0
	switch x.kind {
	case refProgHandle:
		return r.progs[x.slot].obj, 0
	case refLinkHandle:
		if h := r.links[x.slot]; h.valid {
			return h.obj, 0
		}
	case refProgID, refStaleProgID:
		if linkID {
			return nil, unknownID
		}
		if x.kind == refStaleProgID {
			return nil, r.staleProg[x.slot]
		}
		return nil, r.progs[x.slot].obj.ID()
	case refLinkID, refStaleLinkID:
		if !linkID {
			return nil, unknownID
		}
		if x.kind == refStaleLinkID {
			return nil, r.staleLink
		}
		if h := r.links[x.slot]; h.valid {
			return nil, h.obj.ID()
		}
	case refUnknownID:
		return nil, unknownID
	}
	return nil, 0
}

func (r *replica) revision(o op) uint64 {
	cur := r.revs[o.dev*2+int(o.dir)]
	switch o.rev {
	case revCurrent:
		return cur
	case revBehind:
		return cur - 1
	case revAhead:
		return cur + 1
	case revOne:
		return 1
	}
	return 0
}

// errClass is the comparable outcome of a request: "ok", the errno's name,
// or "non-errno" (itself a contract violation: errors must speak errno).
func errClass(err error) string {
	if err == nil {
		return "ok"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return errnoName(e)
	}
	return "non-errno(" + err.Error() + ")"
}

// apply runs operation i and describes its outcome.
func (r *replica) apply(o op, i int) string {
	switch o.kind {
	case opAttach:
		opts := tcx.AttachOptions{Flags: o.flags, ExpectedRevision: r.revision(o)}
		opts.Relative, opts.RelativeID = r.relative(o.rel, o.flags)
		if o.repl.kind == refProgHandle {
			opts.Replace = r.progs[o.repl.slot].obj
		}
		return errClass(r.b.Attach(r.ifindex(o.dev), o.dir, r.progs[o.prog].obj, opts))
	case opDetach:
		opts := tcx.DetachOptions{Flags: o.flags, ExpectedRevision: r.revision(o)}
		opts.Relative, opts.RelativeID = r.relative(o.rel, o.flags)
		var p tcx.Program
		if o.prog >= 0 {
			p = r.progs[o.prog].obj
		}
		return errClass(r.b.Detach(r.ifindex(o.dev), o.dir, p, opts))
	case opQuery:
		return r.query(o)
	case opLinkCreate:
		opts := tcx.LinkOptions{Flags: o.flags, ExpectedRevision: r.revision(o)}
		opts.Relative, opts.RelativeID = r.relative(o.rel, o.flags)
		l, err := r.b.CreateLink(r.ifindex(o.dev), o.dir, r.progs[o.prog].obj, opts)
		if err != nil {
			return errClass(err)
		}
		r.linkNames[l.ID()] = fmt.Sprintf("L%d", i)
		return "ok " + r.putLink(o.link, l)
	case opOpenPinned:
		l, err := r.b.OpenPinnedLink(r.env.PinPath(fmt.Sprintf("pin%d", o.pin)))
		if err != nil {
			return errClass(err)
		}
		return "ok " + r.linkName(l.ID()) + r.putLink(o.link, l)
	case opProgClose:
		h := &r.progs[o.prog]
		err := h.obj.Close()
		r.staleProg[o.prog] = h.obj.ID()
		h.closed = true
		return errClass(err)
	case opProgReload:
		h := r.progs[o.prog]
		res := "was-closed"
		if !h.closed {
			res = "close " + errClass(h.obj.Close())
		}
		r.staleProg[o.prog] = h.obj.ID()
		if err := r.load(o.prog); err != nil {
			return res + " load " + errClass(err)
		}
		return res
	case opPing:
		return r.ping()
	case opVethAdd, opVethDelete:
		return r.vethOp(o.kind)
	case opQdiscAdd, opQdiscDelete, opFilterAdd, opFilterDelete:
		return r.classicOp(o)
	}
	return r.linkOp(o)
}

// putLink stores a new link handle in a slot, closing the open handle it
// replaces (so no handle leaks and the slot count stays fixed).
func (r *replica) putLink(slot int, l tcx.Link) string {
	res := ""
	if h := r.links[slot]; h.valid && !h.closed {
		r.staleLink = h.obj.ID()
		res = " (closed old: " + errClass(h.obj.Close()) + ")"
	}
	r.links[slot] = handle[tcx.Link]{obj: l, valid: true}
	return res
}

func (r *replica) linkOp(o op) string {
	h := &r.links[o.link]
	if !h.valid {
		return "no-link"
	}
	l := h.obj
	switch o.kind {
	case opLinkUpdate:
		opts := tcx.UpdateOptions{Flags: o.flags}
		if o.repl.kind == refProgHandle {
			opts.Old = r.progs[o.repl.slot].obj
		}
		return errClass(l.Update(r.progs[o.prog].obj, opts))
	case opLinkDetach:
		return errClass(l.Detach())
	case opLinkClose:
		err := l.Close()
		if !h.closed {
			r.staleLink = l.ID()
		}
		h.closed = true
		return errClass(err)
	case opLinkPin:
		return errClass(l.Pin(r.env.PinPath(fmt.Sprintf("pin%d", o.pin))))
	case opLinkUnpin:
		return errClass(l.Unpin())
	}
	return "unknown op"
}

func (r *replica) query(o op) string {
	n := int(o.count) + o.arrayExtra
	var arrays [4][]uint32
	for i := range arrays {
		if o.arrays&(1<<i) != 0 {
			arrays[i] = make([]uint32, n)
		}
	}
	res, err := r.b.Query(r.ifindex(o.dev), o.dir, tcx.QueryOptions{
		QueryFlags: o.queryFlags, AttachFlags: o.attachFlags, Count: o.count,
		ProgIDs: arrays[0], ProgAttachFlags: arrays[1], LinkIDs: arrays[2], LinkAttachFlags: arrays[3],
	})
	out := errClass(err)
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		return out
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s count=%d rev=%d attach_flags=%d", out, res.Count, res.Revision, res.AttachFlags)
	for i, a := range arrays {
		if a == nil {
			continue
		}
		names := make([]string, len(a))
		for j, v := range a {
			switch i {
			case 0:
				names[j] = r.progName(v)
			case 2:
				names[j] = r.linkName(v)
			default:
				names[j] = fmt.Sprint(v)
			}
		}
		fmt.Fprintf(&b, " a%d=%v", i, names)
	}
	return b.String()
}

// ping reports which probes ran, leaving out those on a veth hook.
func (r *replica) ping() string {
	if err := r.env.ResetSeen(); err != nil {
		return "reset " + errClass(err)
	}
	res := "ping " + errClass(r.env.Ping())
	var seen []string
	for slot := range progSlots {
		if r.onVeth[slot] {
			continue
		}
		ok, err := r.env.Seen(slot)
		if err != nil {
			return res + " seen " + errClass(err)
		}
		if ok {
			seen = append(seen, fmt.Sprintf("p%d", slot))
		}
	}
	return fmt.Sprintf("%s seen=%v", res, seen)
}

// vethOp deletes the veth pair (its hooks and links go with it) or adds it
// back if it is gone.
func (r *replica) vethOp(k opKind) string {
	switch {
	case k == opVethDelete && r.hasVeth:
		r.hasVeth = false
		r.forgetClassic(1)
		return "delete " + errClass(r.env.DeleteDevice(r.veth))
	case k == opVethAdd && !r.hasVeth:
		return "add " + errClass(r.addVeth())
	}
	return "nothing to do"
}

// classicOp adds or removes the classic tc qdisc of a device or its
// cls_bpf filter (priority 1, handle 1) on a hook. The kernel's answers
// come from netlink and the tc core, so they check the userspace runtime's
// model of classic tc as much as tcx.
func (r *replica) classicOp(o op) string {
	ifindex := r.ifindex(o.dev)
	switch o.kind {
	case opQdiscAdd:
		err := r.env.AddQdisc(ifindex, o.qdisc)
		if err == nil {
			q := o.qdisc
			r.qdiscs[o.dev] = &q
		}
		return errClass(err)
	case opQdiscDelete:
		kind := o.qdisc
		if q := r.qdiscs[o.dev]; q != nil {
			kind = *q // tc deletes by kind; an absent qdisc gets the op's
		}
		err := r.env.DeleteQdisc(ifindex, kind)
		if err == nil {
			r.forgetClassic(o.dev)
		}
		return errClass(err)
	case opFilterAdd:
		err := r.env.AddClassicFilter(ifindex, o.dir, r.progs[o.prog].obj)
		if err == nil {
			r.filters[[2]int{o.dev, int(o.dir)}] = o.prog
		}
		return errClass(err)
	}
	err := r.env.DeleteClassicFilter(ifindex, o.dir)
	if err == nil {
		delete(r.filters, [2]int{o.dev, int(o.dir)})
	}
	return errClass(err)
}

// classicState describes the qdiscs and filters the replica added.
func (r *replica) classicState() string {
	var parts []string
	for dev, q := range r.qdiscs {
		if q != nil {
			parts = append(parts, fmt.Sprintf("dev%d=%v", dev, *q))
		}
	}
	for dev := range devSlots {
		for _, dir := range []tcx.Direction{tcx.Ingress, tcx.Egress} {
			if slot, ok := r.filters[[2]int{dev, int(dir)}]; ok {
				parts = append(parts, fmt.Sprintf("filter dev%d/%s=p%d", dev, dir, slot))
			}
		}
	}
	if parts == nil {
		return "none"
	}
	return strings.Join(parts, " ")
}

// forgetClassic drops what the replica knows of a device's classic tc
// once its qdisc (and with it every filter) is gone.
func (r *replica) forgetClassic(dev int) {
	r.qdiscs[dev] = nil
	for _, dir := range []tcx.Direction{tcx.Ingress, tcx.Egress} {
		delete(r.filters, [2]int{dev, int(dir)})
	}
}

// snapshot describes the full observable state after an operation: every
// hook's chain and revision, and every open link handle's info.
func (r *replica) snapshot() string {
	var b strings.Builder
	r.onVeth = [progSlots]bool{}
	for key, slot := range r.filters {
		if key[0] == 1 {
			r.onVeth[slot] = true
		}
	}
	for dev := range devSlots {
		for _, dir := range []tcx.Direction{tcx.Ingress, tcx.Egress} {
			fmt.Fprintf(&b, "dev%d/%s: ", dev, dir)
			c, err := tcx.QueryChain(r.b, r.ifindex(dev), dir)
			if err != nil {
				fmt.Fprintf(&b, "%s\n", errClass(err))
				continue
			}
			r.revs[dev*2+int(dir)] = c.Revision
			entries := make([]string, len(c.Entries))
			for i, e := range c.Entries {
				entries[i] = r.progName(e.ProgramID)
				if slot, ok := r.progSlot[e.ProgramID]; ok && dev == 1 {
					r.onVeth[slot] = true
				}
				if e.LinkID != 0 {
					entries[i] += "/" + r.linkName(e.LinkID)
				}
			}
			fmt.Fprintf(&b, "rev=%d %v\n", c.Revision, entries)
		}
	}
	for slot, h := range r.links {
		if !h.valid || h.closed {
			continue
		}
		info, err := h.obj.Info()
		if err != nil {
			fmt.Fprintf(&b, "l%d: info %s\n", slot, errClass(err))
			continue
		}
		fmt.Fprintf(&b, "l%d: %s prog=%s dev=%s type=%d\n", slot, r.linkName(info.ID),
			r.progName(info.ProgramID), r.devName(info.Ifindex), info.AttachType)
	}
	r.aliveState(&b)
	return b.String()
}

// aliveState lists the programs that still exist, closed handles or not:
// what holds a program (handles, attachments, links, pins, classic
// filters) decides when its ID goes, and a later request by ID sees it.
// It is the snapshot's last line.
func (r *replica) aliveState(b *strings.Builder) {
	var alive []string
	for id := range r.maybeAlive {
		ok, err := r.env.ProgramAlive(id)
		switch {
		case err != nil:
			alive = append(alive, r.progName(id)+"="+errClass(err))
		case ok:
			alive = append(alive, r.progName(id))
		default:
			delete(r.maybeAlive, id)
		}
	}
	slices.Sort(alive)
	fmt.Fprintf(b, "%s%v\n", aliveHeader, alive)
}

// aliveHeader starts the last line of a snapshot.
const aliveHeader = "programs alive: "

// close releases every handle the replica holds, then the Env.
func (r *replica) close() error {
	var errs []error
	for _, h := range r.links {
		if h.valid && !h.closed {
			errs = append(errs, h.obj.Close())
		}
	}
	for _, h := range r.progs {
		if h.valid && !h.closed {
			errs = append(errs, h.obj.Close())
		}
	}
	errs = append(errs, r.env.Close())
	return errors.Join(errs...)
}
