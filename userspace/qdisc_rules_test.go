package userspace_test

import (
	"slices"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/userspace"
)

// The classic tc rules below were each checked against Linux 6.18 with the
// same netlink requests the kernel backend sends (internal/testkit/conformance's
// differential test keeps checking them).

// recorder loads programs that log their name on every run and then
// return NEXT, so a packet walks every filter of a block.
type recorder struct {
	e     *env
	order []string
}

func (r *recorder) prog(name string) tcx.Program {
	r.e.t.Helper()
	p, err := r.e.rt.NewProgram(name, userspace.RunnerFunc(func(*userspace.Packet) int32 {
		r.order = append(r.order, name)
		return tcx.VerdictNext
	}))
	isErr(r.e.t, err, nil)
	return p
}

// ran returns the names logged since the last call.
func (r *recorder) ran() []string {
	out := r.order
	r.order = nil
	return out
}

// TestRuntime_AddFilter_IngressQdiscEgressSide: the old ingress qdisc has
// one filter block, and a filter named from the egress side lands in it:
// it runs on ingress only, collides with the same priority and handle from
// either side, and either side deletes it.
func TestRuntime_AddFilter_IngressQdiscEgressSide(t *testing.T) {
	e := newEnv(t)
	r := &recorder{e: e}
	dev, err := e.rt.AddDevice("d0") // transmits without looping back
	isErr(t, err, nil)
	a, b := r.prog("a"), r.prog("b")
	isErr(t, e.rt.AddFilter(dev, tcx.Egress, userspace.Filter{Priority: 1, Handle: 1, Program: a}), syscall.EINVAL)
	isErr(t, e.rt.AddQdisc(dev, userspace.QdiscIngress), nil)
	isErr(t, e.rt.AddFilter(dev, tcx.Egress, userspace.Filter{Priority: 1, Handle: 1, Program: a}), nil)
	isErr(t, e.rt.AddFilter(dev, tcx.Egress, userspace.Filter{Priority: 1, Handle: 1, Program: b}), syscall.EEXIST)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, userspace.Filter{Priority: 1, Handle: 1, Program: b}), syscall.EEXIST)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, userspace.Filter{Priority: 1, Handle: 2, Program: b}), nil)
	if out := e.rt.Transmit(dev, frame); out.Fate != userspace.Transmitted || len(r.ran()) != 0 {
		t.Fatalf("egress ran classic filters: %v", out.Fate)
	}
	e.rt.Receive(dev, frame)
	if got := r.ran(); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("ingress ran %v, want [b a]", got)
	}
	isErr(t, e.rt.DeleteFilter(dev, tcx.Egress, 1, 1), nil)
	isErr(t, e.rt.DeleteFilter(dev, tcx.Egress, 1, 1), syscall.ENOENT)
	isErr(t, e.rt.DeleteFilter(dev, tcx.Ingress, 1, 1), syscall.ENOENT)
	e.rt.Receive(dev, frame)
	if got := r.ran(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after delete ran %v", got)
	}
	isErr(t, e.rt.DeleteFilter(dev, tcx.Egress, 0, 0), nil) // flushes the one block
	e.rt.Receive(dev, frame)
	if got := r.ran(); len(got) != 0 {
		t.Fatalf("after flush ran %v", got)
	}
}

// TestRuntime_AddFilter_Exists: "tc filter add" never replaces; the filter
// already there keeps running.
func TestRuntime_AddFilter_Exists(t *testing.T) {
	perDir(t, func(t *testing.T, dir tcx.Direction) {
		e := newEnv(t)
		p := e.progs(3)
		isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
		isErr(t, e.rt.AddFilter(lo, dir, userspace.Filter{Priority: 1, Handle: 1, Program: p[0]}), nil)
		isErr(t, e.rt.AddFilter(lo, dir, userspace.Filter{Priority: 1, Handle: 1, Program: p[1]}), syscall.EEXIST)
		isErr(t, e.rt.AddFilter(lo, dir, userspace.Filter{Priority: 2, Handle: 1, Program: p[2]}), nil)
		e.rt.Transmit(lo, frame)
		if got := e.ran(); !slices.Equal(got, []int64{1, 0, 1}) {
			t.Fatalf("runs %v", got)
		}
	})
}

