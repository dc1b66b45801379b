package userspace

import (
	"github.com/tcxgo/tcx"
)

// program is a loaded program: the analogue of struct bpf_prog.
type program struct {
	id   uint32
	name string
	run  Runner
	// refs counts handles, plain attachments, links and classic filters;
	// guarded by Runtime.mu. At 0 the program's ID disappears.
	refs int
}

// progHandle is a tcx.Program: one reference to a program, like a prog fd.
type progHandle struct {
	rt     *Runtime
	p      *program
	closed bool // guarded by rt.mu
}

// objNameLen is BPF_OBJ_NAME_LEN - 1: the kernel keeps 15 bytes of a name.
const objNameLen = 15

// NewProgram loads r as a program named name (cut to the kernel's 15
// bytes) with a fresh program ID, and returns the first handle to it.
func (rt *Runtime) NewProgram(name string, r Runner) (tcx.Program, error) {
	if r == nil {
		return nil, opError("load program", errInval)
	}
	if len(name) > objNameLen {
		name = name[:objNameLen]
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p := &program{name: name, run: r, refs: 1}
	p.id = rt.progs.alloc(p)
	return &progHandle{rt: rt, p: p}, nil
}

// ProgramByID opens a new handle to a live program (BPF_PROG_GET_FD_BY_ID).
func (rt *Runtime) ProgramByID(id uint32) (tcx.Program, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p, ok := rt.progs.lookup(id)
	if !ok {
		return nil, opError("get program by id", errNoEnt)
	}
	p.refs++
	return &progHandle{rt: rt, p: p}, nil
}

func (rt *Runtime) getProg(p *program) { p.refs++ }

// putProg drops one reference; the last one frees the ID.
func (rt *Runtime) putProg(p *program) {
	p.refs--
	if p.refs == 0 {
		rt.progs.free(p.id)
	}
}

func (h *progHandle) ID() uint32   { return h.p.id }
func (h *progHandle) Name() string { return h.p.name }

// Close drops the handle's reference; a second Close fails with EBADF.
func (h *progHandle) Close() error {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.closed {
		return opError("close program", errBadFD)
	}
	h.closed = true
	h.rt.putProg(h.p)
	return nil
}

// open is fdget on a handle: it yields the program or the link the handle
// names. nil is fd 0, which is stdin and so no bpf object (EINVAL); a closed
// handle or one from another runtime or backend is not an open fd of ours
// (EBADF).
func (rt *Runtime) open(o tcx.Object) (*program, *link, error) {
	switch h := o.(type) {
	case nil:
		return nil, nil, errInval
	case *progHandle:
		if h.rt == rt && !h.closed {
			return h.p, nil, nil
		}
	case *linkHandle:
		if h.rt == rt && !h.closed {
			return nil, h.l, nil
		}
	}
	return nil, nil, errBadFD
}

// progOf is bpf_prog_get: an open link handle is an fd of the wrong kind.
func (rt *Runtime) progOf(o tcx.Object) (*program, error) {
	p, _, err := rt.open(o)
	if err == nil && p == nil {
		err = errInval
	}
	return p, err
}

// linkOf is bpf_link_get_from_fd.
func (rt *Runtime) linkOf(o tcx.Object) (*link, error) {
	_, l, err := rt.open(o)
	if err == nil && l == nil {
		err = errInval
	}
	return l, err
}

// resolve is bpf_mprog_tuple_relative: it turns the relative object of a
// request into a tuple, or into the error the bundle reports at its step.
// self is a link being created: its ID is reserved but not settled, and
// naming it gives EAGAIN as bpf_link_by_id does.
func (rt *Runtime) resolve(flags tcx.Flags, obj tcx.Object, id uint32, self *link) relative {
	if flags&tcx.FlagLink != 0 {
		var l *link
		if flags&tcx.FlagID != 0 {
			found, ok := rt.links.lookup(id)
			switch {
			case id == 0 || !ok:
				return relative{Err: errNoEnt}
			case found == self || !found.settled:
				return relative{Err: errAgain}
			}
			l = found
		} else {
			var err error
			if l, err = rt.linkOf(obj); err != nil {
				return relative{Err: err}
			}
		}
		return relative{Tuple: tuple{Prog: l.prog, Link: l}}
	}
	if flags&tcx.FlagID == 0 && obj == nil {
		return relative{}
	}
	if flags&tcx.FlagID != 0 {
		p, ok := rt.progs.lookup(id)
		if id == 0 || !ok {
			return relative{Err: errNoEnt}
		}
		return relative{Tuple: tuple{Prog: p}}
	}
	p, err := rt.progOf(obj)
	if err != nil {
		return relative{Err: err}
	}
	return relative{Tuple: tuple{Prog: p}}
}
