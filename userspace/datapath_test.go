package userspace_test

import (
	"slices"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// TestRuntime_Transmit_Verdicts: a chain runs until the first program that
// does not return NEXT; PASS, DROP and REDIRECT are final; every other code
// stops the chain too but then counts as NEXT.
func TestRuntime_Transmit_Verdicts(t *testing.T) {
	for _, c := range []struct {
		second int32
		fate   userspace.Fate
		third  bool // the program after the second one ran
	}{
		{tcx.VerdictNext, userspace.Delivered, true},
		{tcx.VerdictPass, userspace.Delivered, false},
		{tcx.VerdictDrop, userspace.Dropped, false},
		{1, userspace.Delivered, false}, // RECLASSIFY
		{4, userspace.Delivered, false}, // STOLEN: only classic tc may steal
		{8, userspace.Delivered, false}, // TRAP
		{-2, userspace.Delivered, false},
		{99, userspace.Delivered, false},
	} {
		e := newEnv(t)
		p := []tcx.Program{e.prog(tcx.VerdictNext), e.prog(c.second), e.prog(tcx.VerdictNext)}
		for _, q := range p {
			e.mustAttach(lo, tcx.Ingress, q, tcx.AttachOptions{})
		}
		out := e.rt.Receive(lo, frame)
		ran := e.ran()
		if out.Fate != c.fate || ran[0] != 1 || ran[1] != 1 || (ran[2] == 1) != c.third {
			t.Errorf("second returns %d: fate %v, runs %v", c.second, out.Fate, ran)
		}
		want := c.second
		if want != tcx.VerdictPass && want != tcx.VerdictDrop {
			want = tcx.VerdictNext
		}
		if out.Verdict != want {
			t.Errorf("second returns %d: verdict %d, want %d", c.second, out.Verdict, want)
		}
	}
}

func TestRuntime_Transmit_Paths(t *testing.T) {
	e := newEnv(t)
	va, vb, err := e.rt.AddVethPair("va", "vb")
	isErr(t, err, nil)
	if vb != 2 || va != 3 {
		t.Fatalf("veth ifindexes %d %d: the peer registers first", va, vb)
	}
	dummy, err := e.rt.AddDevice("dummy0")
	isErr(t, err, nil)
	var seen []int
	spy, _ := e.rt.NewProgram("spy", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		seen = append(seen, int(p.Ifindex)*10+int(p.Direction()))
		return tcx.VerdictNext
	}))
	for _, d := range []int{lo, va, vb, dummy} {
		for _, dir := range dirs {
			e.mustAttach(d, dir, spy, tcx.AttachOptions{})
		}
	}
	for _, c := range []struct {
		send  func() userspace.Outcome
		fate  userspace.Fate
		where int
		path  []int
	}{
		{func() userspace.Outcome { return e.rt.Transmit(lo, frame) }, userspace.Delivered, lo, []int{11, 10}},
		{func() userspace.Outcome { return e.rt.Transmit(va, frame) }, userspace.Delivered, vb, []int{31, 20}},
		{func() userspace.Outcome { return e.rt.Transmit(dummy, frame) }, userspace.Transmitted, dummy, []int{41}},
		{func() userspace.Outcome { return e.rt.Receive(vb, frame) }, userspace.Delivered, vb, []int{20}},
		{func() userspace.Outcome { return e.rt.Transmit(42, frame) }, userspace.Dropped, 42, nil},
	} {
		seen = seen[:0]
		c := struct {
			out   userspace.Outcome
			fate  userspace.Fate
			where int
			path  []int
		}{c.send(), c.fate, c.where, c.path}
		if c.out.Fate != c.fate || c.out.Ifindex != c.where || !slices.Equal(seen, c.path) {
			t.Errorf("outcome %v at %d via %v, want %v at %d via %v", c.out.Fate, c.out.Ifindex, seen, c.fate, c.where, c.path)
		}
		seen = seen[:0]
	}
}

func TestRuntime_Transmit_Redirect(t *testing.T) {
	e := newEnv(t)
	va, vb, _ := e.rt.AddVethPair("va", "vb")
	dummy, _ := e.rt.AddDevice("dummy0")
	target, ingress := 0, false
	redir, _ := e.rt.NewProgram("redir", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		if target == 0 {
			return tcx.VerdictRedirect // no bpf_redirect call
		}
		var flags uint64
		if ingress {
			flags = skb.FIngress
		}
		return int32(p.Redirect(uint32(target), flags))
	}))
	e.mustAttach(lo, tcx.Ingress, redir, tcx.AttachOptions{})
	for _, c := range []struct {
		target  int
		ingress bool
		fate    userspace.Fate
		where   int
	}{
		{va, false, userspace.Delivered, vb}, // out of va, into vb
		{vb, true, userspace.Delivered, vb},  // straight into vb
		{dummy, false, userspace.Transmitted, dummy},
		{0, false, userspace.Dropped, 0},   // no bpf_redirect call
		{77, false, userspace.Dropped, 77}, // no such device
		{lo, true, userspace.Looped, lo},   // back into the same hook
	} {
		target, ingress = c.target, c.ingress
		out := e.rt.Transmit(lo, frame)
		if out.Fate != c.fate || out.Ifindex != c.where || out.Redirects == 0 || out.RedirectedTo != c.target {
			t.Errorf("redirect to %d ingress=%v: %v at %d after %d redirects", c.target, c.ingress, out.Fate, out.Ifindex, out.Redirects)
		}
		if out.Fate == userspace.Looped && out.Hooks != userspace.MaxHops {
			t.Errorf("loop ended after %d hooks", out.Hooks)
		}
	}
}

