package kerneldiff

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx/kernel"
)

// PinCPU0 runs the calling goroutine's thread on CPU 0 until the test
// ends, so that the kernel's test runs update CPU 0's per-CPU values, the
// CPU the engine's executor simulates.
func PinCPU0(t testing.TB) {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatalf("sched_setaffinity: %v", err)
	}
	t.Cleanup(func() {
		unix.SchedSetaffinity(0, &old) //nolint:errcheck // best effort; the thread is unlocked next
		runtime.UnlockOSThread()
	})
}

// PinNSCPU0 runs ns's thread, where Side runs the kernel's test runs when
// NS is set, on CPU 0, for the same reason as PinCPU0. The thread is the
// namespace's own and ends with it.
func PinNSCPU0(t testing.TB, ns *kernel.NetNS) {
	err := ns.Do(func() error {
		var set unix.CPUSet
		set.Set(0)
		return unix.SchedSetaffinity(0, &set)
	})
	if err != nil {
		t.Fatalf("pin the namespace's thread to CPU 0: %v", err)
	}
}
