//go:build !linux

package kernel

import (
	"fmt"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
)

var errTestRunUnsupported = fmt.Errorf("test run: %w (BPF_PROG_TEST_RUN needs Linux)", syscall.ENOTSUP)

// TestRunner runs programs with BPF_PROG_TEST_RUN; off Linux every
// operation fails with ENOTSUP.
type TestRunner struct{}

func NewTestRunner(spec *ebpf.CollectionSpec) (*TestRunner, error) {
	return nil, errTestRunUnsupported
}

func (r *TestRunner) Programs() []string { return nil }
func (r *TestRunner) Maps() []string     { return nil }
func (r *TestRunner) Run(prog string, in RunInput) (RunOutput, error) {
	return RunOutput{}, errTestRunUnsupported
}
func (r *TestRunner) RunSyscall(prog string) (uint32, error) { return 0, errTestRunUnsupported }
func (r *TestRunner) Benchmark(prog string, in RunInput, repeat int) (time.Duration, error) {
	return 0, errTestRunUnsupported
}
func (r *TestRunner) MapContents(name string) ([]KV, error)       { return nil, errTestRunUnsupported }
func (r *TestRunner) SetMap(name string, key, value []byte) error { return errTestRunUnsupported }
func (r *TestRunner) MapKeys(name string) ([][]byte, error)       { return nil, errTestRunUnsupported }
func (r *TestRunner) DeleteMap(name string, key []byte) error     { return errTestRunUnsupported }
func (r *TestRunner) ResetMaps() error                            { return errTestRunUnsupported }
func (r *TestRunner) ReadRing(name string) ([][]byte, error)      { return nil, errTestRunUnsupported }
func (r *TestRunner) Close() error                                { return errTestRunUnsupported }
