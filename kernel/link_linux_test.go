package kernel_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
)

func TestBackend_CreateLink_Lifecycle(t *testing.T) {
	e := newEnv(t)
	tc1, tc2, tc3 := e.tc(1), e.tc(2), e.tc(3)
	l1 := e.link(e.lo, tcx.Ingress, tc1, tcx.LinkOptions{ExpectedRevision: 1})
	l2 := e.link(e.lo, tcx.Ingress, tc2, tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink, Relative: l1})
	if l1.ID() == 0 || l1.ID() == l2.ID() {
		t.Fatalf("link ids %d and %d", l1.ID(), l2.ID())
	}
	e.chain(e.lo, tcx.Ingress, 3, pl(tc2, l2), pl(tc1, l1))
	info, err := l1.Info()
	want := tcx.LinkInfo{ID: l1.ID(), ProgramID: tc1.ID(), Ifindex: uint32(e.lo), AttachType: tcx.AttachTCXIngress}
	if err != nil || info != want {
		t.Errorf("info %+v %v, want %+v", info, err, want)
	}
	e.traffic(1, 2)

	// Links cannot replace anything.
	_, err = e.b.CreateLink(e.lo, tcx.Ingress, tc3, tcx.LinkOptions{Flags: tcx.FlagReplace, Relative: tc2})
	wantErrno(t, err, unix.ENOENT, "link create with REPLACE")
	_, err = e.b.CreateLink(e.lo, tcx.Ingress, tc1, tcx.LinkOptions{})
	wantErrno(t, err, unix.EEXIST, "link for an attached program")
	_, err = e.b.CreateLink(e.lo, tcx.Ingress, tc3, tcx.LinkOptions{Flags: tcx.FlagLink})
	wantErrno(t, err, unix.EINVAL, "LINK without relative")
	_, err = e.b.CreateLink(e.lo, tcx.Ingress, tc3, tcx.LinkOptions{Flags: tcx.FlagBefore | tcx.FlagLink, Relative: tc1})
	wantErrno(t, err, unix.EINVAL, "LINK with a program fd")
	_, err = e.b.CreateLink(e.lo, tcx.Ingress, tc3, tcx.LinkOptions{ExpectedRevision: 2})
	wantErrno(t, err, unix.ESTALE, "stale link create")

	// Update swaps the program in place; same program: no revision bump.
	if err := l2.Update(tc3, tcx.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.chain(e.lo, tcx.Ingress, 4, pl(tc3, l2), pl(tc1, l1))
	if err := l2.Update(tc3, tcx.UpdateOptions{Flags: tcx.FlagReplace, Old: tc3}); err != nil {
		t.Fatal(err)
	}
	e.chain(e.lo, tcx.Ingress, 4, pl(tc3, l2), pl(tc1, l1))
	wantErrno(t, l2.Update(tc2, tcx.UpdateOptions{Flags: tcx.FlagReplace, Old: tc1}), unix.EPERM, "update with the wrong old program")
	wantErrno(t, l2.Update(tc1, tcx.UpdateOptions{}), unix.EEXIST, "update to a program already on the hook")
	wantErrno(t, l2.Update(tc2, tcx.UpdateOptions{Old: tc3}), unix.EINVAL, "old_prog_fd without REPLACE")

	// Detach leaves a defunct link.
	if err := l2.Detach(); err != nil {
		t.Fatal(err)
	}
	e.chain(e.lo, tcx.Ingress, 5, pl(tc1, l1))
	info, err = l2.Info()
	if err != nil || info.Ifindex != 0 || info.ProgramID != tc3.ID() {
		t.Errorf("detached link info %+v %v, want ifindex 0 program %d", info, err, tc3.ID())
	}
	wantErrno(t, l2.Update(tc2, tcx.UpdateOptions{}), unix.ENOLINK, "update after detach")
	if err := l2.Detach(); err != nil {
		t.Errorf("second detach: %v", err)
	}
	// Closing the last fd releases the link.
	closeOK(t, l1)
	e.chain(e.lo, tcx.Ingress, 1)
}

