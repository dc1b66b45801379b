package userspace_test

import (
	"slices"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
)

var frame = make([]byte, 64)

func TestRuntime_Attach_Basic(t *testing.T) {
	e := newEnv(t)
	p := e.progs(2)
	e.mustAttach(lo, tcx.Ingress, p[0], tcx.AttachOptions{})
	e.mustAttach(lo, tcx.Egress, p[1], tcx.AttachOptions{})
	e.chain(lo, tcx.Ingress, 2, p[:1], nil)
	e.chain(lo, tcx.Egress, 2, p[1:], nil)
	if out := e.rt.Transmit(lo, frame); out.Fate.String() != "delivered" || !slices.Equal(e.ran(), []int64{1, 1}) {
		t.Fatalf("ping: %+v", out)
	}
	isErr(t, e.rt.Detach(lo, tcx.Ingress, p[0], tcx.DetachOptions{}), nil)
	isErr(t, e.rt.Detach(lo, tcx.Egress, p[1], tcx.DetachOptions{}), nil)
	e.chain(lo, tcx.Ingress, 1, nil, nil)
	e.chain(lo, tcx.Egress, 1, nil, nil)
}

func TestRuntime_Attach_BeforeAfter(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(4)
		e.mustAttach(lo, dir, p[0], tcx.AttachOptions{})
		e.mustAttach(lo, dir, p[1], tcx.AttachOptions{})
		e.chain(lo, dir, 3, p[:2], nil)
		e.mustAttach(lo, dir, p[2], tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: p[1]})
		e.chain(lo, dir, 4, []tcx.Program{p[0], p[2], p[1]}, nil)
		e.mustAttach(lo, dir, p[3], tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagID, RelativeID: p[0].ID()})
		e.chain(lo, dir, 5, []tcx.Program{p[3], p[0], p[2], p[1]}, nil)
		e.rt.Transmit(lo, frame)
		if !slices.Equal(e.ran(), []int64{1, 1, 1, 1}) {
			t.Fatal("not every program ran")
		}
		isErr(t, e.rt.Detach(lo, dir, p[2], tcx.DetachOptions{}), nil)
		// AFTER by fd and by ID.
		e.mustAttach(lo, dir, p[2], tcx.AttachOptions{Flags: tcx.FlagAfter | tcx.FlagID, RelativeID: p[1].ID()})
		e.chain(lo, dir, 7, []tcx.Program{p[3], p[0], p[1], p[2]}, nil)
		isErr(t, e.rt.Detach(lo, dir, p[3], tcx.DetachOptions{}), nil)
		e.mustAttach(lo, dir, p[3], tcx.AttachOptions{Flags: tcx.FlagAfter, Relative: p[0]})
		e.chain(lo, dir, 9, []tcx.Program{p[0], p[3], p[1], p[2]}, nil)
	})
}

func TestRuntime_Attach_Revision(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(2)
		e.mustAttach(lo, dir, p[0], tcx.AttachOptions{ExpectedRevision: 1})
		isErr(t, e.rt.Attach(lo, dir, p[1], tcx.AttachOptions{ExpectedRevision: 1}), syscall.ESTALE)
		e.chain(lo, dir, 2, p[:1], nil)
		e.mustAttach(lo, dir, p[1], tcx.AttachOptions{ExpectedRevision: 2})
		e.chain(lo, dir, 3, p, nil)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{ExpectedRevision: 2}), syscall.ESTALE)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{ExpectedRevision: 3}), nil)
		isErr(t, e.rt.Detach(lo, dir, p[0], tcx.DetachOptions{}), nil)
		// An emptied hook is freed: the next attach sees revision 1.
		e.chain(lo, dir, 1, nil, nil)
		e.mustAttach(lo, dir, p[1], tcx.AttachOptions{ExpectedRevision: 1})
		e.chain(lo, dir, 2, p[1:], nil)
	})
}

