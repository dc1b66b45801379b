package userspace_test

import (
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/userspace"
)

// TestRuntime_CreateLink_BeforeAfter is tc_links_before and tc_links_after.
func TestRuntime_CreateLink_BeforeAfter(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(4)
		l1 := e.mustLink(lo, dir, p[0], tcx.LinkOptions{ExpectedRevision: 1})
		l2 := e.mustLink(lo, dir, p[1], tcx.LinkOptions{})
		if l1.ID() == l2.ID() {
			t.Fatal("links share an ID")
		}
		l3 := e.mustLink(lo, dir, p[2], tcx.LinkOptions{Flags: tcx.FlagBefore, Relative: p[1]})
		l4 := e.mustLink(lo, dir, p[3], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink | tcx.FlagID, RelativeID: l1.ID()})
		e.chain(lo, dir, 5, []tcx.Program{p[3], p[0], p[2], p[1]}, []tcx.Link{l4, l1, l3, l2})
		isErr(t, l3.Close(), nil)
		l3 = e.mustLink(lo, dir, p[2], tcx.LinkOptions{Flags: tcx.FlagAfter | tcx.FlagLink, Relative: l2})
		e.chain(lo, dir, 7, []tcx.Program{p[3], p[0], p[1], p[2]}, []tcx.Link{l4, l1, l2, l3})
		e.rt.Transmit(lo, frame)
		for i, n := range e.ran() {
			if n != 1 {
				t.Fatalf("tc%d ran %d times", i+1, n)
			}
		}
		for _, l := range []tcx.Link{l1, l2, l3, l4} {
			isErr(t, l.Close(), nil)
		}
		e.chain(lo, dir, 1, nil, nil)
	})
}

// TestRuntime_CreateLink_Invalid is tc_links_invalid with the kernel's codes.
func TestRuntime_CreateLink_Invalid(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(2)
		for _, c := range []struct {
			o   tcx.LinkOptions
			err error
		}{
			{tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagAfter}, syscall.ERANGE},
			{tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagID}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: tcx.FlagAfter | tcx.FlagID}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: tcx.FlagID}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: tcx.FlagLink, Relative: p[1]}, syscall.EINVAL},
			{tcx.LinkOptions{Flags: tcx.FlagLink}, syscall.EINVAL},
			{tcx.LinkOptions{Relative: p[1]}, syscall.EINVAL},
			{tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagAfter, Relative: p[1]}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: tcx.FlagBefore, Relative: p[0]}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: tcx.FlagID, RelativeID: p[1].ID()}, syscall.EINVAL},
			{tcx.LinkOptions{Flags: tcx.FlagID, RelativeID: 4242}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink, Relative: p[0]}, syscall.EINVAL},
			{tcx.LinkOptions{Flags: tcx.FlagAfter, Relative: p[0]}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: tcx.FlagAfter | tcx.FlagLink, Relative: p[0]}, syscall.EINVAL},
			{tcx.LinkOptions{Flags: tcx.FlagReplace}, syscall.ENOENT},
			{tcx.LinkOptions{Flags: 1 << 20}, syscall.EINVAL},
		} {
			_, err := e.rt.CreateLink(lo, dir, p[0], c.o)
			isErr(t, err, c.err)
			if e.count(lo, dir) != 0 {
				t.Fatalf("failed create %+v left a program", c.o)
			}
		}
		_, err := e.rt.CreateLink(0, dir, p[0], tcx.LinkOptions{})
		isErr(t, err, syscall.ENODEV)
		l1 := e.mustLink(lo, dir, p[0], tcx.LinkOptions{})
		for _, c := range []struct {
			prog tcx.Program
			o    tcx.LinkOptions
			err  error
		}{
			{p[1], tcx.LinkOptions{Flags: tcx.FlagAfter | tcx.FlagLink, Relative: p[0]}, syscall.EINVAL},
			{p[1], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink | tcx.FlagID, RelativeID: ^uint32(0)}, syscall.ENOENT},
			{p[0], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink | tcx.FlagID, RelativeID: l1.ID()}, syscall.EEXIST},
			{p[0], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagID, RelativeID: p[0].ID()}, syscall.EEXIST},
			{p[1], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink | tcx.FlagID, RelativeID: l1.ID()}, nil},
		} {
			_, err := e.rt.CreateLink(lo, dir, c.prog, c.o)
			isErr(t, err, c.err)
		}
		if e.count(lo, dir) != 2 {
			t.Fatal("count after invalid creates")
		}
	})
}

