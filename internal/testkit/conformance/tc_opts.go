package conformance

import (
	"slices"

	"github.com/tcxgo/tcx"
	"golang.org/x/sys/unix"
)

// Scenarios of tools/testing/selftests/bpf/prog_tests/tc_opts.c (the
// non-link API: BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_QUERY). Each runs
// on the hook h (loopback, one direction); comments name the selftest steps
// where the Go reads differently.

type (
	ao = tcx.AttachOptions
	do = tcx.DetachOptions
	lo = tcx.LinkOptions
)

const (
	fBefore  = tcx.FlagBefore
	fAfter   = tcx.FlagAfter
	fReplace = tcx.FlagReplace
	fID      = tcx.FlagID
	fLink    = tcx.FlagLink
)

// tcOptsBasic attaches tc1 to this direction and tc2 to the other one (the
// selftest's ingress/egress pair; the egress case mirrors it).
func tcOptsBasic(h *hook) {
	o := h.other()
	tc1, tc2 := h.tc(1), h.tc(2)
	if h.id(tc1) == h.id(tc2) {
		h.t.Errorf("tc1 and tc2 share ID %d", tc1.ID())
	}
	h.count(0)
	o.count(0)
	h.expect(h.attach(tc1, ao{}), 0, 1, "attach tc1")
	o.count(0)
	h.order(2, tc1)
	h.traffic(1)
	h.expect(o.attach(tc2, ao{}), 0, 1, "attach tc2")
	o.count(1)
	o.order(2, tc2)
	h.traffic(1, 2)
	h.expect(o.detach(tc2, do{}), 0, 1, "detach tc2")
	o.count(0)
	h.expect(h.detach(tc1, do{}), 0, 0, "detach tc1")
	o.count(0)
}

// attach4 attaches tc1..tc4 in order, checking the count after each.
func (h *hook) attach4() (tc1, tc2, tc3, tc4 tcx.Program) {
	h.t.Helper()
	tc1, tc2, tc3, tc4 = h.tc(1), h.tc(2), h.tc(3), h.tc(4)
	for i, p := range []tcx.Program{tc1, tc2, tc3, tc4} {
		h.ok(h.attach(p, ao{}), "attach "+p.Name())
		h.count(uint32(i + 1))
	}
	return
}

// detachAll detaches the programs in order, checking the shrinking count.
func (h *hook) detachAll(progs ...tcx.Program) {
	h.t.Helper()
	for i, p := range progs {
		h.ok(h.detach(p, do{}), "detach "+p.Name())
		h.count(uint32(len(progs) - i - 1))
	}
}

func tcOptsBefore(h *hook) {
	tc1, tc2, tc3, tc4 := h.tc(1), h.tc(2), h.tc(3), h.tc(4)
	h.count(0)
	h.expect(h.attach(tc1, ao{}), 0, 1, "attach tc1")
	h.expect(h.attach(tc2, ao{}), 0, 2, "attach tc2")
	h.order(3, tc1, tc2)
	h.traffic(1, 2)
	h.ok(h.attach(tc3, ao{Flags: fBefore, Relative: tc2}), "attach tc3 before fd tc2")
	h.order(4, tc1, tc3, tc2)
	h.expect(h.attach(tc4, ao{Flags: fBefore | fID, RelativeID: h.id(tc1)}), 0, 4, "attach tc4 before id tc1")
	h.order(5, tc4, tc1, tc3, tc2)
	h.traffic(1, 2, 3, 4)
	h.detachAll(tc4, tc3, tc2, tc1)
}

func tcOptsAfter(h *hook) {
	tc1, tc2, tc3, tc4 := h.tc(1), h.tc(2), h.tc(3), h.tc(4)
	h.count(0)
	h.ok(h.attach(tc1, ao{}), "attach tc1")
	h.ok(h.attach(tc2, ao{}), "attach tc2")
	h.order(3, tc1, tc2)
	h.traffic(1, 2)
	h.ok(h.attach(tc3, ao{Flags: fAfter, Relative: tc1}), "attach tc3 after fd tc1")
	h.order(4, tc1, tc3, tc2)
	h.expect(h.attach(tc4, ao{Flags: fAfter | fID, RelativeID: h.id(tc2)}), 0, 4, "attach tc4 after id tc2")
	h.order(5, tc1, tc3, tc2, tc4)
	h.traffic(1, 2, 3, 4)
	h.ok(h.detach(tc4, do{}), "detach tc4")
	h.order(6, tc1, tc3, tc2)
	h.ok(h.detach(tc3, do{}), "detach tc3")
	h.order(7, tc1, tc2)
	h.ok(h.detach(tc2, do{}), "detach tc2")
	h.order(8, tc1)
	h.expect(h.detach(tc1, do{}), 0, 0, "detach tc1")
}

