package conformance

import (
	"slices"

	"github.com/tcxgo/tcx"
	"golang.org/x/sys/unix"
)

// Scenarios of tools/testing/selftests/bpf/prog_tests/tc_links.c (BPF links:
// BPF_LINK_CREATE, BPF_LINK_UPDATE, BPF_LINK_DETACH and link release).

// info checks bpf_link_info of a tcx link.
func (h *hook) info(l tcx.Link, prog tcx.Program, ifindex int) {
	h.t.Helper()
	got, err := l.Info()
	if err != nil {
		h.t.Errorf("link %d info: %v", l.ID(), err)
		return
	}
	want := tcx.LinkInfo{ID: l.ID(), ProgramID: prog.ID(), Ifindex: uint32(ifindex), AttachType: h.dir.AttachType()}
	if got != want {
		h.t.Errorf("link info %+v, want %+v", got, want)
	}
}

// tcLinksBasic links tc1 to this direction and tc2 to the other one.
func tcLinksBasic(h *hook) {
	o := h.other()
	tc1, tc2 := h.tc(1), h.tc(2)
	h.count(0)
	o.count(0)
	l1 := h.mustLink(tc1, lo{})
	h.info(l1, tc1, h.ifindex)
	h.count(1)
	o.count(0)
	h.chain(2, linked(tc1, l1))
	h.traffic(1)
	l2 := o.mustLink(tc2, lo{})
	o.info(l2, tc2, h.ifindex)
	if h.id(l1) == h.id(l2) {
		h.t.Errorf("links share ID %d", l1.ID())
	}
	h.count(1)
	o.count(1)
	o.chain(2, linked(tc2, l2))
	h.traffic(1, 2)
	h.destroy()
	h.count(0)
	o.count(0)
}

// link2 is the opening of tc_links_before/after: links tc1 and tc2 in order,
// both run.
func (h *hook) link2() (l1, l2 tcx.Link) {
	h.t.Helper()
	tc1, tc2 := h.tc(1), h.tc(2)
	h.count(0)
	l1 = h.mustLink(tc1, lo{})
	h.count(1)
	l2 = h.mustLink(tc2, lo{})
	h.count(2)
	h.chain(3, linked(tc1, l1), linked(tc2, l2))
	h.traffic(1, 2)
	return l1, l2
}

func tcLinksBefore(h *hook) {
	tc1, tc2, tc3, tc4 := h.tc(1), h.tc(2), h.tc(3), h.tc(4)
	l1, l2 := h.link2()
	// A link may be placed relative to a program by its program handle.
	l3 := h.mustLink(tc3, lo{Flags: fBefore, Relative: tc2})
	l4 := h.mustLink(tc4, lo{Flags: fBefore | fLink | fID, RelativeID: h.id(l1)})
	h.count(4)
	h.chain(5, linked(tc4, l4), linked(tc1, l1), linked(tc3, l3), linked(tc2, l2))
	h.traffic(1, 2, 3, 4)
	h.destroy()
	h.count(0)
}

func tcLinksAfter(h *hook) {
	tc1, tc2, tc3, tc4 := h.tc(1), h.tc(2), h.tc(3), h.tc(4)
	l1, l2 := h.link2()
	l3 := h.mustLink(tc3, lo{Flags: fAfter, Relative: tc1})
	l4 := h.mustLink(tc4, lo{Flags: fAfter | fLink, Relative: l2})
	h.count(4)
	h.chain(5, linked(tc1, l1), linked(tc3, l3), linked(tc2, l2), linked(tc4, l4))
	h.traffic(1, 2, 3, 4)
	h.destroy()
	h.count(0)
}

func tcLinksRevision(h *hook) {
	tc1, tc2 := h.tc(1), h.tc(2)
	h.count(0)
	l1 := h.mustLink(tc1, lo{ExpectedRevision: 1})
	h.count(1)
	_, err := h.link(tc2, lo{ExpectedRevision: 1})
	h.expect(err, unix.ESTALE, 1, "link tc2 at revision 1")
	l2 := h.mustLink(tc2, lo{ExpectedRevision: 2})
	h.count(2)
	h.chain(3, linked(tc1, l1), linked(tc2, l2))
	h.traffic(1, 2)
	h.destroy()
	h.count(0)
}