// TestRuntime_AddFilter_CheckOrder: tc_new_tfilter checks device, qdisc,
// the automatic priority and a taken handle before cls_bpf_change looks at
// the program, so a closed program handle only shows when everything else
// is fine. A failed add holds no reference to its program.
func TestRuntime_AddFilter_CheckOrder(t *testing.T) {
	e := newEnv(t)
	dev, _ := e.rt.AddDevice("d0")
	live := e.prog(tcx.VerdictNext)
	closed := e.prog(tcx.VerdictNext)
	isErr(t, closed.Close(), nil)
	link := e.mustLink(lo, tcx.Ingress, live, tcx.LinkOptions{})
	f := func(prio uint16, handle uint32, p tcx.Program) userspace.Filter {
		return userspace.Filter{Priority: prio, Handle: handle, Program: p}
	}
	isErr(t, e.rt.AddFilter(99, tcx.Ingress, f(1, 1, closed)), syscall.ENODEV)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(1, 1, closed)), syscall.EINVAL) // no qdisc
	isErr(t, e.rt.AddQdisc(dev, userspace.QdiscClsact), nil)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(1, 1, live)), nil)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(1, 1, closed)), syscall.EEXIST)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(1, 1, nil)), syscall.EEXIST)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(1, 2, closed)), syscall.EBADF)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(1, 2, nil)), syscall.EINVAL) // fd 0, no bpf object
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(2, 1, closed)), syscall.EBADF)
	isErr(t, e.rt.ReplaceFilter(dev, tcx.Ingress, f(1, 1, closed)), syscall.EBADF)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(0x8000, 1, live)), nil)
	isErr(t, e.rt.AddFilter(dev, tcx.Ingress, f(0, 0, closed)), syscall.ENOSPC)
	// The failed requests left only the two filters (and the link) holding
	// live: once they and the handle are gone, so is the program.
	isErr(t, e.rt.DeleteFilter(dev, tcx.Ingress, 0, 0), nil)
	isErr(t, link.Close(), nil)
	id := live.ID()
	isErr(t, live.Close(), nil)
	if _, err := e.rt.ProgramByID(id); err == nil {
		t.Fatal("program outlived every reference")
	}
}

// TestRuntime_AddFilter_AutoPriority: priority 0 picks one below the first
// priority at or above 0x8000, else 0xc000, and fails with ENOSPC if 0x8000
// itself is taken.
func TestRuntime_AddFilter_AutoPriority(t *testing.T) {
	e := newEnv(t)
	p := e.prog(tcx.VerdictNext)
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
	add := func(prio uint16) error {
		return e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: prio, Handle: 1, Program: p})
	}
	isErr(t, add(1), nil)
	for _, step := range []struct {
		explicit, want uint16
	}{
		{0, 0xc000}, {0, 0xbfff}, {0x9000, 0x8fff}, {0x8001, 0x8000},
	} {
		if step.explicit != 0 {
			isErr(t, add(step.explicit), nil)
		}
		isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, step.want, 0), syscall.ENOENT)
		isErr(t, add(0), nil)
		isErr(t, add(step.want), syscall.EEXIST) // it is there now
	}
	isErr(t, add(0), syscall.ENOSPC)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 0x8000, 1), nil)
	isErr(t, add(0), nil)
}

// TestRuntime_AddFilter_AutoHandle: handle 0 takes the lowest free handle
// of the priority and never replaces.
func TestRuntime_AddFilter_AutoHandle(t *testing.T) {
	e := newEnv(t)
	r := &recorder{e: e}
	a, b, c := r.prog("a"), r.prog("b"), r.prog("c")
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 1, Handle: 2, Program: a}), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: 1, Program: b}), nil)
	isErr(t, e.rt.ReplaceFilter(lo, tcx.Ingress, userspace.Filter{Priority: 1, Program: c}), nil)
	e.rt.Receive(lo, frame)
	if got := r.ran(); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Fatalf("ran %v", got)
	}
	for _, h := range []uint32{1, 2, 3} {
		isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 1, h), nil)
	}
}