func tcOptsRevision(h *hook) {
	tc1, tc2 := h.tc(1), h.tc(2)
	h.count(0)
	h.expect(h.attach(tc1, ao{ExpectedRevision: 1}), 0, 1, "attach tc1 rev 1")
	h.expect(h.attach(tc2, ao{ExpectedRevision: 1}), unix.ESTALE, 1, "attach tc2 rev 1")
	h.expect(h.attach(tc2, ao{ExpectedRevision: 2}), 0, 2, "attach tc2 rev 2")
	h.order(3, tc1, tc2)
	h.traffic(1, 2)
	h.expect(h.detach(tc2, do{ExpectedRevision: 2}), unix.ESTALE, 2, "detach tc2 rev 2")
	h.expect(h.detach(tc2, do{ExpectedRevision: 3}), 0, 1, "detach tc2 rev 3")
	h.expect(h.detach(tc1, do{}), 0, 0, "detach tc1")
}

// tcOptsChainClassic runs tcx programs in front of a classic cls_bpf filter
// (tc3 on a clsact qdisc), and without one.
func tcOptsChainClassic(h *hook) {
	for _, classic := range []bool{false, true} {
		h.variant(classicName(classic), func(v *hook) {
			tc1, tc2, tc3 := v.tc(1), v.tc(2), v.tc(3)
			v.count(0)
			v.classic(classic, tc3)
			v.ok(v.attach(tc1, ao{}), "attach tc1")
			v.expect(v.attach(tc2, ao{}), 0, 2, "attach tc2")
			v.traffic(ran(classic, 3, 1, 2)...)
			v.expect(v.detach(tc2, do{}), 0, 1, "detach tc2")
			v.traffic(ran(classic, 3, 1)...)
			v.ok(v.detach(tc1, do{}), "detach tc1")
			if classic {
				// The qdisc keeps the entry alive through the empty state,
				// so the revision keeps counting (4 commits since rev 1).
				v.order(5)
				v.unclassic()
			}
			v.order(1)
		})
	}
}

func classicName(classic bool) string {
	if classic {
		return "with_classic"
	}
	return "tcx_only"
}

// ran lists the probes expected to run: base, plus extra if cond.
func ran(cond bool, extra int, base ...int) []int {
	if cond {
		return append(base, extra)
	}
	return base
}

func tcOptsReplace(h *hook) {
	tc1, tc2, tc3 := h.tc(1), h.tc(2), h.tc(3)
	h.count(0)
	h.expect(h.attach(tc1, ao{ExpectedRevision: 1}), 0, 1, "attach tc1")
	h.expect(h.attach(tc2, ao{Flags: fBefore | fID, RelativeID: h.id(tc1), ExpectedRevision: 2}), 0, 2, "attach tc2 before id tc1")
	h.order(3, tc2, tc1)
	h.traffic(1, 2)
	h.expect(h.attach(tc3, ao{Flags: fReplace, Replace: tc2, ExpectedRevision: 3}), 0, 2, "replace tc2 by tc3")
	h.order(4, tc3, tc1)
	h.traffic(1, 3)
	h.ok(h.attach(tc2, ao{Flags: fReplace | fBefore, Replace: tc3, Relative: tc1, ExpectedRevision: 4}),
		"replace tc3 before tc1 by tc2")
	h.count(2)
	h.order(5, tc2, tc1)
	h.traffic(1, 2)
	h.expect(h.attach(tc2, ao{Flags: fReplace, Replace: tc2}), unix.EEXIST, 2, "replace tc2 by itself")
	h.fails(h.attach(tc3, ao{Flags: fReplace | fAfter, Replace: tc2, Relative: tc1, ExpectedRevision: 5}),
		unix.ERANGE, "replace tc2 after tc1")
	h.count(2)
	h.fails(h.attach(tc3, ao{Flags: fBefore | fAfter | fReplace, Replace: tc2, Relative: tc1, ExpectedRevision: 5}),
		unix.ERANGE, "replace tc2 before and after tc1")
	h.count(2)
	h.expect(h.detach(tc2, do{Flags: fBefore | fID, RelativeID: h.id(tc1), ExpectedRevision: 5}), 0, 1, "detach tc2 before id tc1")
	h.expect(h.detach(tc1, do{}), 0, 0, "detach tc1")
}

