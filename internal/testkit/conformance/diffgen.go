package conformance

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/tcxgo/tcx"
)

// The differential test's operation generator. Operations are drawn from the
// seeded generator alone (never from a backend's results), in logical terms:
// program slot 3, link slot 1, "the ID of a program that was closed", "the
// current revision". Each backend resolves them to its own handles, IDs and
// ifindexes, so the same seed replays the same sequence.

const (
	progSlots = 10 // programs p0..p9
	linkSlots = 6  // link handles l0..l5
	pinSlots  = 3  // pin names pin0..pin2
	devSlots  = 2  // lo and the veth end "dv0a"
)

type opKind uint8

const (
	opAttach opKind = iota
	opDetach
	opQuery
	opLinkCreate
	opLinkUpdate
	opLinkDetach
	opLinkClose
	opLinkPin
	opLinkUnpin
	opOpenPinned
	opProgClose
	opProgReload
	opPing
	opVethAdd
	opVethDelete
	opQdiscAdd
	opQdiscDelete
	opFilterAdd
	opFilterDelete
	numOpKinds
)

func (k opKind) String() string {
	names := [numOpKinds]string{
		"attach", "detach", "query", "link_create", "link_update", "link_detach",
		"link_close", "link_pin", "link_unpin", "open_pinned", "prog_close",
		"prog_reload", "ping", "veth_add", "veth_delete",
		"qdisc_add", "qdisc_delete", "filter_add", "filter_delete",
	}
	if k < numOpKinds {
		return names[k]
	}
	return fmt.Sprintf("opKind(%d)", uint8(k))
}

// unlinksPin reports whether the operation may remove a pin: unpin, and
// pin, which moves a handle's earlier pin.
func (k opKind) unlinksPin() bool { return k == opLinkUnpin || k == opLinkPin }

// weight makes request-shaped operations common and teardown rare.
func (k opKind) weight() int {
	weights := [numOpKinds]int{
		opAttach: 24, opDetach: 20, opQuery: 8, opLinkCreate: 16, opLinkUpdate: 6,
		opLinkDetach: 4, opLinkClose: 3, opLinkPin: 2, opLinkUnpin: 2, opOpenPinned: 2,
		opProgClose: 1, opProgReload: 5, opPing: 3, opVethAdd: 4, opVethDelete: 1,
		opQdiscAdd: 2, opQdiscDelete: 1, opFilterAdd: 2, opFilterDelete: 1,
	}
	return weights[k]
}

// refKind names a relative object (or a replace / old program) logically.
type refKind uint8

const (
	refNone        refKind = iota
	refProgHandle          // program slot's handle
	refLinkHandle          // link slot's handle
	refProgID              // ID of a program slot's current program
	refLinkID              // ID of a link slot's link
	refStaleProgID         // ID of a program slot's previous (closed) program
	refStaleLinkID         // ID of a link whose handle was closed
	refUnknownID           // an ID nothing has
)

type ref struct {
	kind refKind
	slot int
}

func (r ref) String() string {
	switch r.kind {
	case refNone:
		return "none"
	case refProgHandle:
		return fmt.Sprintf("p%d", r.slot)
	case refLinkHandle:
		return fmt.Sprintf("l%d", r.slot)
	case refProgID:
		return fmt.Sprintf("id(p%d)", r.slot)
	case refLinkID:
		return fmt.Sprintf("id(l%d)", r.slot)
	case refStaleProgID:
		return fmt.Sprintf("staleid(p%d)", r.slot)
	case refStaleLinkID:
		return "staleid(link)"
	case refUnknownID:
		return "unknownid"
	}
	return "?"
}

// revKind is the expected revision, resolved against the backend's own
// revision of the hook as last observed.
type revKind uint8

const (
	revZero revKind = iota
	revCurrent
	revBehind
	revAhead
	revOne
)

func (k revKind) String() string {
	return [...]string{"0", "current", "current-1", "current+1", "1"}[k]
}

