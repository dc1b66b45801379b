package kernel_test

import (
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
)

var dirs = []tcx.Direction{tcx.Ingress, tcx.Egress}

func TestBackend_Attach_Basic(t *testing.T) {
	e := newEnv(t)
	tc1, tc2 := e.tc(1), e.tc(2)
	e.chain(e.lo, tcx.Ingress, 1)
	e.attach(e.lo, tcx.Ingress, tc1, tcx.AttachOptions{})
	e.attach(e.lo, tcx.Egress, tc2, tcx.AttachOptions{})
	e.chain(e.lo, tcx.Ingress, 2, p(tc1))
	e.chain(e.lo, tcx.Egress, 2, p(tc2))
	e.traffic(1, 2)
	e.detach(e.lo, tcx.Ingress, tc1, tcx.DetachOptions{})
	e.detach(e.lo, tcx.Egress, tc2, tcx.DetachOptions{})
	e.chain(e.lo, tcx.Ingress, 1)
	e.chain(e.lo, tcx.Egress, 1)
	e.traffic()
}

func TestBackend_Attach_Anchors(t *testing.T) {
	for _, dir := range dirs {
		t.Run(dir.String(), func(t *testing.T) {
			e := newEnv(t)
			tc1, tc2, tc3, tc4 := e.tc(1), e.tc(2), e.tc(3), e.tc(4)
			e.attach(e.lo, dir, tc1, tcx.AttachOptions{ExpectedRevision: 1})
			e.attach(e.lo, dir, tc2, tcx.AttachOptions{ExpectedRevision: 2})
			// BEFORE relative_fd, then BEFORE|ID relative_id (tc_opts_before).
			e.attach(e.lo, dir, tc3, tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: tc2})
			e.attach(e.lo, dir, tc4, tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagID, RelativeID: tc1.ID()})
			e.chain(e.lo, dir, 5, p(tc4), p(tc1), p(tc3), p(tc2))
			e.traffic(1, 2, 3, 4)
			// Through the anchors of package tcx: head, after a program.
			tc5 := e.probe(5, tcx.VerdictNext)
			if err := tcx.AttachProgram(e.b, e.lo, dir, tc5, tcx.Head(), 5); err != nil {
				t.Fatal(err)
			}
			e.chain(e.lo, dir, 6, p(tc5), p(tc4), p(tc1), p(tc3), p(tc2))
			// Positional detach: BEFORE without a program removes the first,
			// AFTER the last.
			e.detach(e.lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagBefore})
			e.detach(e.lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagAfter})
			e.chain(e.lo, dir, 8, p(tc4), p(tc1), p(tc3))
			e.detach(e.lo, dir, nil, tcx.DetachOptions{})
			e.chain(e.lo, dir, 9, p(tc4), p(tc1))
			e.detach(e.lo, dir, nil, tcx.DetachOptions{})
			e.detach(e.lo, dir, nil, tcx.DetachOptions{})
			e.chain(e.lo, dir, 1)
			wantErrno(t, e.b.Detach(e.lo, dir, nil, tcx.DetachOptions{}), unix.ENOENT, "positional detach on empty hook")
		})
	}
}