// TestRuntime_Link_Update is tc_links_replace and BPF_LINK_UPDATE's checks.
func TestRuntime_Link_Update(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(4)
		l1 := e.mustLink(lo, dir, p[0], tcx.LinkOptions{ExpectedRevision: 1})
		l2 := e.mustLink(lo, dir, p[1], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagID, RelativeID: p[0].ID(), ExpectedRevision: 2})
		e.chain(lo, dir, 3, []tcx.Program{p[1], p[0]}, []tcx.Link{l2, l1})
		for _, o := range []tcx.LinkOptions{
			{Flags: tcx.FlagReplace, Relative: p[1], ExpectedRevision: 3},
			{Flags: tcx.FlagReplace | tcx.FlagLink, Relative: l2, ExpectedRevision: 3},
			{Flags: tcx.FlagReplace | tcx.FlagLink | tcx.FlagAfter | tcx.FlagID, RelativeID: l2.ID(), ExpectedRevision: 3},
		} {
			_, err := e.rt.CreateLink(lo, dir, p[2], o)
			isErr(t, err, syscall.ENOENT)
		}
		e.chain(lo, dir, 3, []tcx.Program{p[1], p[0]}, []tcx.Link{l2, l1})

		isErr(t, l2.Update(p[2], tcx.UpdateOptions{}), nil)
		e.chain(lo, dir, 4, []tcx.Program{p[2], p[0]}, []tcx.Link{l2, l1})
		info, err := l2.Info()
		if err != nil || info.ProgramID != p[2].ID() || info.ID != l2.ID() || info.AttachType != dir.AttachType() || info.Ifindex != lo {
			t.Fatalf("info %+v %v", info, err)
		}
		// Same program: success, nothing changes, revision stays.
		isErr(t, l1.Update(p[0], tcx.UpdateOptions{}), nil)
		e.chain(lo, dir, 4, []tcx.Program{p[2], p[0]}, []tcx.Link{l2, l1})
		isErr(t, l1.Update(p[2], tcx.UpdateOptions{}), syscall.EEXIST)
		isErr(t, l1.Update(p[3], tcx.UpdateOptions{Flags: tcx.FlagReplace, Old: p[1]}), syscall.EPERM)
		isErr(t, l1.Update(p[3], tcx.UpdateOptions{Old: p[0]}), syscall.EINVAL)
		isErr(t, l1.Update(p[3], tcx.UpdateOptions{Flags: tcx.FlagReplace}), syscall.EINVAL)
		isErr(t, l1.Update(p[3], tcx.UpdateOptions{Flags: tcx.FlagBefore}), syscall.EINVAL)
		isErr(t, l1.Update(nil, tcx.UpdateOptions{}), syscall.EINVAL)
		isErr(t, l1.Update(p[3], tcx.UpdateOptions{Flags: tcx.FlagReplace, Old: p[0]}), nil)
		e.chain(lo, dir, 5, []tcx.Program{p[2], p[3]}, []tcx.Link{l2, l1})

		isErr(t, l2.Detach(), nil)
		e.chain(lo, dir, 6, p[3:], []tcx.Link{l1})
		info, _ = l2.Info()
		if info.Ifindex != 0 || info.ProgramID != p[2].ID() {
			t.Fatalf("defunct info %+v", info)
		}
		isErr(t, l2.Update(p[1], tcx.UpdateOptions{}), userspace.ErrNoLink)
		isErr(t, l2.Detach(), nil)
		isErr(t, l2.Close(), nil)
		isErr(t, l2.Close(), syscall.EBADF)
		isErr(t, l2.Detach(), syscall.EBADF)
		_, err = l2.Info()
		isErr(t, err, userspace.ErrBadFDState) // the kernel's answer for info on a bad fd
		e.chain(lo, dir, 6, p[3:], []tcx.Link{l1})
	})
}