// op is one generated operation.
type op struct {
	kind  opKind
	dev   int // 0 = lo, 1 = veth end
	dir   tcx.Direction
	prog  int // program slot, -1 = none (positional detach, nil replace)
	link  int // link slot
	pin   int // pin slot
	qdisc Qdisc
	flags tcx.Flags
	rel   ref
	repl  ref // replace (attach) or old program (link update)
	rev   revKind
	// query
	count       uint32
	arrays      uint8 // bit i: array i present (prog ids, prog flags, link ids, link flags)
	arrayExtra  int   // array length minus count (-1: too short, EFAULT)
	queryFlags  uint32
	attachFlags uint32
}

func (o op) String() string {
	var b strings.Builder
	b.WriteString(o.kind.String())
	devDir := fmt.Sprintf(" dev%d/%s", o.dev, o.dir)
	switch o.kind {
	case opAttach, opDetach, opLinkCreate:
		b.WriteString(devDir)
		if o.prog >= 0 {
			fmt.Fprintf(&b, " p%d", o.prog)
		} else {
			b.WriteString(" prog=none")
		}
		if o.kind == opLinkCreate {
			fmt.Fprintf(&b, " ->l%d", o.link)
		}
		fmt.Fprintf(&b, " flags=%s rel=%s", flagString(o.flags), o.rel)
		if o.kind == opAttach {
			fmt.Fprintf(&b, " replace=%s", o.repl)
		}
		fmt.Fprintf(&b, " rev=%s", o.rev)
	case opQuery:
		fmt.Fprintf(&b, "%s count=%d arrays=%04b(%+d) query_flags=%d attach_flags=%d",
			devDir, o.count, o.arrays, o.arrayExtra, o.queryFlags, o.attachFlags)
	case opLinkUpdate:
		fmt.Fprintf(&b, " l%d p%d flags=%s old=%s", o.link, o.prog, flagString(o.flags), o.repl)
	case opLinkDetach, opLinkClose, opLinkUnpin:
		fmt.Fprintf(&b, " l%d", o.link)
	case opLinkPin:
		fmt.Fprintf(&b, " l%d pin%d", o.link, o.pin)
	case opOpenPinned:
		fmt.Fprintf(&b, " pin%d ->l%d", o.pin, o.link)
	case opProgClose, opProgReload:
		fmt.Fprintf(&b, " p%d", o.prog)
	case opQdiscAdd:
		fmt.Fprintf(&b, " dev%d %v", o.dev, o.qdisc)
	case opQdiscDelete:
		fmt.Fprintf(&b, " dev%d (%v if none)", o.dev, o.qdisc)
	case opFilterAdd:
		fmt.Fprintf(&b, "%s p%d", devDir, o.prog)
	case opFilterDelete:
		b.WriteString(devDir)
	}
	return b.String()
}

func flagString(f tcx.Flags) string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, n := range []struct {
		f    tcx.Flags
		name string
	}{{tcx.FlagReplace, "REPLACE"}, {tcx.FlagBefore, "BEFORE"}, {tcx.FlagAfter, "AFTER"}, {tcx.FlagID, "ID"}, {tcx.FlagLink, "LINK"}} {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(f)))
	}
	return strings.Join(parts, "|")
}

// junkBit is a flag bit outside the tcx mask that the generator sometimes
// adds (bit 6 is BPF_F_PREORDER, meaningful for cgroups only).
func junkBit(r *rand.Rand) tcx.Flags {
	bits := [...]tcx.Flags{1 << 0, 1 << 1, 1 << 6, 1 << 7, 1 << 12, 1 << 14, 1 << 31}
	return bits[r.IntN(len(bits))]
}

// kindSet is a set of operation kinds.
type kindSet uint32

func (s kindSet) has(k opKind) bool { return s&(1<<k) != 0 }

// parseKinds reads a comma-separated list of operation names.
func parseKinds(list string) (kindSet, error) {
	var s kindSet
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		found := false
		for k := range numOpKinds {
			if k.String() == name {
				s |= 1 << k
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown operation %q", name)
		}
	}
	return s, nil
}