// TestRuntime_Attach_Replace is tc_opts_replace.
func TestRuntime_Attach_Replace(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(3)
		e.mustAttach(lo, dir, p[0], tcx.AttachOptions{ExpectedRevision: 1})
		e.mustAttach(lo, dir, p[1], tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagID, RelativeID: p[0].ID(), ExpectedRevision: 2})
		e.chain(lo, dir, 3, []tcx.Program{p[1], p[0]}, nil)
		e.mustAttach(lo, dir, p[2], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[1], ExpectedRevision: 3})
		e.chain(lo, dir, 4, []tcx.Program{p[2], p[0]}, nil)
		e.rt.Transmit(lo, frame)
		if got := e.ran(); got[0] != 1 || got[1] != 0 || got[2] != 1 {
			t.Fatalf("runs %v", got)
		}
		e.mustAttach(lo, dir, p[1], tcx.AttachOptions{Flags: tcx.FlagReplace | tcx.FlagBefore, Replace: p[2], Relative: p[0], ExpectedRevision: 4})
		e.chain(lo, dir, 5, []tcx.Program{p[1], p[0]}, nil)
		isErr(t, e.rt.Attach(lo, dir, p[1], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[1]}), syscall.EEXIST)
		isErr(t, e.rt.Attach(lo, dir, p[2], tcx.AttachOptions{Flags: tcx.FlagReplace | tcx.FlagAfter, Replace: p[1], Relative: p[0], ExpectedRevision: 5}), syscall.ERANGE)
		isErr(t, e.rt.Attach(lo, dir, p[2], tcx.AttachOptions{Flags: tcx.FlagReplace | tcx.FlagAfter | tcx.FlagBefore, Replace: p[1], Relative: p[0], ExpectedRevision: 5}), syscall.ERANGE)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{Flags: tcx.FlagBefore | tcx.FlagID, RelativeID: p[0].ID(), ExpectedRevision: 5}), nil)
		e.chain(lo, dir, 6, p[:1], nil)
		// The replaced program's attachment reference is gone: closing
		// its only handle makes its ID disappear.
		id := p[2].ID()
		isErr(t, p[2].Close(), nil)
		_, err := e.rt.ProgramByID(id)
		isErr(t, err, syscall.ENOENT)
	})
}

// TestRuntime_Attach_Invalid is tc_opts_invalid.
func TestRuntime_Attach_Invalid(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(2)
		for _, c := range []struct {
			o   tcx.AttachOptions
			err error
		}{
			{tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagAfter}, syscall.ERANGE},
			{tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagID}, syscall.ENOENT},
			{tcx.AttachOptions{Flags: tcx.FlagAfter | tcx.FlagID}, syscall.ENOENT},
			{tcx.AttachOptions{Relative: p[1]}, syscall.EINVAL},
			{tcx.AttachOptions{Flags: tcx.FlagBefore | tcx.FlagAfter, Relative: p[1]}, syscall.ENOENT},
			{tcx.AttachOptions{Flags: tcx.FlagID, RelativeID: p[1].ID()}, syscall.EINVAL},
			{tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: p[0]}, syscall.ENOENT},
			{tcx.AttachOptions{Flags: tcx.FlagAfter, Relative: p[0]}, syscall.ENOENT},
		} {
			isErr(t, e.rt.Attach(lo, dir, p[0], c.o), c.err)
			if e.count(lo, dir) != 0 {
				t.Fatal("failed attach left a program")
			}
		}
		e.mustAttach(lo, dir, p[0], tcx.AttachOptions{})
		for _, c := range []struct {
			o   tcx.AttachOptions
			err error
		}{
			{tcx.AttachOptions{}, syscall.EEXIST},
			{tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: p[0]}, syscall.EEXIST},
			{tcx.AttachOptions{Flags: tcx.FlagAfter, Relative: p[0]}, syscall.EEXIST},
			{tcx.AttachOptions{Flags: tcx.FlagReplace, Relative: p[0]}, syscall.EINVAL}, // replace fd 0
			{tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[0]}, syscall.EEXIST},
		} {
			isErr(t, e.rt.Attach(lo, dir, p[0], c.o), c.err)
		}
		e.chain(lo, dir, 2, p[:1], nil)
		isErr(t, e.rt.Detach(lo, dir, p[0], tcx.DetachOptions{}), nil)
	})
}

// TestRuntime_Attach_PrependAppend is tc_opts_prepend and tc_opts_append.
func TestRuntime_Attach_PrependAppend(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		for _, fl := range []tcx.Flags{tcx.FlagBefore, tcx.FlagAfter} {
			e := newEnv(t)
			p := e.progs(4)
			e.mustAttach(lo, dir, p[0], tcx.AttachOptions{})
			for _, q := range p[1:] {
				e.mustAttach(lo, dir, q, tcx.AttachOptions{Flags: fl})
			}
			want := slices.Clone(p)
			if fl == tcx.FlagBefore {
				slices.Reverse(want)
			}
			e.chain(lo, dir, 5, want, nil)
		}
	})
}