func tcLinksChainClassic(h *hook) {
	for _, classic := range []bool{false, true} {
		h.variant(classicName(classic), func(v *hook) {
			tc1, tc2, tc3 := v.tc(1), v.tc(2), v.tc(3)
			v.count(0)
			v.classic(classic, tc3)
			v.mustLink(tc1, lo{})
			l2 := v.mustLink(tc2, lo{})
			v.count(2)
			v.traffic(ran(classic, 3, 1, 2)...)
			v.ok(l2.Detach(), "detach link tc2")
			v.count(1)
			v.traffic(ran(classic, 3, 1)...)
			if classic {
				v.unclassic()
			}
			v.count(1)
			v.destroy()
			v.count(0)
		})
	}
}

func tcLinksReplace(h *hook) {
	tc1, tc2, tc3 := h.tc(1), h.tc(2), h.tc(3)
	h.count(0)
	l1 := h.mustLink(tc1, lo{ExpectedRevision: 1})
	h.count(1)
	l2 := h.mustLink(tc2, lo{Flags: fBefore | fID, RelativeID: h.id(tc1), ExpectedRevision: 2})
	h.count(2)
	h.chain(3, linked(tc2, l2), linked(tc1, l1))
	h.traffic(1, 2)
	// A link can never replace: REPLACE finds no plain slot of "no program".
	for _, c := range []struct {
		what string
		o    lo
	}{
		{"replace relative prog tc2", lo{Flags: fReplace, Relative: tc2, ExpectedRevision: 3}},
		{"replace relative link tc2", lo{Flags: fReplace | fLink, Relative: l2, ExpectedRevision: 3}},
		{"replace after link id tc2", lo{Flags: fReplace | fLink | fAfter | fID, RelativeID: h.id(l2)}},
	} {
		_, err := h.link(tc3, c.o)
		h.fails(err, unix.ENOENT, "link tc3 "+c.what)
		h.count(2)
	}
	h.ok(l2.Update(tc3, tcx.UpdateOptions{}), "update link tc2 to tc3")
	h.count(2)
	h.chain(4, linked(tc3, l2), linked(tc1, l1))
	h.traffic(1, 3)
	h.ok(l2.Detach(), "detach link tc2")
	h.count(1)
	h.chain(5, linked(tc1, l1))
	h.traffic(1)
	h.ok(l1.Update(tc1, tcx.UpdateOptions{}), "update link tc1 to itself")
	h.count(1)
	h.chain(5, linked(tc1, l1))
	h.traffic(1)
	h.destroy()
	h.count(0)
}