// TestRuntime_Transmit_Metadata: programs see and change the packet; PASS
// copies tc_classid into tc_index.
func TestRuntime_Transmit_Metadata(t *testing.T) {
	e := newEnv(t)
	set, _ := e.rt.NewProgram("set", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		p.Mark, p.TCClassid = 0xbeef, 0x0002
		return tcx.VerdictNext
	}))
	pass, _ := e.rt.NewProgram("pass", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		if p.Mark != 0xbeef || p.Direction() != tcx.Egress || p.Ifindex != lo {
			return tcx.VerdictDrop
		}
		return tcx.VerdictPass
	}))
	e.mustAttach(lo, tcx.Egress, set, tcx.AttachOptions{})
	e.mustAttach(lo, tcx.Egress, pass, tcx.AttachOptions{})
	p := &userspace.Packet{}
	isErr(t, p.ResetXmit(frame, lo), nil)
	out := e.rt.TransmitPacket(p)
	if out.Fate != userspace.Delivered || out.Packet != p || p.TCIndex != 2 || p.Mark != 0xbeef || p.IngressIfindex != lo {
		t.Fatalf("outcome %+v", out)
	}
}

// TestRuntime_DeleteDevice is tc_opts_dev_cleanup, tc_links_dev_cleanup and
// tc_links_dev_mixed.
func TestRuntime_DeleteDevice(t *testing.T) {
	e := newEnv(t)
	va, vb, err := e.rt.AddVethPair("tcx_opts1", "tcx_opts2")
	isErr(t, err, nil)
	_, _, err = e.rt.AddVethPair("tcx_opts1", "x")
	isErr(t, err, syscall.EEXIST)
	_, err = e.rt.AddDevice("tcx_opts2")
	isErr(t, err, syscall.EEXIST)
	p := e.progs(8)
	for _, q := range p[:4] {
		e.mustAttach(va, tcx.Ingress, q, tcx.AttachOptions{})
	}
	var links []tcx.Link
	for _, q := range p[4:] {
		links = append(links, e.mustLink(va, tcx.Egress, q, tcx.LinkOptions{}))
	}
	isErr(t, e.rt.AddQdisc(va, userspace.QdiscClsact), nil)
	cls := e.prog(tcx.VerdictPass)
	isErr(t, e.rt.AddFilter(va, tcx.Egress, userspace.Filter{Priority: 1, Handle: 1, Program: cls}), nil)
	ids := []uint32{p[0].ID(), cls.ID()}
	for _, q := range slices.Concat(p[:4], []tcx.Program{cls}) {
		isErr(t, q.Close(), nil)
	}
	isErr(t, e.rt.DeleteDevice(vb), nil) // the peer takes va along
	if _, ok := e.rt.Ifindex("tcx_opts1"); ok {
		t.Fatal("peer survived")
	}
	_, err = e.rt.Query(va, tcx.Ingress, tcx.QueryOptions{})
	isErr(t, err, syscall.ENODEV)
	isErr(t, e.rt.Attach(va, tcx.Ingress, p[4], tcx.AttachOptions{}), syscall.ENODEV)
	for _, id := range ids {
		_, err := e.rt.ProgramByID(id)
		isErr(t, err, syscall.ENOENT) // attachment and filter references dropped
	}
	for i, l := range links {
		info, err := l.Info()
		if err != nil || info.Ifindex != 0 || info.ProgramID != p[4+i].ID() {
			t.Fatalf("link after device deletion: %+v %v", info, err)
		}
		isErr(t, l.Update(p[0], tcx.UpdateOptions{}), syscall.EBADF) // p[0] closed
		isErr(t, l.Update(p[5-i%2], tcx.UpdateOptions{}), userspace.ErrNoLink)
		isErr(t, l.Detach(), nil)
		isErr(t, l.Close(), nil)
	}
	isErr(t, e.rt.DeleteDevice(lo), syscall.EOPNOTSUPP)
	isErr(t, e.rt.DeleteDevice(va), syscall.ENODEV)
	if out := e.rt.Transmit(va, frame); out.Fate != userspace.Dropped {
		t.Fatalf("transmit on a deleted device: %v", out.Fate)
	}
}