// TestRuntime_ReplaceFilter: a taken priority and handle get the new
// program in place; a free one is added at the head of its priority.
func TestRuntime_ReplaceFilter(t *testing.T) {
	e := newEnv(t)
	r := &recorder{e: e}
	a, b, c, d := r.prog("a"), r.prog("b"), r.prog("c"), r.prog("d")
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Egress, userspace.Filter{Priority: 1, Handle: 1, Program: a}), nil)
	isErr(t, e.rt.AddFilter(lo, tcx.Egress, userspace.Filter{Priority: 1, Handle: 2, Program: b}), nil)
	isErr(t, e.rt.ReplaceFilter(lo, tcx.Egress, userspace.Filter{Priority: 1, Handle: 1, Program: c}), nil)
	isErr(t, e.rt.ReplaceFilter(lo, tcx.Egress, userspace.Filter{Priority: 1, Handle: 5, Program: d}), nil)
	e.rt.Transmit(lo, frame)
	if got := r.ran(); !slices.Equal(got, []string{"d", "b", "c"}) {
		t.Fatalf("ran %v", got)
	}
}

// TestRuntime_DeleteFilter_Rules: a handle without a priority is ENOENT
// before the device is looked at; a flush succeeds on an empty block; a
// priority or handle nobody has is ENOENT.
func TestRuntime_DeleteFilter_Rules(t *testing.T) {
	e := newEnv(t)
	r := &recorder{e: e}
	a, b, c := r.prog("a"), r.prog("b"), r.prog("c")
	isErr(t, e.rt.DeleteFilter(99, tcx.Ingress, 0, 1), syscall.ENOENT)
	isErr(t, e.rt.DeleteFilter(99, tcx.Ingress, 0, 0), syscall.ENODEV)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 0, 0), syscall.EINVAL)
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscClsact), nil)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 0, 0), nil)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 1, 0), syscall.ENOENT)
	for i, p := range []tcx.Program{a, b, c} {
		isErr(t, e.rt.AddFilter(lo, tcx.Ingress, userspace.Filter{Priority: uint16(1 + i/2), Handle: uint32(1 + i), Program: p}), nil)
	}
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 1, 3), syscall.ENOENT)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 0, 3), syscall.ENOENT)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Egress, 2, 0), syscall.ENOENT)
	isErr(t, e.rt.DeleteFilter(lo, tcx.Ingress, 1, 0), nil) // a and b
	e.rt.Receive(lo, frame)
	if got := r.ran(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("ran %v", got)
	}
}

// TestRuntime_DeleteQdisc_IngressQueue: deleting a qdisc that is not there
// is ENOENT on a device that never had its ingress queue, and EINVAL once
// a qdisc add (even a failed one) created it; only a new device starts
// without one. tcx does not create it.
func TestRuntime_DeleteQdisc_IngressQueue(t *testing.T) {
	e := newEnv(t)
	isErr(t, e.rt.DeleteQdisc(99), syscall.ENODEV)
	isErr(t, e.rt.DeleteQdisc(lo), syscall.ENOENT)
	e.mustAttach(lo, tcx.Ingress, e.prog(tcx.VerdictNext), tcx.AttachOptions{})
	isErr(t, e.rt.DeleteQdisc(lo), syscall.ENOENT)
	isErr(t, e.rt.AddQdisc(lo, userspace.QdiscNone), syscall.ENOENT) // unknown kind ...
	isErr(t, e.rt.DeleteQdisc(lo), syscall.EINVAL)                   // ... but the queue exists

	va, _, err := e.rt.AddVethPair("va", "vb")
	isErr(t, err, nil)
	isErr(t, e.rt.DeleteQdisc(va), syscall.ENOENT)
	isErr(t, e.rt.AddQdisc(va, userspace.QdiscIngress), nil)
	isErr(t, e.rt.AddQdisc(va, userspace.QdiscClsact), syscall.EEXIST)
	isErr(t, e.rt.AddQdisc(va, userspace.QdiscNone), syscall.EEXIST) // before the kind
	isErr(t, e.rt.DeleteQdisc(va), nil)
	isErr(t, e.rt.DeleteQdisc(va), syscall.EINVAL)
	isErr(t, e.rt.AddFilter(va, tcx.Ingress, userspace.Filter{Priority: 1, Program: e.prog(0)}), syscall.EINVAL)
	isErr(t, e.rt.DeleteDevice(va), nil)
	va, _, err = e.rt.AddVethPair("va", "vb")
	isErr(t, err, nil)
	isErr(t, e.rt.DeleteQdisc(va), syscall.ENOENT) // a new device
}