func tcLinksInvalid(h *hook) {
	tc1, tc2 := h.tc(1), h.tc(2)
	h.count(0)
	fail := func(p tcx.Program, ifindex int, o lo, what string, want ...unix.Errno) {
		h.t.Helper()
		l, err := h.b.CreateLink(ifindex, h.dir, p, o)
		if err == nil {
			h.objs.links = append(h.objs.links, l)
		}
		h.failsOneOf(err, "link "+p.Name()+" "+what, want...)
	}
	for _, c := range []struct {
		what string
		o    lo
		want []unix.Errno
	}{
		{"before|after", lo{Flags: fBefore | fAfter}, []unix.Errno{unix.ERANGE}},
		{"before|id 0", lo{Flags: fBefore | fID}, []unix.Errno{unix.ENOENT}},
		{"after|id 0", lo{Flags: fAfter | fID}, []unix.Errno{unix.ENOENT}},
		{"id 0", lo{Flags: fID}, []unix.Errno{unix.ENOENT}},
		{"link flag on a program handle", lo{Flags: fLink, Relative: tc2}, []unix.Errno{unix.EINVAL}},
		{"link flag on fd 0", lo{Flags: fLink}, []unix.Errno{unix.EINVAL}},
		{"relative without flags", lo{Relative: tc2}, []unix.Errno{unix.EINVAL}},
		{"before|after tc2", lo{Flags: fBefore | fAfter, Relative: tc2}, []unix.Errno{unix.ENOENT}},
		{"before itself", lo{Flags: fBefore, Relative: tc1}, []unix.Errno{unix.ENOENT}},
		{"id tc2 without position", lo{Flags: fID, RelativeID: h.id(tc2)}, []unix.Errno{unix.EINVAL}},
		// ID 42 may name some other program on the machine (then the
		// relative resolves and the missing position gives EINVAL).
		{"id 42", lo{Flags: fID, RelativeID: 42}, []unix.Errno{unix.ENOENT, unix.EINVAL}},
		{"before itself again", lo{Flags: fBefore, Relative: tc1}, []unix.Errno{unix.ENOENT}},
		{"before|link on a program handle", lo{Flags: fBefore | fLink, Relative: tc1}, []unix.Errno{unix.EINVAL}},
		{"after itself", lo{Flags: fAfter, Relative: tc1}, []unix.Errno{unix.ENOENT}},
	} {
		fail(tc1, h.ifindex, c.o, c.what, c.want...)
		h.count(0)
	}
	// libbpf refuses ifindex 0 itself (EINVAL); the kernel finds no device.
	fail(tc1, 0, lo{}, "on ifindex 0", unix.ENODEV)
	h.count(0)
	fail(tc1, h.ifindex, lo{Flags: fAfter | fLink, Relative: tc1}, "after|link on a program handle", unix.EINVAL)
	h.count(0)
	l1 := h.mustLink(tc1, lo{})
	h.count(1)
	fail(tc2, h.ifindex, lo{Flags: fAfter | fLink, Relative: tc1}, "after|link on a program handle", unix.EINVAL)
	h.count(1)
	fail(tc2, h.ifindex, lo{Flags: fBefore | fLink | fID, RelativeID: ^uint32(0)}, "before unknown link id", unix.ENOENT)
	h.count(1)
	fail(tc1, h.ifindex, lo{Flags: fBefore | fLink | fID, RelativeID: h.id(l1)}, "before its own link", unix.EEXIST)
	h.count(1)
	fail(tc1, h.ifindex, lo{Flags: fBefore | fID, RelativeID: h.id(tc1)}, "before itself by id", unix.EEXIST)
	h.count(1)
	h.mustLink(tc2, lo{Flags: fBefore | fLink | fID, RelativeID: h.id(l1)})
	h.count(2)
	h.destroy()
	h.count(0)
}

// tcLinksPend is tc_links_prepend (BEFORE) and tc_links_append (AFTER).
func tcLinksPend(flag tcx.Flags) func(h *hook) {
	return func(h *hook) {
		progs := []tcx.Program{h.tc(1), h.tc(2), h.tc(3), h.tc(4)}
		links := make([]tcx.Link, 4)
		order := func(n int) []slot {
			s := make([]slot, n)
			for i := range n {
				s[i] = linked(progs[i], links[i])
			}
			if flag == fBefore {
				slices.Reverse(s)
			}
			return s
		}
		h.count(0)
		links[0] = h.mustLink(progs[0], lo{})
		h.count(1)
		links[1] = h.mustLink(progs[1], lo{Flags: flag})
		h.count(2)
		h.chain(3, order(2)...)
		h.traffic(1, 2)
		links[2] = h.mustLink(progs[2], lo{Flags: flag})
		links[3] = h.mustLink(progs[3], lo{Flags: flag})
		h.count(4)
		h.chain(5, order(4)...)
		h.traffic(1, 2, 3, 4)
		h.destroy()
		h.count(0)
	}
}

// link4 links tc1..tc4 to the hook in order, checking the count after each.
func (h *hook) link4() []tcx.Link {
	h.t.Helper()
	links := make([]tcx.Link, 4)
	for i := range links {
		links[i] = h.mustLink(h.tc(i+1), lo{})
		h.count(uint32(i + 1))
	}
	return links
}

// defunct checks that every link lost its device (tcx.ifindex == 0) and
// can still be closed.
func (h *hook) defunct(links []tcx.Link) {
	h.t.Helper()
	for i, l := range links {
		info, err := l.Info()
		if err != nil {
			h.t.Errorf("link tc%d info: %v", i+1, err)
			continue
		}
		if info.Ifindex != 0 {
			h.t.Errorf("link tc%d: ifindex %d after device deletion, want 0", i+1, info.Ifindex)
		}
	}
	h.destroy()
}

// tcLinksDevCleanup deletes a veth pair under four links.
func tcLinksDevCleanup(h *hook) {
	ia, ib := h.veth()
	links := h.on(ia, h.dir).link4()
	h.deleteVeth(ia, ib)
	h.defunct(links)
}

