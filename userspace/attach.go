package userspace

import (
	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/mprog"
)

// queryEffective is BPF_F_QUERY_EFFECTIVE, the one query flag bpf(2) lets
// through to tcx (which then rejects it).
const queryEffective = 1

// Attach is BPF_PROG_ATTACH for tcx, failing where and how the kernel does:
// attach type, flag mask, program fd, device (ENODEV), replace fd, then the
// mprog rules (ESTALE, EEXIST, relative, position ...).
func (rt *Runtime) Attach(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.AttachOptions) error {
	const op = "attach tcx program"
	if !validDir(dir) || opts.Flags&^tcx.FlagsMask != 0 {
		return opError(op, errInval)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p, err := rt.progOf(prog)
	if err != nil {
		return opError(op, err)
	}
	dev := rt.devs[ifindex]
	if dev == nil {
		return opError(op, errNoDev)
	}
	var old *program
	if opts.Flags&tcx.FlagReplace != 0 {
		if old, err = rt.progOf(opts.Replace); err != nil {
			return opError(op, err)
		}
	}
	e, created := dev.fetchOrCreate(dir)
	rel := rt.resolve(opts.Flags, opts.Relative, opts.RelativeID, nil)
	replaced, err := e.bundle.Attach(tuple{Prog: p}, old, opts.Flags, rel, opts.ExpectedRevision)
	if err != nil {
		return opError(op, err) // a created entry was never published
	}
	if created {
		dev.publish(dir, e)
	}
	rt.getProg(p)
	if replaced != nil {
		rt.putProg(replaced)
	}
	return nil
}

// Detach is BPF_PROG_DETACH for tcx; prog nil is a positional detach.
func (rt *Runtime) Detach(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.DetachOptions) error {
	const op = "detach tcx program"
	if !validDir(dir) || opts.Flags&^tcx.FlagsMask != 0 {
		return opError(op, errInval)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var p *program
	if prog != nil {
		var err error
		if p, err = rt.progOf(prog); err != nil {
			return opError(op, err)
		}
	}
	dev := rt.devs[ifindex]
	if dev == nil {
		return opError(op, errNoDev)
	}
	e := dev.hooks[dir].entry.Load()
	if e == nil {
		return opError(op, errNoEnt)
	}
	rel := rt.resolve(opts.Flags, opts.Relative, opts.RelativeID, nil)
	removed, err := e.bundle.Detach(tuple{Prog: p}, opts.Flags, rel, opts.ExpectedRevision)
	if err != nil {
		return opError(op, err)
	}
	dev.settle(dir, e)
	rt.putProg(removed.Prog)
	return nil
}

// Query is BPF_PROG_QUERY for tcx. Besides the kernel's rules it rejects a
// non-nil array shorter than opts.Count with EINVAL before anything else
// (the kernel would write past it; this is the client-side rule both
// backends share).
func (rt *Runtime) Query(ifindex int, dir tcx.Direction, opts tcx.QueryOptions) (tcx.QueryResult, error) {
	const op = "query tcx programs"
	for _, a := range [...][]uint32{opts.ProgIDs, opts.ProgAttachFlags, opts.LinkIDs, opts.LinkAttachFlags} {
		if a != nil && len(a) < int(opts.Count) {
			return tcx.QueryResult{}, opError(op, errInval)
		}
	}
	if opts.QueryFlags&^queryEffective != 0 || !validDir(dir) {
		return tcx.QueryResult{}, opError(op, errInval)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	dev := rt.devs[ifindex]
	if dev == nil {
		return tcx.QueryResult{}, opError(op, errNoDev)
	}
	var b *bundle
	if e := dev.hooks[dir].entry.Load(); e != nil {
		b = e.bundle
	}
	res, err := mprog.Query(b, &opts, queryIDs)
	return res, opError(op, err)
}

func queryIDs(t tuple) (uint32, uint32) {
	if t.Link == nil {
		return t.Prog.id, 0
	}
	return t.Prog.id, t.Link.id
}

// CreateLink is BPF_LINK_CREATE for tcx. There is no flag mask on this path
// (unknown bits end in EINVAL from the mprog rules unless a position flag is
// set). A create that reaches the hook reserves a link ID even if it then
// fails, as the kernel's bpf_link_prime does.
func (rt *Runtime) CreateLink(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.LinkOptions) (tcx.Link, error) {
	const op = "create tcx link"
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p, err := rt.progOf(prog)
	if err != nil {
		return nil, opError(op, err)
	}
	if !validDir(dir) {
		return nil, opError(op, errInval)
	}
	dev := rt.devs[ifindex]
	if dev == nil {
		return nil, opError(op, errNoDev)
	}
	l := &link{rt: rt, prog: p, dev: dev, dir: dir}
	l.id = rt.links.alloc(l)
	e, created := dev.fetchOrCreate(dir)
	rel := rt.resolve(opts.Flags, opts.Relative, opts.RelativeID, l)
	if _, err := e.bundle.Attach(tuple{Prog: p, Link: l}, nil, opts.Flags, rel, opts.ExpectedRevision); err != nil {
		rt.links.free(l.id)
		return nil, opError(op, err)
	}
	if created {
		dev.publish(dir, e)
	}
	rt.getProg(p)
	l.settled, l.refs = true, 1
	return &linkHandle{rt: rt, l: l}, nil
}