func TestBackend_Attach_Errors(t *testing.T) {
	e := newEnv(t)
	tc1, tc2, tc3 := e.tc(1), e.tc(2), e.tc(3)
	in := func(prog tcx.Program, o tcx.AttachOptions) error { return e.b.Attach(e.lo, tcx.Ingress, prog, o) }

	// Empty hook (tc_opts_invalid).
	wantErrno(t, in(tc1, tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagAfter}), unix.ERANGE, "BEFORE|AFTER")
	wantErrno(t, in(tc1, tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagID}), unix.ENOENT, "BEFORE|ID id 0")
	wantErrno(t, in(tc1, tcx.AttachOptions{Relative: tc2}), unix.EINVAL, "relative without flags")
	wantErrno(t, in(tc1, tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: tc2}), unix.ENOENT, "BEFORE absent relative")
	wantErrno(t, in(tc1, tcx.AttachOptions{Flags: tcx.FlagID, RelativeID: tc2.ID()}), unix.EINVAL, "ID without position")
	wantErrno(t, in(tc1, tcx.AttachOptions{Flags: 1 << 6}), unix.EINVAL, "flag outside the mprog mask")
	wantErrno(t, e.b.Attach(0x7fffffff, tcx.Ingress, tc1, tcx.AttachOptions{}), unix.ENODEV, "unknown ifindex")
	e.chain(e.lo, tcx.Ingress, 1)

	e.attach(e.lo, tcx.Ingress, tc1, tcx.AttachOptions{})
	wantErrno(t, in(tc2, tcx.AttachOptions{ExpectedRevision: 1}), unix.ESTALE, "wrong expected revision")
	wantErrno(t, in(tc1, tcx.AttachOptions{}), unix.EEXIST, "same program again")
	wantErrno(t, in(tc1, tcx.AttachOptions{ExpectedRevision: 3}), unix.ESTALE, "ESTALE is checked before EEXIST")
	// Replace nil is replace_bpf_fd 0: under go test fd 0 is /dev/null,
	// which is no program (EINVAL, as the selftest expects).
	wantErrno(t, in(tc2, tcx.AttachOptions{Flags: tcx.FlagReplace}), unix.EINVAL, "REPLACE with replace fd 0")
	wantErrno(t, in(tc2, tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: tc3}), unix.ENOENT, "REPLACE of an absent program")
	e.attach(e.lo, tcx.Ingress, tc2, tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: tc1, ExpectedRevision: 2})
	e.chain(e.lo, tcx.Ingress, 3, p(tc2))
	e.attach(e.lo, tcx.Ingress, tc1, tcx.AttachOptions{})
	wantErrno(t, in(tc3, tcx.AttachOptions{Flags: tcx.FlagReplace | tcx.FlagAfter, Replace: tc2, Relative: tc1}), unix.ERANGE, "REPLACE|AFTER disagreeing")
	e.chain(e.lo, tcx.Ingress, 4, p(tc2), p(tc1))
}

// TestBackend_Attach_Max fills a hook with 63 programs; the 64th fails with
// ERANGE whatever its position.
func TestBackend_Attach_Max(t *testing.T) {
	e := newEnv(t)
	ia, _, err := e.ns.AddVethPair("max0", "max1")
	if err != nil {
		t.Fatal(err)
	}
	var last *kernel.Program
	for i := range tcx.MaxPrograms {
		last = e.tc(10 + i)
		e.attach(ia, tcx.Ingress, last, tcx.AttachOptions{})
	}
	extra := e.tc(100)
	for _, o := range []tcx.AttachOptions{
		{}, {Flags: tcx.FlagBefore}, {Flags: tcx.FlagAfter},
		{Flags: tcx.FlagBefore, Relative: last}, {Flags: tcx.FlagAfter, Relative: last},
	} {
		wantErrno(t, e.b.Attach(ia, tcx.Ingress, extra, o), unix.ERANGE, fmt.Sprintf("64th attach %+v", o))
	}
	res, err := e.b.Query(ia, tcx.Ingress, tcx.QueryOptions{})
	if err != nil || res.Count != tcx.MaxPrograms || res.Revision != tcx.MaxPrograms+1 {
		t.Errorf("query full hook: %+v %v, want count 63 revision 64", res, err)
	}
	if err := e.ns.DeleteDevice(ia); err != nil {
		t.Fatal(err)
	}
}