// TestRuntime_Detach_Positional is tc_opts_detach, _detach_before and
// _detach_after, plus tc_opts_delete_empty.
func TestRuntime_Detach_Positional(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(4)
		setup := func() {
			for _, q := range p {
				e.mustAttach(lo, dir, q, tcx.AttachOptions{})
			}
			e.chain(lo, dir, 5, p, nil)
		}
		setup()
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagBefore}), nil)
		e.chain(lo, dir, 6, p[1:], nil)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagAfter}), nil)
		e.chain(lo, dir, 7, p[1:3], nil)
		isErr(t, e.rt.Detach(lo, dir, p[2], tcx.DetachOptions{}), nil)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{}), nil)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagBefore}), syscall.ENOENT)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagAfter}), syscall.ENOENT)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{}), syscall.ENOENT)
		e.chain(lo, dir, 1, nil, nil)

		setup()
		isErr(t, e.rt.Detach(lo, dir, p[0], tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: p[1]}), nil)
		e.chain(lo, dir, 6, p[1:], nil)
		isErr(t, e.rt.Detach(lo, dir, p[0], tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: p[1]}), syscall.ENOENT)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: p[3]}), syscall.ERANGE)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: p[0]}), syscall.ENOENT)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: p[2]}), nil)
		e.chain(lo, dir, 7, p[2:], nil)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagBefore, Relative: p[3]}), nil)
		e.chain(lo, dir, 8, p[3:], nil)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagBefore}), nil)
		e.chain(lo, dir, 1, nil, nil)

		setup()
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{Flags: tcx.FlagAfter, Relative: p[0]}), nil)
		rest := []tcx.Program{p[0], p[2], p[3]}
		e.chain(lo, dir, 6, rest, nil)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{Flags: tcx.FlagAfter, Relative: p[0]}), syscall.ENOENT)
		for _, r := range []tcx.Program{p[3], p[2], p[0]} {
			isErr(t, e.rt.Detach(lo, dir, p[0], tcx.DetachOptions{Flags: tcx.FlagAfter, Relative: r}), syscall.ERANGE)
		}
		isErr(t, e.rt.Detach(lo, dir, p[2], tcx.DetachOptions{Flags: tcx.FlagAfter, Relative: p[0]}), nil)
		e.chain(lo, dir, 7, []tcx.Program{p[0], p[3]}, nil)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagAfter, Relative: p[0]}), nil)
		e.chain(lo, dir, 8, p[:1], nil)
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagAfter}), nil)
		e.chain(lo, dir, 1, nil, nil)
	})
}

// TestRuntime_Attach_Mixed is tc_opts_mixed and tc_opts_demixed: plain
// attachments and links on one hook, and the replacement matrix.
func TestRuntime_Attach_Mixed(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(4)
		e.mustAttach(lo, dir, p[0], tcx.AttachOptions{})
		l2 := e.mustLink(lo, dir, p[1], tcx.LinkOptions{})
		isErr(t, e.rt.Attach(lo, dir, p[1], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[0]}), syscall.EEXIST)
		isErr(t, e.rt.Attach(lo, dir, p[0], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[1]}), syscall.EEXIST)
		isErr(t, e.rt.Attach(lo, dir, p[2], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[1]}), syscall.EBUSY)
		isErr(t, e.rt.Attach(lo, dir, p[2], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[0]}), nil)
		l4 := e.mustLink(lo, dir, p[3], tcx.LinkOptions{})
		isErr(t, e.rt.Attach(lo, dir, p[1], tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: p[3]}), syscall.EEXIST)
		progs, links := make([]uint32, 4), make([]uint32, 4)
		pf, lf := []uint32{7, 7, 7, 7}, []uint32{7, 7, 7, 7}
		res, err := e.rt.Query(lo, dir, tcx.QueryOptions{Count: 4, ProgIDs: progs, LinkIDs: links, ProgAttachFlags: pf, LinkAttachFlags: lf})
		isErr(t, err, nil)
		if res.Count != 3 || res.Revision != 5 ||
			!slices.Equal(progs, []uint32{p[2].ID(), p[1].ID(), p[3].ID(), 0}) ||
			!slices.Equal(links, []uint32{0, l2.ID(), l4.ID(), 0}) ||
			!slices.Equal(pf, []uint32{0, 0, 0, 7}) || !slices.Equal(lf, pf) {
			t.Fatalf("query %+v %v %v %v %v", res, progs, links, pf, lf)
		}
		isErr(t, e.rt.Detach(lo, dir, p[2], tcx.DetachOptions{}), nil)
		// demixed: the last program belongs to a link.
		isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{Flags: tcx.FlagAfter}), syscall.EBUSY)
		isErr(t, e.rt.Detach(lo, dir, p[1], tcx.DetachOptions{}), syscall.EBUSY)
		e.chain(lo, dir, 6, []tcx.Program{p[1], p[3]}, []tcx.Link{l2, l4})
		isErr(t, l2.Close(), nil)
		isErr(t, l4.Close(), nil)
		e.chain(lo, dir, 1, nil, nil)
	})
}

