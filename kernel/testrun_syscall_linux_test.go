package kernel_test

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

// RunSyscall runs crypto_bench.o's setup program (third-party corpus): with
// no cipher set it stores -EINVAL in status and returns 0; a tc program is
// refused with EINVAL before the kernel is asked.
func TestTestRunner_RunSyscall(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("../testdata/thirdparty/selftests/progs/crypto_bench.o")
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, spec)
	ret, err := r.RunSyscall("crypto_setup")
	if err != nil || ret != 0 {
		t.Fatalf("RunSyscall = %d, %v", ret, err)
	}
	kv, err := r.MapContents(".bss")
	if err != nil {
		t.Fatal(err)
	}
	off := spec.Variables["status"].Offset
	if st := int32(binary.NativeEndian.Uint32(kv[0].Values[0][off:])); st != -int32(syscall.EINVAL) {
		t.Errorf("status %d, want -EINVAL (no cipher)", st)
	}
	if _, err := r.RunSyscall("crypto_encrypt"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("RunSyscall of a tc program: %v, want EINVAL", err)
	}
	if _, err := r.RunSyscall("nope"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("RunSyscall of a missing program: %v, want ENOENT", err)
	}
}