func tcOptsInvalid(h *hook) {
	tc1, tc2 := h.tc(1), h.tc(2)
	h.count(0)
	for _, c := range []struct {
		what string
		o    ao
		want unix.Errno
	}{
		{"before|after", ao{Flags: fBefore | fAfter}, unix.ERANGE},
		{"before|id 0", ao{Flags: fBefore | fID}, unix.ENOENT},
		{"after|id 0", ao{Flags: fAfter | fID}, unix.ENOENT},
		{"relative fd without flags", ao{Relative: tc2}, unix.EINVAL},
		{"before|after fd tc2", ao{Flags: fBefore | fAfter, Relative: tc2}, unix.ENOENT},
		{"id tc2 without position", ao{Flags: fID, RelativeID: h.id(tc2)}, unix.EINVAL},
		{"before fd tc1", ao{Flags: fBefore, Relative: tc1}, unix.ENOENT},
		{"after fd tc1", ao{Flags: fAfter, Relative: tc1}, unix.ENOENT},
	} {
		h.fails(h.attach(tc1, c.o), c.want, "attach tc1 "+c.what)
		h.count(0)
	}
	h.expect(h.attach(tc1, ao{}), 0, 1, "attach tc1")
	for _, c := range []struct {
		what string
		o    ao
		want unix.Errno
	}{
		{"again", ao{}, unix.EEXIST},
		{"before itself", ao{Flags: fBefore, Relative: tc1}, unix.EEXIST},
		{"after itself", ao{Flags: fAfter, Relative: tc1}, unix.EEXIST},
		// replace_bpf_fd 0 is not a program (it is stdin).
		{"replace fd 0 relative tc1", ao{Flags: fReplace, Relative: tc1}, unix.EINVAL},
		{"replacing itself", ao{Flags: fReplace, Replace: tc1}, unix.EEXIST},
	} {
		h.fails(h.attach(tc1, c.o), c.want, "attach tc1 "+c.what)
		h.count(1)
	}
	h.expect(h.detach(tc1, do{}), 0, 0, "detach tc1")
}

// tcOptsPend is tc_opts_prepend (flag BEFORE) and tc_opts_append (AFTER):
// tc1, then tc2 at the edge, then tc3 and tc4 at the same edge.
func tcOptsPend(flag tcx.Flags) func(h *hook) {
	return func(h *hook) {
		tc1, tc2, tc3, tc4 := h.tc(1), h.tc(2), h.tc(3), h.tc(4)
		order := func(s ...tcx.Program) []slot {
			if flag == fBefore {
				slices.Reverse(s)
			}
			out := make([]slot, len(s))
			for i, p := range s {
				out[i] = plain(p)
			}
			return out
		}
		h.count(0)
		h.expect(h.attach(tc1, ao{}), 0, 1, "attach tc1")
		h.expect(h.attach(tc2, ao{Flags: flag}), 0, 2, "attach tc2 at the edge")
		h.chain(3, order(tc1, tc2)...)
		h.traffic(1, 2)
		h.ok(h.attach(tc3, ao{Flags: flag}), "attach tc3 at the edge")
		h.expect(h.attach(tc4, ao{Flags: flag}), 0, 4, "attach tc4 at the edge")
		h.chain(5, order(tc1, tc2, tc3, tc4)...)
		h.traffic(1, 2, 3, 4)
		h.detachAll(tc4, tc3, tc2, tc1)
	}
}

// tcOptsDevCleanup attaches four plain programs to a veth end and deletes
// the pair with them attached: the device goes away, nothing leaks or hangs.
func tcOptsDevCleanup(h *hook) {
	ia, ib := h.veth()
	v := h.on(ia, h.dir)
	v.count(0)
	v.attach4()
	h.deleteVeth(ia, ib)
}

func tcOptsMixed(h *hook) {
	tc1, tc2, tc3, tc4 := h.tc(1), h.tc(2), h.tc(3), h.tc(4)
	h.count(0)
	h.expect(h.attach(tc1, ao{}), 0, 1, "attach tc1")
	l2 := h.mustLink(tc2, lo{})
	h.count(2)
	h.expect(h.attach(tc2, ao{Flags: fReplace, Replace: tc1}), unix.EEXIST, 2, "replace tc1 by linked tc2")
	h.expect(h.attach(tc1, ao{Flags: fReplace, Replace: tc2}), unix.EEXIST, 2, "replace linked tc2 by tc1")
	h.expect(h.attach(tc3, ao{Flags: fReplace, Replace: tc2}), unix.EBUSY, 2, "replace linked tc2 by tc3")
	h.expect(h.attach(tc3, ao{Flags: fReplace, Replace: tc1}), 0, 2, "replace tc1 by tc3")
	l4 := h.mustLink(tc4, lo{})
	h.count(3)
	h.fails(h.attach(tc2, ao{Flags: fReplace, Replace: tc4}), unix.EEXIST, "replace linked tc4 by linked tc2")
	h.chain(5, plain(tc3), linked(tc2, l2), linked(tc4, l4))
	h.ping()
	h.expect(h.detach(tc3, do{}), 0, 2, "detach tc3")
	h.destroy()
	h.count(0)
}

