//go:build linux

package kernel

import (
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// RunSyscall runs prog, a BPF_PROG_TYPE_SYSCALL program, once with
// BPF_PROG_TEST_RUN and no context (its r1 is NULL), as the kernel's
// selftests run the programs that set up what an object's tc programs use
// (a crypto context in a map, ...). It returns the program's return value.
func (r *TestRunner) RunSyscall(prog string) (uint32, error) {
	p, err := r.program("test run", prog)
	if err != nil {
		return 0, err
	}
	if p.Type() != ebpf.Syscall {
		return 0, fmt.Errorf("test run %s: a %s program, not a syscall one: %w", prog, p.Type(), unix.EINVAL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ret, err := p.Run(&ebpf.RunOptions{})
	if err != nil {
		return 0, fmt.Errorf("test run %s: %w", prog, err)
	}
	return ret, nil
}
