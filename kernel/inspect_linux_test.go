package kernel_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
)

// TestOpenNetNS opens an existing namespace by path and by name, sees its
// devices, and leaves it as it was (lo stays down, nothing is deleted).
func TestOpenNetNS(t *testing.T) {
	b := kerneltest.NewBackend(t)
	if _, _, err := b.NetNS().AddVethPair("v0", "v1"); err != nil {
		t.Fatal(err)
	}
	ns, err := kernel.OpenNetNS(b.NetNS().Path())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := b.NetNS().Inode()
	o, _ := ns.Inode()
	if a != o || ns.Name() != b.NetNS().Path() {
		t.Errorf("opened inode %d (%s), want %d", o, ns.Name(), a)
	}
	d, err := ns.DeviceByName("v0")
	if err != nil || d.Kind != "veth" || !d.Up {
		t.Errorf("v0 through the opened namespace: %+v %v", d, err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.NetNS().Ifindex("v1"); err != nil {
		t.Errorf("closing the opened namespace changed the original: %v", err)
	}

	// A named namespace, made the ip-netns way.
	name := "tcx-test-open-" + filepath.Base(t.TempDir())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", name).Run()
	ns, err = kernel.OpenNetNS(name)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := ns.DeviceByName("lo")
	ns.Close()
	if err != nil || lo.Up {
		t.Errorf("lo of a fresh named namespace: %+v %v (opening must not bring it up)", lo, err)
	}
	if _, err := os.Stat(filepath.Join(kernel.NetNSDir, name)); err != nil {
		t.Errorf("the named namespace went away: %v", err)
	}

	host, err := kernel.OpenNetNS("")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	self, _ := os.Stat("/proc/self/ns/net")
	hi, _ := host.Inode()
	if st, ok := self.Sys().(*syscall.Stat_t); !ok || st.Ino != hi || host.Name() != "host" {
		t.Errorf("host namespace inode %d, own %v", hi, self.Sys())
	}

	if _, err := kernel.OpenNetNS("tcx-no-such-namespace"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing name: %v, want ENOENT", err)
	}
	if _, err := kernel.OpenNetNS("/etc/hostname"); !errors.Is(err, unix.EINVAL) {
		t.Errorf("a file that is no namespace: %v, want EINVAL", err)
	}
}

// TestInspect_PinsLinksFilters reads back what the backend made: pins by
// kind, link and program info, cls_bpf filters, map pins by name.
func TestInspect_PinsLinksFilters(t *testing.T) {
	b := kerneltest.NewBackend(t)
	if err := kernel.IsBPFFS(b.PinDir()); err != nil {
		t.Fatal(err)
	}
	if err := kernel.IsBPFFS(t.TempDir()); !errors.Is(err, unix.EMEDIUMTYPE) {
		t.Errorf("IsBPFFS of a tmp dir: %v", err)
	}
	if err := kernel.IsBPFFS("/nonexistent"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("IsBPFFS of a missing dir: %v", err)
	}
	ifindex, _, err := b.NetNS().AddVethPair("v0", "v1")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ebpf.LoadCollectionSpec("../testdata/progs/ops/pin_counter.o")
	if err != nil {
		t.Fatal(err)
	}
	load := func() *kernel.Collection {
		c, err := b.LoadCollection(spec, kernel.LoadOptions{PinPath: b.PinDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1 := load()
	mapPin := filepath.Join(b.PinDir(), "tcx_ops_packets")
	if len(c1.NewPins) != 1 || c1.NewPins[0] != mapPin {
		t.Fatalf("first load pinned %v", c1.NewPins)
	}
	if c2 := load(); len(c2.NewPins) != 0 {
		t.Errorf("second load pinned %v again instead of reusing", c2.NewPins)
	}
	prog := c1.Programs["pin_counter"]
	l, err := tcx.AttachLink(b, ifindex, tcx.Ingress, prog, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	linkPin := filepath.Join(b.PinDir(), "link")
	if err := l.Pin(linkPin); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{mapPin: kernel.PinnedMap, linkPin: kernel.PinnedLink} {
		p, err := kernel.PinnedObject(path)
		if err != nil || p.Kind != want {
			t.Errorf("PinnedObject(%s) = %+v, %v; want a %s", path, p, err, want)
		}
	}
	p, _ := kernel.PinnedObject(linkPin)
	d, err := kernel.LinkInfoByID(l.ID())
	if err != nil || p.ID != l.ID() || d != p.Link || d.ProgID != prog.ID() || d.Ifindex != uint32(ifindex) || d.Type != tcx.LinkTypeTCX {
		t.Errorf("link info %+v / pin %+v, %v", d, p, err)
	}
	pi, err := kernel.ProgramInfoByID(prog.ID())
	if err != nil || pi.Name != "pin_counter" || pi.Type != ebpf.SchedCLS || len(pi.Tag) != 16 || pi.LoadedAt.IsZero() {
		t.Errorf("program info %+v, %v", pi, err)
	}
	h, err := b.QueryHook(ifindex, tcx.AttachTCXIngress)
	if err != nil || len(h.Entries) != 1 || h.Entries[0].LinkID != l.ID() || h.Revision != 2 {
		t.Errorf("QueryHook %+v, %v", h, err)
	}
	if _, err := kernel.LinkInfoByID(0xfffffff0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("LinkInfoByID of no link: %v", err)
	}

	ns := b.NetNS()
	if kind, err := ns.ClassicQdisc(ifindex); err != nil || kind != "" {
		t.Errorf("qdisc before: %q %v", kind, err)
	}
	if created, err := ns.EnsureClsact(ifindex); err != nil || !created {
		t.Fatalf("EnsureClsact: %v %v", created, err)
	}
	if created, err := ns.EnsureClsact(ifindex); err != nil || created {
		t.Errorf("EnsureClsact twice: %v %v", created, err)
	}
	if err := ns.AddFilter(ifindex, tcx.Egress, 7, 1, prog); err != nil {
		t.Fatal(err)
	}
	fs, err := ns.ClassicFilters(ifindex, tcx.Egress)
	if err != nil || len(fs) != 1 || fs[0].ProgID != prog.ID() || fs[0].Priority != 7 || !fs[0].DirectAction {
		t.Errorf("filters %+v, %v", fs, err)
	}
	c3 := load()
	if err := ns.ReplaceFilter(ifindex, tcx.Egress, 7, 1, c3.Programs["pin_counter"]); err != nil {
		t.Fatal(err)
	}
	if fs, _ := ns.ClassicFilters(ifindex, tcx.Egress); len(fs) != 1 || fs[0].ProgID != c3.Programs["pin_counter"].ID() {
		t.Errorf("after replace: %+v", fs)
	}
	if lk, err := b.LinkByID(l.ID()); err != nil || lk.ID() != l.ID() {
		t.Errorf("LinkByID: %v", err)
	} else {
		lk.Close()
	}
	if err := c1.RemoveNewPins(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mapPin); !os.IsNotExist(err) {
		t.Errorf("map pin after RemoveNewPins: %v", err)
	}
}