func TestBackend_ClosedHandles(t *testing.T) {
	e := newEnv(t)
	tc1, tc2, closed := e.tc(1), e.tc(2), e.tc(3)
	l1 := e.link(e.lo, tcx.Egress, tc1, tcx.LinkOptions{})
	e.attach(e.lo, tcx.Egress, tc2, tcx.AttachOptions{})
	closeOK(t, closed)
	wantErrno(t, closed.Close(), unix.EBADF, "second program close")
	if closed.FD() != -1 || closed.ID() == 0 || closed.Name() != "tc3" {
		t.Errorf("closed program: fd %d id %d name %q", closed.FD(), closed.ID(), closed.Name())
	}

	out := tcx.Egress
	wantErrno(t, e.b.Attach(e.lo, out, closed, tcx.AttachOptions{}), unix.EBADF, "attach closed program")
	wantErrno(t, e.b.Detach(e.lo, out, closed, tcx.DetachOptions{}), unix.EBADF, "detach closed program")
	_, err := e.b.CreateLink(e.lo, out, closed, tcx.LinkOptions{})
	wantErrno(t, err, unix.EBADF, "link closed program")
	wantErrno(t, e.b.Attach(e.lo, out, e.tc(4), tcx.AttachOptions{Flags: tcx.FlagReplace, Replace: closed}), unix.EBADF, "replace closed program")
	wantErrno(t, e.b.Attach(e.lo, out, e.tc(5), tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: closed}), unix.EBADF, "relative closed program")
	// The kernel resolves the new prog before the relative: a closed relative
	// on an attach that fails earlier keeps the earlier errno.
	wantErrno(t, e.b.Attach(e.lo, out, tc2, tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: closed}), unix.EEXIST, "EEXIST before relative")

	l2 := e.link(e.lo, out, e.tc(6), tcx.LinkOptions{})
	closeOK(t, l2)
	wantErrno(t, l2.Close(), unix.EBADF, "second link close")
	_, err = e.b.CreateLink(e.lo, out, e.tc(7), tcx.LinkOptions{Flags: tcx.FlagAfter | tcx.FlagLink, Relative: l2})
	wantErrno(t, err, unix.EBADF, "relative closed link")
	wantErrno(t, l2.Update(e.tc(8), tcx.UpdateOptions{}), unix.EBADF, "update closed link")
	wantErrno(t, l1.Update(closed, tcx.UpdateOptions{}), unix.EBADF, "update to closed program")
	wantErrno(t, l2.Detach(), unix.EBADF, "detach closed link")
	// These two commands answer a bad fd with other errnos: BPF_OBJ_PIN
	// probes map, prog, link and gives EINVAL; BPF_OBJ_GET_INFO_BY_FD
	// says EBADFD.
	wantErrno(t, l2.Pin("closed"), unix.EINVAL, "pin closed link")
	_, err = l2.Info()
	wantErrno(t, err, unix.EBADFD, "info of closed link")
	// l1 (2), tc2 (3), l2 created (4) and released (5).
	e.chain(e.lo, out, 5, pl(tc1, l1), p(tc2))
}

