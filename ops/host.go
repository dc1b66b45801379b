package ops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Host is a place where tc BPF programs run: the kernel of this machine
// (OpenKernel) or, later, a userspace runtime behind a daemon. Every method
// either makes its whole change or none of it.
type Host interface {
	// Show describes one device (dev != "") or all of them.
	Show(ctx context.Context, dev string) (*Snapshot, error)
	// Attach loads an object's program and attaches it to a hook.
	Attach(ctx context.Context, req AttachRequest) (*AttachResult, error)
	// Detach removes the attachment REF names from a hook.
	Detach(ctx context.Context, req DetachRequest) (*DetachResult, error)
	// UpdateLink swaps the program of a pinned link in place.
	UpdateLink(ctx context.Context, req UpdateRequest) (*UpdateResult, error)
	// DetachLink detaches a pinned link and removes the pin.
	DetachLink(ctx context.Context, pin string) (*DetachResult, error)
	// Doctor looks for broken or risky states.
	Doctor(ctx context.Context) (*Report, error)
	Close() error
}

// Ref names an attachment or a position of a chain: id:N (program ID),
// link:N (link ID), pin:PATH (a pinned link or program), prio:N (a classic
// filter's priority, legacy only), head or tail.
type Ref struct {
	Kind string // RefID, RefLink, RefPin, RefPrio, RefHead, RefTail
	ID   uint32
	Path string
}

// Ref kinds.
const (
	RefID   = "id"
	RefLink = "link"
	RefPin  = "pin"
	RefPrio = "prio"
	RefHead = "head"
	RefTail = "tail"
)

func (r Ref) String() string {
	switch r.Kind {
	case RefHead, RefTail:
		return r.Kind
	case RefPin:
		return "pin:" + r.Path
	}
	return fmt.Sprintf("%s:%d", r.Kind, r.ID)
}

// ParseRef parses a REF argument.
func ParseRef(s string) (Ref, error) {
	if s == RefHead || s == RefTail {
		return Ref{Kind: s}, nil
	}
	kind, v, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, fmt.Errorf("REF %q: want id:N, link:N, pin:PATH, prio:N, head or tail", s)
	}
	switch kind {
	case RefPin:
		if v == "" {
			return Ref{}, fmt.Errorf("REF %q: pin: needs a path", s)
		}
		return Ref{Kind: RefPin, Path: v}, nil
	case RefID, RefLink, RefPrio:
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 || (kind == RefPrio && n > 0xffff) {
			return Ref{}, fmt.Errorf("REF %q: %s: needs a positive number", s, kind)
		}
		return Ref{Kind: kind, ID: uint32(n)}, nil
	}
	return Ref{}, fmt.Errorf("REF %q: unknown kind %q; want id:N, link:N, pin:PATH, prio:N, head or tail", s, kind)
}

// Placement says where Attach puts a program: Before or After the
// attachment Ref names, or in place of it (Replace); the zero value is the
// tail of the chain.
type Placement struct {
	Mode string // "", PlaceBefore, PlaceAfter, PlaceReplace
	Ref  Ref
}

// Placement modes.
const (
	PlaceBefore  = "before"
	PlaceAfter   = "after"
	PlaceReplace = "replace"
)

// AttachRequest is `tcx attach`.
type AttachRequest struct {
	Device    string
	Direction string // "ingress" or "egress"
	Object    string // path of an ELF object
	Program   string // program name in the object; "" = its only tc program
	Place     Placement
	// ExpectedRevision, if not 0, must be the hook's revision (else ESTALE).
	ExpectedRevision uint64
	// Pin is where the link is pinned; "" = the default under LinkDir.
	Pin string
	// Set are NAME=VALUE assignments to the object's global variables
	// before loading (Config.SetVariables applies them).
	Set   []string
	Label string
	// Plain attaches without a link; Legacy uses clsact + cls_bpf.
	Plain, Legacy bool
	// Command is the command line recorded in the ownership record.
	Command []string
}

// AttachResult says what Attach did.
type AttachResult struct {
	Mode      string // KindLink, KindPlain, KindClassic
	Device    string
	Direction string
	Program   Program
	LinkID    uint32
	Pin       string
	MapPins   []string // map pins this attach created
	MapReused []string // map pins it found and reused
	Position  int      // in the tcx chain, or the classic filter order
	Priority  uint16   // classic filter priority
	Revision  uint64
	Notes     []string
}

// DetachRequest is `tcx detach`.
type DetachRequest struct {
	Device    string
	Direction string
	Ref       Ref
	Legacy    bool
}

// DetachResult says what Detach or DetachLink did.
type DetachResult struct {
	Mode      string
	Device    string
	Direction string
	ProgID    uint32
	LinkID    uint32
	Priority  uint16
	// Defunct says the link had left its hook before (device gone).
	Defunct bool
	// RemovedPins are pins removed with it; KeptPins pins that still hold
	// the now defunct link (not made by tcx).
	RemovedPins, KeptPins []string
	Notes                 []string
}

// UpdateRequest is `tcx link update`.
type UpdateRequest struct {
	Pin     string
	Object  string
	Program string
	Set     []string
	Command []string
}

// UpdateResult says what UpdateLink did.
type UpdateResult struct {
	LinkID    uint32
	Device    string
	Direction string
	Old, New  Program
}