// TestRuntime_Link_Release: the last reference releases the link.
func TestRuntime_Link_Release(t *testing.T) {
	e := newEnv(t)
	p := e.progs(1)
	l := e.mustLink(lo, tcx.Ingress, p[0], tcx.LinkOptions{})
	id := l.ID()
	pid := p[0].ID()
	isErr(t, p[0].Close(), nil) // the link keeps the program alive
	h, err := e.rt.ProgramByID(pid)
	if err != nil {
		t.Fatalf("program of a live link: %v", err)
	}
	isErr(t, h.Close(), nil)
	isErr(t, l.Pin("/sys/fs/bpf/l"), nil)
	isErr(t, l.Close(), nil)
	e.chain(lo, tcx.Ingress, 2, []tcx.Program{fakeProg(pid)}, []tcx.Link{fakeLink(id)})
	l2, err := e.rt.OpenPinnedLink("/sys/fs/bpf/l")
	isErr(t, err, nil)
	isErr(t, l2.Unpin(), nil)
	_, err = e.rt.OpenPinnedLink("/sys/fs/bpf/l")
	isErr(t, err, syscall.ENOENT)
	isErr(t, l2.Close(), nil)
	e.chain(lo, tcx.Ingress, 1, nil, nil)
	// The program's last reference (the link's) is gone with the link.
	q, err := e.rt.ProgramByID(pid)
	isErr(t, err, syscall.ENOENT)
	if q != nil {
		t.Fatal("handle to a dead program")
	}
}

func TestRuntime_Link_Pin(t *testing.T) {
	e := newEnv(t)
	p := e.progs(2)
	l := e.mustLink(lo, tcx.Egress, p[0], tcx.LinkOptions{})
	m := e.mustLink(lo, tcx.Egress, p[1], tcx.LinkOptions{})
	isErr(t, l.Pin("relative/path"), syscall.EINVAL)
	isErr(t, l.Pin("/bpf/a"), nil)
	isErr(t, m.Pin("/bpf/a"), syscall.EEXIST)
	isErr(t, l.Pin("/bpf/b"), nil) // moves the pin
	_, err := e.rt.OpenPinnedLink("/bpf/a")
	isErr(t, err, syscall.ENOENT)
	isErr(t, l.Close(), nil)
	isErr(t, m.Close(), nil)
	// Pinned, so still attached; m is gone.
	e.chain(lo, tcx.Egress, 4, p[:1], []tcx.Link{fakeLink(l.ID())})
	again, err := e.rt.OpenPinnedLink("/bpf/b")
	isErr(t, err, nil)
	if again.ID() != l.ID() {
		t.Fatal("pinned link has another ID")
	}
	isErr(t, again.Unpin(), nil)
	isErr(t, again.Unpin(), nil) // nothing left to unpin
	// A handle's path may meanwhile name nothing (ENOENT) or another link.
	isErr(t, again.Pin("/bpf/c"), nil)
	other, err := e.rt.OpenPinnedLink("/bpf/c")
	isErr(t, err, nil)
	isErr(t, again.Unpin(), nil)
	isErr(t, other.Unpin(), syscall.ENOENT)
	isErr(t, other.Close(), nil)
	isErr(t, again.Close(), nil)
	e.chain(lo, tcx.Egress, 1, nil, nil)
}