func tcLinksChainMixed(h *hook) {
	tc4, tc5, tc6 := h.tc(4), h.tc(5), h.tc(6)
	h.count(0)
	h.classic(true, tc5)
	l6 := h.mustLink(tc6, lo{})
	h.count(1)
	h.traffic(6)
	h.ok(l6.Update(tc4, tcx.UpdateOptions{}), "update link tc6 to tc4")
	h.count(1)
	h.traffic(4, 5)
	h.ok(l6.Detach(), "detach link")
	h.count(0)
	h.traffic(5)
	h.unclassic()
	h.destroy()
}

// tcLinksIngress shares lo with the old "ingress" qdisc (not clsact) and a
// cls_bpf tc3 under it, tearing down in both orders. The selftest runs on
// ingress only; on egress the links sit on the egress hook while the ingress
// qdisc still sees the looped-back traffic, which checks that an ingress
// qdisc neither disturbs nor is disturbed by the egress tcx entry.
func tcLinksIngress(h *hook) {
	for _, c := range []struct {
		name            string
		qdisc, tcxFirst bool
	}{
		{"qdisc_tcx_teardown_first", true, true},
		{"qdisc_qdisc_teardown_first", true, false},
		{"no_qdisc", false, false},
	} {
		h.variant(c.name, func(v *hook) {
			tc1, tc2, tc3 := v.tc(1), v.tc(2), v.tc(3)
			v.count(0)
			if c.qdisc {
				v.qdisc(v.ifindex, Ingress)
				v.filter(v.ifindex, tcx.Ingress, tc3)
			}
			v.mustLink(tc1, lo{})
			l2 := v.mustLink(tc2, lo{})
			v.count(2)
			v.traffic(ran(c.qdisc, 3, 1, 2)...)
			v.ok(l2.Detach(), "detach link tc2")
			v.count(1)
			v.traffic(ran(c.qdisc, 3, 1)...)
			if c.qdisc {
				v.ok(v.env.DeleteClassicFilter(v.ifindex, tcx.Ingress), "delete cls_bpf")
			}
			v.ping()
			v.count(1)
			if c.qdisc && c.tcxFirst {
				v.ok(v.env.DeleteQdisc(v.ifindex, Ingress), "delete ingress qdisc")
			}
			v.ping()
			v.destroy()
			v.ping()
			if c.qdisc && !c.tcxFirst {
				v.ok(v.env.DeleteQdisc(v.ifindex, Ingress), "delete ingress qdisc")
			}
			v.ping()
			v.count(0)
		})
	}
}

// tcLinksDevChain0 is the regression test for the miniq_active counter
// (an ingress qdisc replaced by clsact on a veth, then a filter added, then
// the device deleted). The kernel test uses a shared block with a matchall
// skbmod action, which the Env cannot express; the closest equivalent on both
// backends replaces an ingress qdisc that carries a cls_bpf filter by clsact,
// adds a cls_bpf filter on the hook, checks that the tcx side of the hook
// stayed empty and usable (revision 1, an attach and detach work), and
// deletes the pair.
func tcLinksDevChain0(h *hook) {
	ia, ib := h.veth()
	d := h.on(ia, h.dir)
	tc3, tc5 := h.tc(3), h.tc(5)
	h.qdisc(ia, Ingress)
	h.filter(ia, tcx.Ingress, tc3)
	h.ok(h.env.DeleteQdisc(ia, Ingress), "delete ingress qdisc")
	h.qdisc(ia, Clsact)
	d.order(1)
	d.other().chain(1)
	h.filter(ia, h.dir, tc5)
	l := d.mustLink(h.tc(1), lo{})
	d.chain(2, linked(h.tc(1), l))
	h.ok(l.Detach(), "detach link")
	d.count(0)
	h.deleteVeth(ia, ib)
	h.destroy()
}

// tcLinksDevMixed deletes a veth pair under four links and a clsact qdisc
// with a cls_bpf filter on the same hook.
func tcLinksDevMixed(h *hook) {
	ia, ib := h.veth()
	links := h.on(ia, h.dir).link4()
	h.qdisc(ia, Clsact)
	h.filter(ia, h.dir, h.tc(5))
	h.deleteVeth(ia, ib)
	h.defunct(links)
}