// generate draws the next operation, never one of the skipped kinds.
func generate(r *rand.Rand, skip kindSet) op {
	kind := pickKind(r)
	for skip.has(kind) {
		kind = pickKind(r)
	}
	o := op{kind: kind, dev: r.IntN(devSlots), prog: r.IntN(progSlots), link: r.IntN(linkSlots), pin: r.IntN(pinSlots)}
	if r.IntN(2) == 1 {
		o.dir = tcx.Egress
	}
	if r.IntN(3) == 0 {
		o.qdisc = Ingress
	}
	switch o.kind {
	case opAttach, opDetach, opLinkCreate:
		o.rel = pickRef(r)
		o.flags = pickFlags(r, o.rel)
		if o.kind == opDetach && o.rel.kind == refNone && r.IntN(2) == 0 {
			o.flags = 0 // a plain detach, the most common real request
		}
		o.rev = pickRev(r)
		if o.kind == opDetach && r.IntN(4) == 0 {
			o.prog = -1
		}
		if o.kind == opAttach && (o.flags&tcx.FlagReplace != 0 || r.IntN(10) == 0) {
			o.repl = ref{kind: refProgHandle, slot: r.IntN(progSlots)}
			if r.IntN(8) == 0 {
				o.repl.kind = refNone // replace_bpf_fd 0
			}
		}
	case opQuery:
		o.count = uint32(r.IntN(6))
		if r.IntN(8) == 0 {
			o.count = 64
		}
		o.arrays = uint8(r.IntN(16))
		o.arrayExtra = r.IntN(3)
		if o.count > 0 && r.IntN(20) == 0 {
			o.arrayExtra = -1
		}
		if r.IntN(20) == 0 {
			o.queryFlags = 1
		}
		if r.IntN(20) == 0 {
			o.attachFlags = 1
		}
	case opLinkUpdate:
		switch n := r.IntN(10); {
		case n < 6:
		case n < 9:
			o.flags = tcx.FlagReplace
			o.repl = ref{kind: refProgHandle, slot: r.IntN(progSlots)}
		default:
			o.flags = junkBit(r)
		}
	}
	return o
}

func pickKind(r *rand.Rand) opKind {
	total := 0
	for k := range numOpKinds {
		total += k.weight()
	}
	n := r.IntN(total)
	for k := range numOpKinds {
		if n < k.weight() {
			return k
		}
		n -= k.weight()
	}
	panic("unreachable")
}

func pickRef(r *rand.Rand) ref {
	slot := r.IntN(progSlots)
	switch n := r.IntN(100); {
	case n < 30:
		return ref{}
	case n < 55:
		return ref{kind: refProgHandle, slot: slot}
	case n < 65:
		return ref{kind: refLinkHandle, slot: slot % linkSlots}
	case n < 80:
		return ref{kind: refProgID, slot: slot}
	case n < 90:
		return ref{kind: refLinkID, slot: slot % linkSlots}
	case n < 94:
		return ref{kind: refStaleProgID, slot: slot}
	case n < 97:
		return ref{kind: refStaleLinkID}
	}
	return ref{kind: refUnknownID}
}

// pickFlags mostly chooses flags that fit the relative (so that many
// requests succeed and collide), and sometimes any of the five bits or junk.
func pickFlags(r *rand.Rand, rel ref) tcx.Flags {
	var f tcx.Flags
	if r.IntN(4) == 0 {
		for _, b := range []tcx.Flags{tcx.FlagReplace, tcx.FlagBefore, tcx.FlagAfter, tcx.FlagID, tcx.FlagLink} {
			if r.IntN(4) == 0 {
				f |= b
			}
		}
	} else {
		switch rel.kind {
		case refLinkHandle:
			f = tcx.FlagLink
		case refProgID, refStaleProgID, refUnknownID:
			f = tcx.FlagID
		case refLinkID, refStaleLinkID:
			f = tcx.FlagLink | tcx.FlagID
		}
		switch n := r.IntN(10); {
		case n < 4:
			f |= tcx.FlagBefore
		case n < 8:
			f |= tcx.FlagAfter
		case n < 9:
			f |= tcx.FlagReplace
		}
	}
	if r.IntN(25) == 0 {
		f |= junkBit(r)
	}
	return f
}

func pickRev(r *rand.Rand) revKind {
	switch n := r.IntN(20); {
	case n < 13:
		return revZero
	case n < 17:
		return revCurrent
	case n < 18:
		return revBehind
	case n < 19:
		return revAhead
	}
	return revOne
}
