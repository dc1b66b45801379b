package userspace_test

import (
	"slices"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// TestRuntime_Classic_Chain is tc_opts_chain_classic and
// tc_links_chain_classic: classic tc runs after a tcx chain ending in NEXT.
func TestRuntime_Classic_Chain(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		for _, classic := range []bool{false, true} {
			e := newEnv(t)
			p := e.progs(3)
			if classic {
				isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
				isErr(t, e.rt.AddFilter(lo, dir, userspace.Filter{Priority: 1, Handle: 1, Program: p[2]}), nil)
			}
			e.mustAttach(lo, dir, p[0], tcx.AttachOptions{})
			l := e.mustLink(lo, dir, p[1], tcx.LinkOptions{})
			cls := int64(0)
			if classic {
				cls = 1
			}
			e.rt.Transmit(lo, frame)
			if got := e.ran(); !slices.Equal(got, []int64{1, 1, cls}) {
				t.Fatalf("classic=%v: runs %v", classic, got)
			}
			isErr(t, l.Detach(), nil)
			e.rt.Transmit(lo, frame)
			if got := e.ran(); !slices.Equal(got, []int64{1, 0, cls}) {
				t.Fatalf("classic=%v after detach: runs %v", classic, got)
			}
			isErr(t, e.rt.Detach(lo, dir, p[0], tcx.DetachOptions{}), nil)
			if e.count(lo, dir) != 0 {
				t.Fatal("count after detach")
			}
			// tc_opts_delete_empty: with or without an entry kept by
			// the qdisc, a positional detach finds nothing.
			isErr(t, e.rt.Detach(lo, dir, nil, tcx.DetachOptions{}), syscall.ENOENT)
			e.rt.Transmit(lo, frame)
			if got := e.ran(); !slices.Equal(got, []int64{0, 0, cls}) {
				t.Fatalf("classic=%v empty tcx: runs %v", classic, got)
			}
		}
	})
}

// TestRuntime_Classic_Mixed is tc_opts_chain_mixed / tc_links_chain_mixed.
func TestRuntime_Classic_Mixed(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		tc4, tc5, tc6 := e.prog(tcx.VerdictNext), e.prog(tcx.VerdictPass), e.prog(tcx.VerdictPass)
		isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
		isErr(t, e.rt.AddFilter(lo, dir, userspace.Filter{Priority: 1, Handle: 1, Program: tc5}), nil)
		l := e.mustLink(lo, dir, tc6, tcx.LinkOptions{})
		e.rt.Transmit(lo, frame)
		if got := e.ran(); !slices.Equal(got, []int64{0, 0, 1}) {
			t.Fatalf("runs %v", got)
		}
		isErr(t, l.Update(tc4, tcx.UpdateOptions{}), nil)
		e.rt.Transmit(lo, frame)
		if got := e.ran(); !slices.Equal(got, []int64{1, 1, 0}) {
			t.Fatalf("after update: runs %v", got)
		}
		isErr(t, l.Detach(), nil)
		e.rt.Transmit(lo, frame)
		if got := e.ran(); !slices.Equal(got, []int64{0, 1, 0}) || e.count(lo, dir) != 0 {
			t.Fatalf("after detach: runs %v", got)
		}
	})
}

// TestRuntime_Classic_Revision: while a qdisc holds the hook's entry the
// revision keeps counting through empty states; once the entry is freed
// it starts at 1 again.
func TestRuntime_Classic_Revision(t *testing.T) {
	e := newEnv(t)
	p := e.progs(1)
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscIngress), syscall.EEXIST)
	e.chain(lo, tcx.Egress, 1, nil, nil)
	e.mustAttach(lo, tcx.Egress, p[0], tcx.AttachOptions{ExpectedRevision: 1})
	isErr(t, e.rt.Detach(lo, tcx.Egress, p[0], tcx.DetachOptions{}), nil)
	e.chain(lo, tcx.Egress, 3, nil, nil)
	e.mustAttach(lo, tcx.Egress, p[0], tcx.AttachOptions{ExpectedRevision: 3})
	isErr(t, e.rt.DeleteQdisc(lo), nil)
	e.chain(lo, tcx.Egress, 4, p, nil) // programs keep the entry
	isErr(t, e.rt.Detach(lo, tcx.Egress, p[0], tcx.DetachOptions{}), nil)
	e.chain(lo, tcx.Egress, 1, nil, nil)
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
	isErr(t, e.rt.DeleteQdisc(lo), nil)
	isErr(t, e.rt.DeleteQdisc(lo), syscall.EINVAL) // lo keeps its ingress queue
	isErr(t, e.rt.AddQdisc(9, userspace.QdiscClsact), syscall.ENODEV)
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscNone), syscall.ENOENT) // no such kind
	e.chain(lo, tcx.Egress, 1, nil, nil)
}