func TestLink_Pin(t *testing.T) {
	e := newEnv(t)
	tc1 := e.tc(1)
	l, err := e.b.CreateLink(e.lo, tcx.Ingress, tc1, tcx.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := e.link(e.lo, tcx.Egress, e.tc(2), tcx.LinkOptions{})
	if err := other.Pin("taken"); err != nil {
		t.Fatal(err)
	}
	pinned := func(name string) bool {
		_, err := os.Stat(filepath.Join(e.b.PinDir(), name))
		return err == nil
	}
	if err := l.Pin("first"); err != nil {
		t.Fatal(err)
	}
	if err := l.Pin("first"); err != nil {
		t.Errorf("pin again to the same path: %v", err)
	}
	wantErrno(t, l.Pin("taken"), unix.EEXIST, "pin onto another link's pin")
	if err := l.Pin("l1"); err != nil {
		t.Fatal(err)
	}
	if pinned("first") || !pinned("l1") || !pinned("taken") {
		t.Errorf("after moving the pin: first %v l1 %v taken %v, want false true true", pinned("first"), pinned("l1"), pinned("taken"))
	}
	id := l.ID()
	closeOK(t, l)
	wantErrno(t, l.Unpin(), unix.EBADF, "unpin closed handle")
	closeOK(t, tc1)
	// The pin keeps link and program attached (tc2 is the other link).
	e.traffic(1, 2)
	l2, err := e.b.OpenPinnedLink("l1")
	if err != nil {
		t.Fatal(err)
	}
	info, err := l2.Info()
	if err != nil || l2.ID() != id || info.Ifindex != uint32(e.lo) {
		t.Errorf("reopened link: id %d info %+v %v, want id %d on lo", l2.ID(), info, err, id)
	}
	if err := l2.Unpin(); err != nil {
		t.Fatal(err)
	}
	if err := l2.Unpin(); err != nil {
		t.Errorf("second unpin: %v", err)
	}
	_, err = e.b.OpenPinnedLink("l1")
	wantErrno(t, err, unix.ENOENT, "open removed pin")
	res, err := e.b.Query(e.lo, tcx.Ingress, tcx.QueryOptions{})
	if err != nil || res.Count != 1 {
		t.Errorf("after unpin with a handle left: %+v %v, want count 1", res, err)
	}
	closeOK(t, l2)
	e.chain(e.lo, tcx.Ingress, 1)
}

// TestBackend_OpenPinnedLink_NotALink: BPF_OBJ_GET opens any pinned object;
// only tcx links become link handles.
func TestBackend_OpenPinnedLink_NotALink(t *testing.T) {
	e := newEnv(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Pin(filepath.Join(e.b.PinDir(), "map")); err != nil {
		t.Fatal(err)
	}
	_, err = e.b.OpenPinnedLink("map")
	wantErrno(t, err, unix.EINVAL, "open pinned map as link")
	_, err = e.b.OpenPinnedLink("absent")
	wantErrno(t, err, unix.ENOENT, "open absent pin")
}

// TestBackend_PinDir: a caller's bpffs is used as is and left mounted.
func TestBackend_PinDir(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, 0)
	b, err := kernel.New(e.ns, kernel.Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b.PinDir() != dir {
		t.Errorf("pin dir %q, want %q", b.PinDir(), dir)
	}
	l, err := b.CreateLink(e.lo, tcx.Egress, e.tc(1), tcx.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Pin("x"); err != nil {
		t.Fatal(err)
	}
	closeOK(t, b)
	// Still mounted: the pin is still there and opens through another backend.
	l2, err := e.b.OpenPinnedLink(filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	closeOK(t, l2)
	if err := l.Unpin(); err != nil {
		t.Fatal(err)
	}
}

func TestBackend_ProgramByID(t *testing.T) {
	e := newEnv(t)
	tc1 := e.tc(1)
	again, err := e.b.ProgramByID(tc1.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.ID() != tc1.ID() || again.Name() != "tc1" || again.FD() == tc1.FD() {
		t.Errorf("by id: id %d name %q fd %d, want id %d tc1 and a new fd", again.ID(), again.Name(), again.FD(), tc1.ID())
	}
	// Identity is the program, not the fd: the second handle is the same
	// program for the kernel.
	e.attach(e.lo, tcx.Ingress, tc1, tcx.AttachOptions{})
	wantErrno(t, e.b.Attach(e.lo, tcx.Ingress, again, tcx.AttachOptions{}), unix.EEXIST, "attach through a second handle")
	e.detach(e.lo, tcx.Ingress, again, tcx.DetachOptions{})
	_, err = e.b.ProgramByID(0)
	wantErrno(t, err, unix.ENOENT, "program id 0")
}

// TestNetNS_DeleteDevice makes links defunct and drops plain attachments.
func TestNetNS_DeleteDevice(t *testing.T) {
	e := newEnv(t)
	ia, ib, err := e.ns.AddVethPair("del0", "del1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ns.AddQdisc(ia, kernel.QdiscClsact); err != nil {
		t.Fatal(err)
	}
	var links []tcx.Link
	for i, dir := range []tcx.Direction{tcx.Ingress, tcx.Egress, tcx.Ingress} {
		links = append(links, e.link(ia, dir, e.tc(1+i), tcx.LinkOptions{}))
	}
	e.attach(ia, tcx.Ingress, e.tc(4), tcx.AttachOptions{})
	if err := e.ns.DeleteDevice(ib); err != nil { // the peer takes ia along
		t.Fatal(err)
	}
	for _, l := range links {
		info, err := l.Info()
		if err != nil || info.Ifindex != 0 {
			t.Errorf("link %d after device deletion: %+v %v, want ifindex 0", l.ID(), info, err)
		}
		wantErrno(t, l.Update(e.tc(9), tcx.UpdateOptions{}), unix.ENOLINK, "update defunct link")
		if err := l.Detach(); err != nil {
			t.Errorf("detach defunct link: %v", err)
		}
	}
	_, err = e.b.Query(ia, tcx.Ingress, tcx.QueryOptions{})
	wantErrno(t, err, unix.ENODEV, "query deleted device")
	wantErrno(t, e.ns.DeleteDevice(ia), unix.ENODEV, "delete deleted device")
	_, err = e.ns.Ifindex("del0")
	wantErrno(t, err, unix.ENODEV, "ifindex of deleted device")
}

// TestNetNS_Isolation: ifindexes name devices of the backend's own namespace.
func TestNetNS_Isolation(t *testing.T) {
	e1, e2 := newEnv(t), newEnv(t)
	ia, _, err := e1.ns.AddVethPair("iso0", "iso1")
	if err != nil {
		t.Fatal(err)
	}
	tc1 := e1.tc(1)
	e1.attach(ia, tcx.Ingress, tc1, tcx.AttachOptions{})
	wantErrno(t, e2.b.Attach(ia, tcx.Ingress, tc1, tcx.AttachOptions{}), unix.ENODEV, "other netns's ifindex")
	e2.chain(e2.lo, tcx.Ingress, 1)
	e1.chain(ia, tcx.Ingress, 2, p(tc1))
}

func TestNetNS_Close(t *testing.T) {
	kerneltest.RequireKernel(t)
	checkFDs(t)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	if ns.FD() < 0 {
		t.Errorf("netns fd %d", ns.FD())
	}
	closeOK(t, ns)
	wantErrno(t, ns.Close(), unix.EBADF, "second close")
	wantErrno(t, ns.Do(func() error { return nil }), unix.EBADF, "Do after close")
	_, err = kernel.New(nil, kernel.Options{})
	wantErrno(t, err, unix.EINVAL, "backend without netns")
}

// TestBackend_Close_ReleasesPrivatePins: the private bpffs goes away with
// the backend, and with it the pins' references.
func TestBackend_Close_ReleasesPrivatePins(t *testing.T) {
	e := newEnv(t)
	b, err := kernel.New(e.ns, kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.CreateLink(e.lo, tcx.Ingress, e.tc(1), tcx.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Pin("held"); err != nil {
		t.Fatal(err)
	}
	closeOK(t, l)
	e.traffic(1)
	dir := b.PinDir()
	closeOK(t, b)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("pin dir %s still there: %v", dir, err)
	}
	// The kernel drops the pin's reference from a workqueue: wait for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		res, err := e.b.Query(e.lo, tcx.Ingress, tcx.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("link still attached after its bpffs was unmounted")
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
