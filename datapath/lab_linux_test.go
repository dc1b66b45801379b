package datapath_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
)

var labSeq atomic.Int64

// lab is two network namespaces, A and B, made by package kernel and
// bind-mounted under /run/netns so that ip(8) and ping(8) can enter them
// by name.
type lab struct {
	t     *testing.T
	a, b  *kernel.NetNS
	nameA string
	nameB string
	pathA string
	pathB string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	kerneltest.RequireKernel(t)
	for _, tool := range []string{"ip", "ping", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the datapath lab needs %s: %v", tool, err)
		}
	}
	l := &lab{t: t}
	for _, x := range []struct {
		ns   **kernel.NetNS
		name *string
		path *string
		tag  string
	}{{&l.a, &l.nameA, &l.pathA, "a"}, {&l.b, &l.nameB, &l.pathB, "b"}} {
		ns, err := kernel.NewNetNS()
		if err != nil {
			t.Fatal(err)
		}
		*x.ns = ns
		*x.name = fmt.Sprintf("tcxdp-%d-%d-%s", os.Getpid(), labSeq.Add(1), x.tag)
		if len(*x.name) > 60 {
			*x.name = (*x.name)[:60]
		}
		*x.path = filepath.Join("/run/netns", *x.name)
		if err := os.MkdirAll("/run/netns", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*x.path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		src := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.FD())
		if out, err := exec.Command("mount", "--bind", src, *x.path).CombinedOutput(); err != nil {
			t.Fatalf("mount --bind %s %s: %v: %s", src, *x.path, err, out)
		}
		path := *x.path
		t.Cleanup(func() {
			exec.Command("umount", path).Run()
			os.Remove(path)
			ns.Close()
		})
	}
	return l
}

// ip runs ip(8) in the namespace named name.
func (l *lab) ip(name string, args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip -n %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// mac is an interface's hardware address inside ns.
func (l *lab) mac(ns *kernel.NetNS, dev string) string {
	l.t.Helper()
	var mac string
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr.String()
		return nil
	}); err != nil {
		l.t.Fatal(err)
	}
	return mac
}

// ping runs one ping(8) in the namespace; true if a reply came.
func (l *lab) ping(name, addr string) bool {
	return exec.Command("ip", "netns", "exec", name, "ping", "-n", "-q", "-c", "1", "-W", "1", addr).Run() == nil
}