// TestRuntime_Classic_Ingress is tc_links_ingress: the old ingress qdisc
// runs its filters on ingress only, also one added from the egress side;
// teardown in either order leaves nothing behind.
func TestRuntime_Classic_Ingress(t *testing.T) {
	for _, qdiscFirst := range []bool{false, true} {
		e := newEnv(t)
		p := e.progs(3)
		isErr(t, e.rt.AddQdisc(lo, userspace.QdiscIngress), nil)
		isErr(t, e.rt.AddFilter(lo, tcx.Egress, userspace.Filter{Priority: 1, Handle: 1, Program: p[2]}), nil)
		isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 1, Handle: 1, Program: p[2]}), syscall.EEXIST)
		l1 := e.mustLink(lo, tcx.Ingress, p[0], tcx.LinkOptions{})
		l2 := e.mustLink(lo, tcx.Ingress, p[1], tcx.LinkOptions{})
		e.rt.Transmit(lo, frame)
		if got := e.ran(); !slices.Equal(got, []int64{1, 1, 1}) {
			t.Fatalf("runs %v", got)
		}
		isErr(t, l2.Detach(), nil)
		if qdiscFirst {
			isErr(t, e.rt.DeleteQdisc(lo), nil)
		}
		isErr(t, l1.Close(), nil)
		isErr(t, l2.Close(), nil)
		if !qdiscFirst {
			e.chain(lo, tcx.Ingress, 5, nil, nil) // the qdisc keeps the entry
			isErr(t, e.rt.DeleteQdisc(lo), nil)
		}
		e.chain(lo, tcx.Ingress, 1, nil, nil)
		if out := e.rt.Transmit(lo, frame); out.Fate != userspace.Delivered || slices.Max(e.ran()) != 0 {
			t.Fatal("traffic after teardown")
		}
	}
}

// TestRuntime_Classic_Filters: order (priority, then newest first), replace
// in place, deletion, and cls_bpf direct-action codes: OK, SHOT, STOLEN,
// TRAP and REDIRECT decide, every other code moves on to the next filter.
func TestRuntime_Classic_Filters(t *testing.T) {
	e := newEnv(t)
	var order []string
	mk := func(name string, verdict *int32) tcx.Program {
		p, err := e.rt.NewProgram(name, userspace.RunnerFunc(func(p *userspace.Packet) int32 {
			order = append(order, name)
			return *verdict
		}))
		isErr(t, err, nil)
		return p
	}
	next, v := int32(tcx.VerdictNext), int32(0)
	a, b, c, d := mk("a", &next), mk("b", &next), mk("c", &next), mk("d", &v)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 1, Program: a}), syscall.EINVAL) // no qdisc
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 2, Handle: 1, Program: a}), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 1, Handle: 1, Program: b}), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 2, Handle: 2, Program: c}), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 3, Handle: 1, Classid: 0x10005, Program: d}), nil)
	for _, cse := range []struct {
		code int32
		fate userspace.Fate
	}{
		{0, userspace.Delivered}, {2, userspace.Dropped}, {4, userspace.Consumed}, {8, userspace.Consumed},
		{1, userspace.Delivered}, {3, userspace.Delivered}, {5, userspace.Delivered}, {6, userspace.Delivered},
	} {
		v = cse.code
		order = order[:0]
		var p userspace.Packet
		isErr(t, p.Reset(frame, skb.Device{Ifindex: lo}), nil)
		out := e.rt.ReceivePacket(&p)
		if out.Fate != cse.fate || !slices.Equal(order, []string{"b", "c", "a", "d"}) {
			t.Errorf("code %d: %v, order %v", cse.code, out.Fate, order)
		}
		if cse.code == 0 && out.Packet.TCIndex != 5 {
			t.Errorf("OK: tc_index %d, want classid minor 5", out.Packet.TCIndex)
		}
	}
	// Add refuses a taken priority and handle; replace keeps the position.
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 2, Handle: 2, Program: d}), syscall.EEXIST)
	isErr(t, e.rt.ReplaceFilter(lo, tcx.Ingress, userspace.Filter{Priority: 2, Handle: 2, Program: d}), nil)
	order = order[:0]
	v = 0
	e.rt.Receive(lo, frame)
	if !slices.Equal(order, []string{"b", "d"}) {
		t.Errorf("after replace: %v", order)
	}
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 2, 9), syscall.ENOENT)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 2, 0), nil)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Egress, 2, 0), syscall.ENOENT)
	order = order[:0]
	e.rt.Receive(lo, frame)
	if !slices.Equal(order, []string{"b", "d"}) {
		t.Errorf("after delete: %v", order)
	}
	// Automatic priority and handle: with only priorities below 0x8000 in
	// use, tc picks 0xc000, so the new filter runs last.
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Program: c}), nil)
	order, v = order[:0], next
	e.rt.Receive(lo, frame)
	if !slices.Equal(order, []string{"b", "d", "c"}) {
		t.Errorf("auto priority: %v", order)
	}
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 0xc000, 2), syscall.ENOENT)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 0xc000, 1), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Program: c}), nil)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 0, 0), nil)
	order = order[:0]
	e.rt.Receive(lo, frame)
	if len(order) != 0 {
		t.Errorf("after deleting all: %v", order)
	}
}