// TestRuntime_Attach_Max is tc_opts_max: 63 programs, the 64th is ERANGE in
// every positioning variant.
func TestRuntime_Attach_Max(t *testing.T) {
	e := newEnv(t)
	a, _, err := e.rt.AddVethPair("tcx_opts1", "tcx_opts2")
	isErr(t, err, nil)
	p := e.progs(64)
	for i, q := range p[:63] {
		e.mustAttach(a, tcx.Ingress, q, tcx.AttachOptions{})
		if e.count(a, tcx.Ingress) != uint32(i+1) {
			t.Fatal("count did not grow")
		}
	}
	for _, o := range []tcx.AttachOptions{{}, {Flags: tcx.FlagBefore}, {Flags: tcx.FlagAfter},
		{Flags: tcx.FlagBefore, Relative: p[62]}, {Flags: tcx.FlagAfter, Relative: p[62]}} {
		isErr(t, e.rt.Attach(a, tcx.Ingress, p[63], o), syscall.ERANGE)
	}
	_, err = e.rt.CreateLink(a, tcx.Ingress, p[63], tcx.LinkOptions{})
	isErr(t, err, syscall.ERANGE)
	res, _ := e.rt.Query(a, tcx.Ingress, tcx.QueryOptions{})
	if res.Count != 63 || res.Revision != 64 {
		t.Fatalf("full hook: %+v", res)
	}
}

// TestRuntime_Query is tc_opts_query and tc_opts_query_attach, plus the
// runtime's own rule for short arrays.
func TestRuntime_Query(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		res, err := e.rt.Query(lo, dir, tcx.QueryOptions{})
		if err != nil || res != (tcx.QueryResult{Revision: 1}) {
			t.Fatalf("empty: %+v %v", res, err)
		}
		p := e.progs(4)
		for i, q := range p {
			e.mustAttach(lo, dir, q, tcx.AttachOptions{ExpectedRevision: uint64(i + 1)})
		}
		ids := make([]uint32, 10)
		res, err = e.rt.Query(lo, dir, tcx.QueryOptions{Count: 2, ProgIDs: ids})
		isErr(t, err, syscall.ENOSPC)
		if res.Count != 4 || ids[0] != p[0].ID() || ids[1] != p[1].ID() || ids[2] != 0 {
			t.Fatalf("partial: %+v %v", res, ids)
		}
		ids = make([]uint32, 10)
		res, err = e.rt.Query(lo, dir, tcx.QueryOptions{Count: 10, ProgIDs: ids})
		if err != nil || res.Count != 4 || res.Revision != 5 || ids[3] != p[3].ID() || ids[4] != 0 {
			t.Fatalf("full: %+v %v %v", res, ids, err)
		}
		res, err = e.rt.Query(lo, dir, tcx.QueryOptions{Count: 4})
		if err != nil || res.Count != 4 {
			t.Fatal("no arrays")
		}
		ids = make([]uint32, 4)
		if res, err = e.rt.Query(lo, dir, tcx.QueryOptions{ProgIDs: ids}); err != nil || res.Count != 4 || ids[0] != 0 {
			t.Fatal("count 0 wrote ids")
		}
		_, err = e.rt.Query(lo, dir, tcx.QueryOptions{QueryFlags: 1})
		isErr(t, err, syscall.EINVAL)
		_, err = e.rt.Query(lo, dir, tcx.QueryOptions{AttachFlags: 1})
		isErr(t, err, syscall.EINVAL)
		_, err = e.rt.Query(lo, dir, tcx.QueryOptions{Count: 5, ProgIDs: make([]uint32, 4)})
		isErr(t, err, syscall.EINVAL)
		// Order: flags bpf(2) rejects come before the device lookup, the
		// ones tcx rejects after it.
		_, err = e.rt.Query(99, dir, tcx.QueryOptions{QueryFlags: 2})
		isErr(t, err, syscall.EINVAL)
		_, err = e.rt.Query(99, dir, tcx.QueryOptions{QueryFlags: 1})
		isErr(t, err, syscall.ENODEV)
	})
}
