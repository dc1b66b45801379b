package tcx

import "fmt"

// Direction selects one of the two hooks of a device.
type Direction uint8

const (
	Ingress Direction = iota // BPF_TCX_INGRESS
	Egress                   // BPF_TCX_EGRESS
)

// AttachType returns the kernel's enum bpf_attach_type value for d.
func (d Direction) AttachType() uint32 {
	if d == Egress {
		return AttachTCXEgress
	}
	return AttachTCXIngress
}

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// UAPI constants (include/uapi/linux/bpf.h).
const (
	AttachTCXIngress = 46 // BPF_TCX_INGRESS
	AttachTCXEgress  = 47 // BPF_TCX_EGRESS
	LinkTypeTCX      = 11 // BPF_LINK_TYPE_TCX

	// MaxPrograms is the most programs one hook holds (bpf_mprog_max()).
	MaxPrograms = 63
)

// Flags are the raw BPF_F_* bits of attach, detach and link create requests.
// Most callers use an Anchor instead; raw flags exist so that every request
// the kernel accepts (or rejects) can be expressed.
type Flags uint32

const (
	FlagReplace Flags = 1 << 2  // BPF_F_REPLACE
	FlagBefore  Flags = 1 << 3  // BPF_F_BEFORE
	FlagAfter   Flags = 1 << 4  // BPF_F_AFTER
	FlagID      Flags = 1 << 5  // BPF_F_ID
	FlagLink    Flags = 1 << 13 // BPF_F_LINK

	// FlagsMask are the only bits BPF_PROG_ATTACH/DETACH accept for tcx.
	FlagsMask = FlagReplace | FlagBefore | FlagAfter | FlagID | FlagLink
)

// Verdicts a tc program returns (enum tcx_action_base).
const (
	VerdictNext     int32 = -1 // TCX_NEXT: continue with the next program
	VerdictPass     int32 = 0  // TCX_PASS
	VerdictDrop     int32 = 2  // TCX_DROP
	VerdictRedirect int32 = 7  // TCX_REDIRECT
)

// Object is a handle to a program or a link, the analogue of a file
// descriptor: it names the object, and closing it drops one reference.
// Using a closed handle fails with EBADF.
type Object interface {
	// ID is the object's system-wide ID (prog ID or link ID).
	ID() uint32
	Close() error
}

// Program is a handle to a loaded SCHED_CLS program.
type Program interface {
	Object
	// Name is the program's name as loaded (may be truncated by the kernel).
	Name() string
}

// Link is a handle to a tcx link: the attachment of one program that lives
// as long as some handle or pin holds it.
type Link interface {
	Object
	// Update swaps the link's program in place (BPF_LINK_UPDATE).
	Update(prog Program, opts UpdateOptions) error
	// Detach detaches the link from its hook; the link stays valid but
	// defunct (BPF_LINK_DETACH).
	Detach() error
	// Pin makes the link outlive its handles until Unpin.
	Pin(path string) error
	Unpin() error
	Info() (LinkInfo, error)
}

// LinkInfo is bpf_link_info for a tcx link.
type LinkInfo struct {
	ID        uint32
	ProgramID uint32
	// Ifindex is 0 once the link is defunct (detached or device gone).
	Ifindex    uint32
	AttachType uint32 // AttachTCXIngress or AttachTCXEgress
}

// AttachOptions is BPF_PROG_ATTACH for tcx, field for field.
type AttachOptions struct {
	Flags Flags
	// Relative is the relative_fd: a program or link handle, nil for 0.
	// Used when Flags has no FlagID.
	Relative Object
	// RelativeID is the relative_id, used when Flags has FlagID.
	RelativeID uint32
	// Replace is replace_bpf_fd; consulted only with FlagReplace. nil is fd 0.
	Replace Program
	// ExpectedRevision, if not 0, must equal the hook's revision (else ESTALE).
	ExpectedRevision uint64
}

// DetachOptions is BPF_PROG_DETACH for tcx (the program is a separate
// argument; nil means a positional detach).
type DetachOptions struct {
	Flags            Flags
	Relative         Object
	RelativeID       uint32
	ExpectedRevision uint64
}

// LinkOptions is BPF_LINK_CREATE for tcx.
type LinkOptions struct {
	Flags            Flags
	Relative         Object
	RelativeID       uint32
	ExpectedRevision uint64
}

// UpdateOptions is BPF_LINK_UPDATE. With FlagReplace the update only
// succeeds while the link still runs Old (else EPERM).
type UpdateOptions struct {
	Flags Flags
	Old   Program
}

// QueryOptions is BPF_PROG_QUERY, field for field. Count is the capacity the
// caller offers; every non-nil array must be at least Count long.
type QueryOptions struct {
	QueryFlags  uint32
	AttachFlags uint32
	Count       uint32

	ProgIDs         []uint32
	ProgAttachFlags []uint32
	LinkIDs         []uint32
	LinkAttachFlags []uint32
}

// QueryResult is what BPF_PROG_QUERY writes back besides the arrays. Count
// is always the total number of attached programs, also on ENOSPC.
type QueryResult struct {
	AttachFlags uint32
	Count       uint32
	Revision    uint64
}

// Backend is one implementation of tcx: the userspace runtime or the kernel.
// Devices are named by ifindex in the backend's own namespace.
type Backend interface {
	// Attach is BPF_PROG_ATTACH: a plain (non-link) attachment.
	Attach(ifindex int, dir Direction, prog Program, opts AttachOptions) error
	// Detach is BPF_PROG_DETACH; prog nil is a positional detach.
	Detach(ifindex int, dir Direction, prog Program, opts DetachOptions) error
	// Query is BPF_PROG_QUERY.
	Query(ifindex int, dir Direction, opts QueryOptions) (QueryResult, error)
	// CreateLink is BPF_LINK_CREATE.
	CreateLink(ifindex int, dir Direction, prog Program, opts LinkOptions) (Link, error)
	// OpenPinnedLink opens a new handle to a pinned link (BPF_OBJ_GET).
	OpenPinnedLink(path string) (Link, error)
}
