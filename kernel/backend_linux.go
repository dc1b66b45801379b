package kernel

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
)

// Backend is tcx.Backend over the running kernel. Every request becomes one
// bpf(2) call whose attr carries the options verbatim, issued inside the
// backend's network namespace; the kernel's errno comes back wrapped.
type Backend struct {
	ns       *NetNS
	pinDir   string
	ownMount bool // pinDir is a private bpffs this backend mounted
}

var _ tcx.Backend = (*Backend)(nil)

// New returns a backend whose ifindexes name devices of ns. The caller keeps
// ownership of ns and closes it after the backend.
func New(ns *NetNS, opts Options) (*Backend, error) {
	if ns == nil {
		return nil, fmt.Errorf("new kernel backend: %w (no netns)", unix.EINVAL)
	}
	b := &Backend{ns: ns, pinDir: opts.PinDir}
	if b.pinDir != "" {
		return b, nil
	}
	dir, err := os.MkdirTemp("", "tcx-bpffs-")
	if err != nil {
		return nil, fmt.Errorf("new kernel backend: %w", err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("new kernel backend: mount bpffs: %w", err)
	}
	b.pinDir, b.ownMount = dir, true
	return b, nil
}

// NetNS is the namespace the backend works in.
func (b *Backend) NetNS() *NetNS { return b.ns }

// PinDir is the bpffs directory relative pin paths are resolved in.
func (b *Backend) PinDir() string { return b.pinDir }

// Close unmounts the private bpffs, if the backend mounted one; links pinned
// only there are released.
func (b *Backend) Close() error {
	if !b.ownMount {
		return nil
	}
	b.ownMount = false
	if err := unix.Unmount(b.pinDir, 0); err != nil {
		return fmt.Errorf("close kernel backend: unmount bpffs: %w", err)
	}
	if err := os.Remove(b.pinDir); err != nil {
		return fmt.Errorf("close kernel backend: %w", err)
	}
	return nil
}

// pinPath resolves a pin path: relative paths live in the backend's bpffs.
func pinPath(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// inNS issues a bpf(2) call from the namespace's thread, so that
// target_ifindex names a device of that namespace.
func inNS[T any](ns *NetNS, cmd uintptr, attr *T) (int, error) {
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = sysBPF(cmd, attr)
		return err
	})
	return fd, err
}

// objFD is the fd a handle contributes to a bpf_attr: 0 for none, badFD for
// a closed handle or one of another backend (no fd in this process).
func objFD(o tcx.Object) uint32 {
	switch o := o.(type) {
	case nil:
		return 0
	case *Program:
		if o == nil {
			return 0
		}
		return rawFD(o.prog.FD())
	case *Link:
		if o == nil {
			return 0
		}
		return rawFD(o.fd.load())
	}
	return badFD
}

func rawFD(fd int) uint32 {
	if fd < 0 {
		return badFD
	}
	return uint32(fd)
}

// relative is the relative_fd / relative_id union: an ID with BPF_F_ID,
// else the handle's fd.
func relative(flags tcx.Flags, rel tcx.Object, id uint32) uint32 {
	if flags&tcx.FlagID != 0 {
		return id
	}
	return objFD(rel)
}

// progAttach builds the BPF_PROG_ATTACH / BPF_PROG_DETACH attr.
func progAttach(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.AttachOptions) *progAttachAttr {
	return &progAttachAttr{
		targetIfindex:    uint32(ifindex),
		attachBPFFD:      objFD(prog),
		attachType:       dir.AttachType(),
		attachFlags:      uint32(opts.Flags),
		replaceBPFFD:     objFD(opts.Replace),
		relativeFDOrID:   relative(opts.Flags, opts.Relative, opts.RelativeID),
		expectedRevision: opts.ExpectedRevision,
	}
}

// Attach is BPF_PROG_ATTACH.
func (b *Backend) Attach(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.AttachOptions) error {
	if _, err := inNS(b.ns, cmdProgAttach, progAttach(ifindex, dir, prog, opts)); err != nil {
		return fmt.Errorf("attach tcx program: %w", err)
	}
	return nil
}