// TestRuntime_Handles covers the fd rules: closed handles are EBADF at the
// kernel's step, nil is fd 0, and handles of the wrong kind are EINVAL.
func TestRuntime_Handles(t *testing.T) {
	e := newEnv(t)
	p := e.progs(3)
	l := e.mustLink(lo, tcx.Ingress, p[2], tcx.LinkOptions{})
	closed := e.prog(tcx.VerdictNext)
	isErr(t, closed.Close(), nil)
	isErr(t, closed.Close(), syscall.EBADF)
	closedLink := e.mustLink(lo, tcx.Egress, e.prog(tcx.VerdictNext), tcx.LinkOptions{})
	isErr(t, closedLink.Close(), nil)

	isErr(t, e.rt.Attach(lo, tcx.Ingress, nil, tcx.AttachOptions{}), syscall.EINVAL)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, closed, tcx.AttachOptions{}), syscall.EBADF)
	// The program fd is checked before the device.
	isErr(t, e.rt.Attach(77, tcx.Ingress, closed, tcx.AttachOptions{}), syscall.EBADF)
	isErr(t, e.rt.Attach(77, tcx.Ingress, p[0], tcx.AttachOptions{}), syscall.ENODEV)
	// Flag mask and attach type come first of all.
	isErr(t, e.rt.Attach(lo, tcx.Ingress, closed, tcx.AttachOptions{Flags: 1 << 6}), syscall.EINVAL)
	isErr(t, e.rt.Attach(lo, tcx.Direction(5), p[0], tcx.AttachOptions{}), syscall.EINVAL)
	// The replace fd after the device, before the revision.
	isErr(t, e.rt.Attach(77, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: closed}), syscall.ENODEV)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: closed, ExpectedRevision: 9}), syscall.EBADF)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagReplace, ExpectedRevision: 9}), syscall.EINVAL)
	// Relatives are resolved after ESTALE and EEXIST.
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: closed, ExpectedRevision: 9}), syscall.ESTALE)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[2], tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: closed}), syscall.EEXIST)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: closed}), syscall.EBADF)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagLink, Relative: closedLink}), syscall.EBADF)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: l}), syscall.EINVAL)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagLink, Relative: p[2]}), syscall.EINVAL)
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[0], tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagLink, Relative: l}), nil)
	// A link's program named as a plain relative works.
	isErr(t, e.rt.Attach(lo, tcx.Ingress, p[1], tcx.AttachOptions{Flags: tcx.FlagAfter, Relative: p[2]}), nil)
	e.chain(lo, tcx.Ingress, 4, []tcx.Program{p[0], p[2], p[1]}, []tcx.Link{nil, l, nil})

	// Detach: prog fd before device, device before entry.
	isErr(t, e.rt.Detach(77, tcx.Egress, closed, tcx.DetachOptions{}), syscall.EBADF)
	isErr(t, e.rt.Detach(77, tcx.Egress, nil, tcx.DetachOptions{}), syscall.ENODEV)
	isErr(t, e.rt.Detach(lo, tcx.Egress, nil, tcx.DetachOptions{Flags: tcx.FlagReplace}), syscall.ENOENT)
	isErr(t, e.rt.Detach(lo, tcx.Ingress, nil, tcx.DetachOptions{Flags: tcx.FlagReplace, ExpectedRevision: 99}), syscall.EINVAL)
	isErr(t, e.rt.Detach(lo, tcx.Ingress, nil, tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: closed}), syscall.EBADF)

	// CreateLink: program fd, then attach type, then device.
	_, err := e.rt.CreateLink(77, tcx.Direction(9), closed, tcx.LinkOptions{})
	isErr(t, err, syscall.EBADF)
	_, err = e.rt.CreateLink(77, tcx.Direction(9), p[1], tcx.LinkOptions{})
	isErr(t, err, syscall.EINVAL)
	_, err = e.rt.CreateLink(lo, tcx.Egress, nil, tcx.LinkOptions{})
	isErr(t, err, syscall.EINVAL)

	// Link update: link fd before program fds.
	isErr(t, closedLink.Update(closed, tcx.UpdateOptions{}), syscall.EBADF)
	isErr(t, l.Update(closed, tcx.UpdateOptions{}), syscall.EBADF)
	isErr(t, l.Update(p[1], tcx.UpdateOptions{Flags: tcx.FlagReplace, Old: closed}), syscall.EBADF)
	isErr(t, closedLink.Pin("/x"), syscall.EINVAL) // bpf_fd_probe_obj
	isErr(t, closedLink.Unpin(), syscall.EBADF)
}

