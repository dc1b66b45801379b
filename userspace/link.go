package userspace

import (
	"path/filepath"

	"github.com/tcxgo/tcx"
)

// link is a tcx link (struct tcx_link).
type link struct {
	rt   *Runtime
	id   uint32
	prog *program
	// dev is nil once the link is defunct (detached or device gone).
	dev *device
	dir tcx.Direction
	// settled turns true when the create succeeded; before that its
	// reserved ID names "a link still being created" (EAGAIN).
	settled bool
	// refs counts handles and pins; guarded by Runtime.mu.
	refs int
}

// linkHandle is a tcx.Link: one reference to a link, like a link fd. It
// remembers the path it pinned (or was opened from), as cilium/ebpf does.
type linkHandle struct {
	rt     *Runtime
	l      *link
	closed bool   // guarded by rt.mu
	pinned string // guarded by rt.mu
}

var _ tcx.Link = (*linkHandle)(nil)

// release is tcx_link_release: detach the link from its hook (revision +1)
// and make it defunct. A defunct link is left alone. It cannot fail: the
// bundle detaches without allocating.
func (rt *Runtime) release(l *link) {
	if l.dev == nil {
		return
	}
	if e := l.dev.hooks[l.dir].entry.Load(); e != nil {
		if _, err := e.bundle.Detach(tuple{Prog: l.prog, Link: l}, 0, relative{}, 0); err == nil {
			l.dev.settle(l.dir, e)
		}
	}
	l.dev = nil
}

// putLink drops one reference; the last one releases the link, frees its
// ID and drops its program.
func (rt *Runtime) putLink(l *link) {
	l.refs--
	if l.refs > 0 {
		return
	}
	rt.release(l)
	rt.links.free(l.id)
	rt.putProg(l.prog)
}

func (h *linkHandle) ID() uint32 { return h.l.id }

// Close drops the handle's reference (and its claim on a pin path, not the
// pin itself); a second Close fails with EBADF.
func (h *linkHandle) Close() error {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.closed {
		return opError("close link", errBadFD)
	}
	h.closed = true
	h.rt.putLink(h.l)
	return nil
}

// Update is BPF_LINK_UPDATE: flags (EINVAL), link fd (EBADF), new program
// fd, old program fd with FlagReplace (or EINVAL for an old program without
// it), then tcx_link_update: ENOLINK, EPERM, same program = no-op, and the
// mprog replace (EEXIST if the new program is already on the hook).
func (h *linkHandle) Update(prog tcx.Program, opts tcx.UpdateOptions) error {
	const op = "update tcx link"
	if opts.Flags&^tcx.FlagReplace != 0 {
		return opError(op, errInval)
	}
	rt := h.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if h.closed {
		return opError(op, errBadFD)
	}
	np, err := rt.progOf(prog)
	if err != nil {
		return opError(op, err)
	}
	var old *program
	if opts.Flags&tcx.FlagReplace != 0 {
		if old, err = rt.progOf(opts.Old); err != nil {
			return opError(op, err)
		}
	} else if opts.Old != nil {
		return opError(op, errInval)
	}
	l := h.l
	if l.dev == nil {
		return opError(op, errNoLink)
	}
	if old != nil && l.prog != old {
		return opError(op, errPerm)
	}
	if np == l.prog {
		return nil
	}
	e := l.dev.hooks[l.dir].entry.Load()
	if e == nil {
		return opError(op, errNoEnt)
	}
	// tcx_link_update names the current program by its ID, which always
	// resolves: the link holds it.
	rel := relative{Tuple: tuple{Prog: l.prog}}
	if _, err := e.bundle.Attach(tuple{Prog: np, Link: l}, l.prog, tcx.FlagReplace|tcx.FlagID, rel, 0); err != nil {
		return opError(op, err)
	}
	rt.getProg(np)
	prev := l.prog
	l.prog = np
	rt.putProg(prev)
	return nil
}

// Detach is BPF_LINK_DETACH: the link leaves its hook and turns defunct but
// stays valid. It succeeds also on a defunct link.
func (h *linkHandle) Detach() error {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.closed {
		return opError("detach tcx link", errBadFD)
	}
	h.rt.release(h.l)
	return nil
}

// Pin pins the link at path in the runtime's pin namespace (BPF_OBJ_PIN);
// the pin holds a reference. A closed handle is EINVAL, as the kernel's
// bpf_fd_probe_obj says of any fd that is no bpf object; path must be
// absolute (EINVAL) and free (EEXIST, except for the handle's own pin).
// Like cilium/ebpf, pinning a handle that already pinned moves its pin: the
// new pin is made, then whatever sits at the old path is removed.
func (h *linkHandle) Pin(path string) error {
	const op = "pin tcx link"
	rt := h.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if h.closed || !filepath.IsAbs(path) {
		return opError(op, errInval)
	}
	path = filepath.Clean(path)
	if _, taken := rt.pins[path]; taken {
		if path == h.pinned {
			return nil
		}
		return opError(op, errExist)
	}
	rt.pins[path] = h.l
	h.l.refs++
	old := h.pinned
	h.pinned = path
	if old != "" {
		rt.unpin(old)
	}
	return nil
}

// unpin removes whatever link is pinned at path (unlink), reporting whether
// there was one.
func (rt *Runtime) unpin(path string) bool {
	l, ok := rt.pins[path]
	if ok {
		delete(rt.pins, path)
		rt.putLink(l)
	}
	return ok
}

// Unpin removes the pin at the path this handle pinned or was opened from,
// whatever is pinned there now; ENOENT if nothing is. Without a path it
// does nothing.
func (h *linkHandle) Unpin() error {
	const op = "unpin tcx link"
	rt := h.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if h.closed {
		return opError(op, errBadFD)
	}
	if h.pinned == "" {
		return nil
	}
	if !rt.unpin(h.pinned) {
		return opError(op, errNoEnt)
	}
	h.pinned = ""
	return nil
}

// Info is BPF_OBJ_GET_INFO_BY_FD for the link: ifindex 0 once defunct.
func (h *linkHandle) Info() (tcx.LinkInfo, error) {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.closed {
		return tcx.LinkInfo{}, opError("link info", errBadFDState)
	}
	l := h.l
	info := tcx.LinkInfo{ID: l.id, ProgramID: l.prog.id, AttachType: l.dir.AttachType()}
	if l.dev != nil {
		info.Ifindex = uint32(l.dev.ifindex)
	}
	return info, nil
}

// OpenPinnedLink opens a new handle to the link pinned at path (ENOENT if
// nothing is pinned there).
func (rt *Runtime) OpenPinnedLink(path string) (tcx.Link, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	path = filepath.Clean(path)
	l, ok := rt.pins[path]
	if !ok {
		return nil, opError("open pinned link", errNoEnt)
	}
	l.refs++
	return &linkHandle{rt: rt, l: l, pinned: path}, nil
}