func TestBackend_Detach_Errors(t *testing.T) {
	e := newEnv(t)
	tc1, tc2, tc3, tc4 := e.tc(1), e.tc(2), e.tc(3), e.tc(4)
	out := func(prog tcx.Program, o tcx.DetachOptions) error { return e.b.Detach(e.lo, tcx.Egress, prog, o) }
	wantErrno(t, out(tc1, tcx.DetachOptions{}), unix.ENOENT, "detach from empty hook")
	for _, prog := range []tcx.Program{tc1, tc2, tc3} {
		e.attach(e.lo, tcx.Egress, prog, tcx.AttachOptions{})
	}
	l4 := e.link(e.lo, tcx.Egress, tc4, tcx.LinkOptions{})
	wantErrno(t, out(tc4, tcx.DetachOptions{}), unix.EBUSY, "plain detach of a link's program")
	wantErrno(t, out(nil, tcx.DetachOptions{}), unix.EBUSY, "positional detach hitting a link")
	wantErrno(t, out(tc1, tcx.DetachOptions{Flags: tcx.FlagReplace}), unix.EINVAL, "REPLACE on detach")
	wantErrno(t, out(tc2, tcx.DetachOptions{ExpectedRevision: 1}), unix.ESTALE, "stale detach")
	wantErrno(t, out(tc2, tcx.DetachOptions{Flags: tcx.FlagAfter, Relative: tc3}), unix.ERANGE, "detach tc2 AFTER tc3")
	wantErrno(t, out(tc1, tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: tc1}), unix.ERANGE, "detach tc1 BEFORE itself")
	e.chain(e.lo, tcx.Egress, 5, p(tc1), p(tc2), p(tc3), pl(tc4, l4))
	e.detach(e.lo, tcx.Egress, tc2, tcx.DetachOptions{Flags: tcx.FlagAfter, Relative: tc1, ExpectedRevision: 5})
	e.detach(e.lo, tcx.Egress, nil, tcx.DetachOptions{Flags: tcx.FlagBefore})
	e.chain(e.lo, tcx.Egress, 7, p(tc3), pl(tc4, l4))
}

func TestBackend_Query_Fill(t *testing.T) {
	e := newEnv(t)
	tc1, tc2, tc3 := e.tc(1), e.tc(2), e.tc(3)
	e.attach(e.lo, tcx.Ingress, tc1, tcx.AttachOptions{})
	l2 := e.link(e.lo, tcx.Ingress, tc2, tcx.LinkOptions{})
	e.attach(e.lo, tcx.Ingress, tc3, tcx.AttachOptions{})

	// count smaller than the chain: ENOSPC, the first two written, count
	// reports the total.
	ids, links := []uint32{0, 0, 0}, []uint32{0, 0, 0}
	res, err := e.b.Query(e.lo, tcx.Ingress, tcx.QueryOptions{Count: 2, ProgIDs: ids, LinkIDs: links})
	wantErrno(t, err, unix.ENOSPC, "query with count 2 of 3")
	if res.Count != 3 || res.Revision != 4 {
		t.Errorf("ENOSPC query result %+v, want count 3 revision 4", res)
	}
	if want := []uint32{tc1.ID(), tc2.ID(), 0}; !slices.Equal(ids, want) {
		t.Errorf("partial prog ids %v, want %v", ids, want)
	}
	if want := []uint32{0, l2.ID(), 0}; !slices.Equal(links, want) {
		t.Errorf("partial link ids %v, want %v", links, want)
	}
	// Arrays given, count 0: success, nothing written.
	ids = []uint32{7, 7, 7}
	res, err = e.b.Query(e.lo, tcx.Ingress, tcx.QueryOptions{ProgIDs: ids})
	if err != nil || res.Count != 3 || !slices.Equal(ids, []uint32{7, 7, 7}) {
		t.Errorf("query count 0: %+v %v ids %v", res, err, ids)
	}
	wantErrno(t, e.queryErr(tcx.QueryOptions{QueryFlags: 1}), unix.EINVAL, "query_flags 1")
	wantErrno(t, e.queryErr(tcx.QueryOptions{AttachFlags: 1}), unix.EINVAL, "attach_flags 1")
	// A short array is refused before the kernel could write past it.
	wantErrno(t, e.queryErr(tcx.QueryOptions{Count: 4, ProgIDs: make([]uint32, 3)}), unix.EINVAL, "array shorter than count")
	wantErrno(t, e.queryErr(tcx.QueryOptions{Count: 4, LinkAttachFlags: make([]uint32, 3)}), unix.EINVAL, "flag array shorter than count")
	_, err = e.b.Query(99, tcx.Ingress, tcx.QueryOptions{})
	wantErrno(t, err, unix.ENODEV, "query unknown device")
}
