package kernel_test

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
)

func TestSupported(t *testing.T) {
	kerneltest.RequireKernel(t)
	checkFDs(t)
	if err := kernel.Supported(); err != nil {
		t.Fatalf("second probe failed after the first passed: %v", err)
	}
}

// foreign is a program handle of another backend: it has no fd here.
type foreign struct{}

func (foreign) ID() uint32   { return 1 }
func (foreign) Close() error { return nil }
func (foreign) Name() string { return "foreign" }

func TestBackend_Attach_ForeignHandle(t *testing.T) {
	e := newEnv(t)
	tc1, tc2, tc3 := e.tc(1), e.tc(2), e.tc(3)
	wantErrno(t, e.b.Attach(e.lo, tcx.Ingress, foreign{}, tcx.AttachOptions{}), unix.EBADF, "attach foreign program")
	e.attach(e.lo, tcx.Ingress, tc1, tcx.AttachOptions{})
	wantErrno(t, e.b.Attach(e.lo, tcx.Ingress, tc2, tcx.AttachOptions{Flags: tcx.FlagAfter, Relative: foreign{}}), unix.EBADF, "foreign relative")
	// A typed nil handle is no handle: relative_fd 0, so BEFORE prepends.
	var none *kernel.Program
	e.attach(e.lo, tcx.Ingress, tc3, tcx.AttachOptions{Flags: tcx.FlagBefore, Relative: none})
	e.chain(e.lo, tcx.Ingress, 3, p(tc3), p(tc1))
}

// TestNetNS_Do_Panic: a panic on the namespace's thread surfaces in the
// caller, and the namespace keeps working.
func TestNetNS_Do_Panic(t *testing.T) {
	e := newEnv(t)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		e.ns.Do(func() error { panic("boom") })
	}()
	e.traffic()
}

// TestBackend_NeverFD0: with stdin closed the kernel hands out fd 0, which
// bpf(2) reads as "no object"; handles move off it.
func TestBackend_NeverFD0(t *testing.T) {
	e := newEnv(t)
	tc1 := e.tc(1)
	saved, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Dup2(saved, 0); err != nil {
			t.Fatal(err)
		}
		unix.Close(saved)
	}()
	unix.Close(0)
	l, err := e.b.CreateLink(e.lo, tcx.Ingress, tc1, tcx.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fd := l.(*kernel.Link).FD(); fd == 0 {
		t.Fatal("link handle lives on fd 0")
	}
	if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); err == nil {
		t.Error("fd 0 left open")
	}
	e.chain(e.lo, tcx.Ingress, 2, pl(tc1, l))
}

// TestBackend_Concurrent hammers one backend from several goroutines (each
// with its own programs, so every request must succeed); run it with -race.
func TestBackend_Concurrent(t *testing.T) {
	e := newEnv(t)
	const workers, rounds = 4, 10
	progs := make([][2]*kernel.Program, workers)
	for w := range progs {
		progs[w] = [2]*kernel.Program{e.tc(10 + 2*w), e.tc(11 + 2*w)}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := dirs[w%2]
			for range rounds {
				if err := e.b.Attach(e.lo, dir, progs[w][0], tcx.AttachOptions{}); err != nil {
					errs <- err
					return
				}
				l, err := e.b.CreateLink(e.lo, dir, progs[w][1], tcx.LinkOptions{Flags: tcx.FlagBefore, Relative: progs[w][0]})
				if err != nil {
					errs <- err
					return
				}
				if _, err := tcx.QueryChain(e.b, e.lo, dir); err != nil {
					errs <- err
				}
				if err := e.b.Detach(e.lo, dir, progs[w][0], tcx.DetachOptions{}); err != nil {
					errs <- fmt.Errorf("detach: %w", err)
				}
				if err := l.Close(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e.chain(e.lo, tcx.Ingress, 1)
	e.chain(e.lo, tcx.Egress, 1)
}