func tcOptsDemixed(h *hook) {
	tc1, tc2 := h.tc(1), h.tc(2)
	h.count(0)
	h.expect(h.attach(tc1, ao{}), 0, 1, "attach tc1")
	h.mustLink(tc2, lo{})
	h.count(2)
	h.expect(h.detach(nil, do{Flags: fAfter}), unix.EBUSY, 2, "detach last (the link)")
	h.expect(h.detach(nil, do{Flags: fBefore}), 0, 1, "detach first (tc1)")
	h.destroy()
	h.count(0)
}

func tcOptsDetach(h *hook) {
	tc1, tc2, tc3, tc4 := h.attach4()
	h.order(5, tc1, tc2, tc3, tc4)
	h.expect(h.detach(nil, do{Flags: fBefore}), 0, 3, "detach first")
	h.order(6, tc2, tc3, tc4)
	h.expect(h.detach(nil, do{Flags: fAfter}), 0, 2, "detach last")
	h.order(7, tc2, tc3)
	h.detachAll(tc3, tc2)
	h.fails(h.detach(nil, do{Flags: fBefore}), unix.ENOENT, "detach first of empty")
	h.fails(h.detach(nil, do{Flags: fAfter}), unix.ENOENT, "detach last of empty")
}

func tcOptsDetachBefore(h *hook) {
	tc1, tc2, tc3, tc4 := h.attach4()
	h.order(5, tc1, tc2, tc3, tc4)
	h.expect(h.detach(tc1, do{Flags: fBefore, Relative: tc2}), 0, 3, "detach tc1 before tc2")
	h.order(6, tc2, tc3, tc4)
	h.expect(h.detach(tc1, do{Flags: fBefore, Relative: tc2}), unix.ENOENT, 3, "detach tc1 before tc2 again")
	h.expect(h.detach(tc2, do{Flags: fBefore, Relative: tc4}), unix.ERANGE, 3, "detach tc2 before tc4")
	h.expect(h.detach(tc2, do{Flags: fBefore, Relative: tc1}), unix.ENOENT, 3, "detach tc2 before detached tc1")
	h.expect(h.detach(tc2, do{Flags: fBefore, Relative: tc3}), 0, 2, "detach tc2 before tc3")
	h.order(7, tc3, tc4)
	h.expect(h.detach(nil, do{Flags: fBefore, Relative: tc4}), 0, 1, "detach whatever is before tc4")
	h.order(8, tc4)
	h.expect(h.detach(nil, do{Flags: fBefore}), 0, 0, "detach first")
}

func tcOptsDetachAfter(h *hook) {
	tc1, tc2, tc3, tc4 := h.attach4()
	h.order(5, tc1, tc2, tc3, tc4)
	h.expect(h.detach(tc2, do{Flags: fAfter, Relative: tc1}), 0, 3, "detach tc2 after tc1")
	h.order(6, tc1, tc3, tc4)
	h.expect(h.detach(tc2, do{Flags: fAfter, Relative: tc1}), unix.ENOENT, 3, "detach tc2 after tc1 again")
	h.expect(h.detach(tc1, do{Flags: fAfter, Relative: tc4}), unix.ERANGE, 3, "detach tc1 after tc4")
	h.expect(h.detach(tc1, do{Flags: fAfter, Relative: tc3}), unix.ERANGE, 3, "detach tc1 after tc3")
	h.expect(h.detach(tc1, do{Flags: fAfter, Relative: tc1}), unix.ERANGE, 3, "detach tc1 after itself")
	h.expect(h.detach(tc3, do{Flags: fAfter, Relative: tc1}), 0, 2, "detach tc3 after tc1")
	h.order(7, tc1, tc4)
	h.expect(h.detach(nil, do{Flags: fAfter, Relative: tc1}), 0, 1, "detach whatever is after tc1")
	h.order(8, tc1)
	h.expect(h.detach(nil, do{Flags: fAfter}), 0, 0, "detach last")
}
