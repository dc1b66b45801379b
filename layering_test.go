package tcx_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// kernelOnlyImports may be imported only by package kernel: they create live
// kernel objects or change the caller's network namespace.
var kernelOnlyImports = []string{
	"github.com/cilium/ebpf/link",
	"github.com/cilium/ebpf/rlimit",
	"github.com/vishvananda/netlink",
	"github.com/vishvananda/netns",
}

// cilium/ebpf's root package mixes pure data (specs) and live objects; only
// the data side may be used outside package kernel.
var liveEBPF = regexp.MustCompile(`^(New\w*|LoadPinned\w*|Program|Map|Collection|MapIterator)$`)

// x/sys/unix outside package kernel is for errno values and constants only.
var syscallUnix = regexp.MustCompile(`^(Syscall\w*|RawSyscall\w*|Setns|Unshare|Mount|Unmount|Socket\w*|Sendto|Bind|Ioctl\w*|Mmap|Mprotect|Munmap|Open\w*|Bpf\w*)$`)

// jitMemory is the one exception: the compiler's machine-code layer maps
// memory for the code it generates (mmap, then mprotect to seal it W^X,
// munmap when the program is gone). That asks the kernel for pages, not
// for any BPF or networking object, so the runtime still runs without
// root; no other syscall is allowed there.
var jitMemory = map[string]bool{"Mmap": true, "Mprotect": true, "Munmap": true}

const jitPackage = "internal/vm/amd64"

// portSyscalls are what package port may call beyond the rule above: it
// moves frames, which is not talking to the kernel's BPF. Packet sockets
// (Socket, Bind, setsockopt), TAP devices (Open of /dev/net/tun, the
// TUNSETIFF and interface-flag ioctls), batched I/O (Syscall6 for
// recvmmsg/sendmmsg, which x/sys/unix does not wrap) and Setns to create
// a TAP or socket inside a given namespace. BPF, netlink and the other
// namespace calls stay kernel-only.
var portSyscalls = regexp.MustCompile(`^(Socket|Bind|IoctlIfreq|Open|Syscall6|Setns)$`)

// TestLayering enforces the brief's rule that only one package talks to the
// kernel, so the userspace runtime provably runs without it.
func TestLayering(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", ".git", ".ci":
				return filepath.SkipDir
			}
			if path == "kernel" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		names := map[string]string{} // local name -> import path
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range kernelOnlyImports {
				if p == bad {
					t.Errorf("%s imports %s; only package kernel may", path, p)
				}
			}
			name := p[strings.LastIndex(p, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			names[name] = p
		}
		isTest := strings.HasSuffix(path, "_test.go")
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch names[x.Name] {
			case "github.com/cilium/ebpf":
				if liveEBPF.MatchString(sel.Sel.Name) {
					t.Errorf("%s: uses ebpf.%s (a live kernel object); only package kernel may", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			case "golang.org/x/sys/unix":
				allowed := filepath.ToSlash(filepath.Dir(path)) == jitPackage && jitMemory[sel.Sel.Name] ||
					filepath.ToSlash(filepath.Dir(path)) == "port" && portSyscalls.MatchString(sel.Sel.Name)
				if !isTest && !allowed && syscallUnix.MatchString(sel.Sel.Name) {
					t.Errorf("%s: calls unix.%s; only package kernel talks to the kernel", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