// TestRuntime_IDs: program and link IDs are separate cyclic spaces; a
// failed create that reached the hook still uses up a link ID; an object
// whose last reference is gone cannot be found by ID.
func TestRuntime_IDs(t *testing.T) {
	e := newEnv(t)
	p := e.progs(3)
	if p[0].ID() != 1 || p[1].ID() != 2 || p[2].ID() != 3 {
		t.Fatalf("program IDs %d %d %d", p[0].ID(), p[1].ID(), p[2].ID())
	}
	l1 := e.mustLink(lo, tcx.Ingress, p[0], tcx.LinkOptions{})
	_, err := e.rt.CreateLink(lo, tcx.Ingress, p[0], tcx.LinkOptions{})
	isErr(t, err, syscall.EEXIST)
	_, err = e.rt.CreateLink(99, tcx.Ingress, p[1], tcx.LinkOptions{})
	isErr(t, err, syscall.ENODEV) // before the ID is reserved
	l2 := e.mustLink(lo, tcx.Ingress, p[1], tcx.LinkOptions{})
	if l1.ID() != 1 || l2.ID() != 3 {
		t.Fatalf("link IDs %d %d, want 1 3", l1.ID(), l2.ID())
	}
	// The ID a create is about to settle names "a link being created".
	_, err = e.rt.CreateLink(lo, tcx.Ingress, p[2], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink | tcx.FlagID, RelativeID: 4})
	isErr(t, err, syscall.EAGAIN)
	isErr(t, l1.Close(), nil)
	_, err = e.rt.CreateLink(lo, tcx.Ingress, p[2], tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink | tcx.FlagID, RelativeID: l1.ID()})
	isErr(t, err, syscall.ENOENT)
	q, err := e.rt.ProgramByID(p[2].ID())
	isErr(t, err, nil)
	if q.ID() != p[2].ID() || q.Name() != "probe" {
		t.Fatal("wrong program by ID")
	}
	isErr(t, q.Close(), nil)
	isErr(t, p[2].Close(), nil)
	_, err = e.rt.ProgramByID(p[2].ID())
	isErr(t, err, syscall.ENOENT)
	_, err = e.rt.ProgramByID(0)
	isErr(t, err, syscall.ENOENT)
	// IDs are not reused right away.
	if r := e.prog(tcx.VerdictNext); r.ID() != 4 {
		t.Fatalf("next program ID %d, want 4", r.ID())
	}
}

// fakeProg and fakeLink stand for objects whose handles are closed, to
// name their IDs in chain().
type fakeProg uint32

func (f fakeProg) ID() uint32   { return uint32(f) }
func (f fakeProg) Close() error { return nil }
func (f fakeProg) Name() string { return "" }

type fakeLink uint32

func (f fakeLink) ID() uint32                                  { return uint32(f) }
func (f fakeLink) Close() error                                { return nil }
func (f fakeLink) Update(tcx.Program, tcx.UpdateOptions) error { return nil }
func (f fakeLink) Detach() error                               { return nil }
func (f fakeLink) Pin(string) error                            { return nil }
func (f fakeLink) Unpin() error                                { return nil }
func (f fakeLink) Info() (tcx.LinkInfo, error)                 { return tcx.LinkInfo{}, nil }
