package kerneldiff

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx/kernel"
)

// PinCPU0 runs the calling goroutine's thread on CPU 0 until the test
// ends, so that the kernel's test runs update CPU 0's per-CPU values, the
// CPU the engine's executor simulates.
func PinCPU0(t testing.TB) {
	unpin, err := PinCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unpin)
}

// PinCPU runs the calling goroutine on its thread, and the thread on cpu,
// until unpin restores both.
func PinCPU(cpu int) (unpin func(), err error) {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sched_setaffinity to CPU %d: %w", cpu, err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old) //nolint:errcheck // best effort; the thread is unlocked next
		runtime.UnlockOSThread()
	}, nil
}

// AllowedCPUs lists the CPUs the calling thread may run on.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for cpu := range 8 * int(unsafe.Sizeof(set)) {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
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