// Detach is BPF_PROG_DETACH; a nil prog sends attach_bpf_fd 0 (positional).
func (b *Backend) Detach(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.DetachOptions) error {
	attr := progAttach(ifindex, dir, prog, tcx.AttachOptions{
		Flags: opts.Flags, Relative: opts.Relative, RelativeID: opts.RelativeID, ExpectedRevision: opts.ExpectedRevision,
	})
	if _, err := inNS(b.ns, cmdProgDetach, attr); err != nil {
		return fmt.Errorf("detach tcx program: %w", err)
	}
	return nil
}

// Query is BPF_PROG_QUERY. The kernel writes up to Count entries into every
// non-nil array, so an array shorter than Count fails with EINVAL before
// anything is sent (the client-side rule both backends share).
func (b *Backend) Query(ifindex int, dir tcx.Direction, opts tcx.QueryOptions) (tcx.QueryResult, error) {
	for _, a := range [][]uint32{opts.ProgIDs, opts.ProgAttachFlags, opts.LinkIDs, opts.LinkAttachFlags} {
		if a != nil && uint64(len(a)) < uint64(opts.Count) {
			return tcx.QueryResult{}, fmt.Errorf("query tcx programs: %w (array of %d entries for count %d)", unix.EINVAL, len(a), opts.Count)
		}
	}
	attr := progQueryAttr{
		targetIfindex:   uint32(ifindex),
		attachType:      dir.AttachType(),
		queryFlags:      opts.QueryFlags,
		attachFlags:     opts.AttachFlags,
		progIDs:         slicePtr(opts.ProgIDs),
		count:           opts.Count,
		progAttachFlags: slicePtr(opts.ProgAttachFlags),
		linkIDs:         slicePtr(opts.LinkIDs),
		linkAttachFlags: slicePtr(opts.LinkAttachFlags),
	}
	_, err := inNS(b.ns, cmdProgQuery, &attr)
	res := tcx.QueryResult{AttachFlags: attr.attachFlags, Count: attr.count, Revision: attr.revision}
	if err != nil {
		return res, fmt.Errorf("query tcx programs: %w", err)
	}
	return res, nil
}

// CreateLink is BPF_LINK_CREATE.
func (b *Backend) CreateLink(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.LinkOptions) (tcx.Link, error) {
	attr := linkCreateAttr{
		progFD:           objFD(prog),
		targetIfindex:    uint32(ifindex),
		attachType:       dir.AttachType(),
		flags:            uint32(opts.Flags),
		relativeFDOrID:   relative(opts.Flags, opts.Relative, opts.RelativeID),
		expectedRevision: opts.ExpectedRevision,
	}
	fd, err := inNS(b.ns, cmdLinkCreate, &attr)
	if err != nil {
		return nil, fmt.Errorf("create tcx link: %w", err)
	}
	l, err := newLink(fd, b.pinDir, "")
	if err != nil {
		return nil, fmt.Errorf("create tcx link: %w", err)
	}
	return l, nil
}

// OpenPinnedLink is BPF_OBJ_GET on a pinned tcx link; a relative path is
// resolved in the backend's bpffs. Pinned objects that are not tcx links
// fail with EINVAL.
func (b *Backend) OpenPinnedLink(path string) (tcx.Link, error) {
	path = pinPath(b.pinDir, path)
	name, err := bytePtr(path)
	if err != nil {
		return nil, fmt.Errorf("open pinned tcx link: %w", err)
	}
	attr := objAttr{pathname: name}
	fd, err := sysBPF(cmdObjGet, &attr)
	if err != nil {
		return nil, fmt.Errorf("open pinned tcx link: %w", err)
	}
	l, err := newLink(fd, b.pinDir, path)
	if err != nil {
		return nil, fmt.Errorf("open pinned tcx link %s: %w", path, err)
	}
	return l, nil
}
