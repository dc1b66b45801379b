package kerneltest

import (
	"os"
	"testing"

	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/skb"
)

// RequireKernel skips t, saying why, unless kernel.Supported() passes. With
// TCX_REQUIRE_KERNEL=1 in the environment (CI) it fails t instead.
func RequireKernel(t testing.TB) {
	t.Helper()
	gate(t, kernel.Supported(), os.Getenv("TCX_REQUIRE_KERNEL") == "1")
}

// gate skips or (required) fails t when the probe failed with err.
func gate(t testing.TB, err error, required bool) {
	t.Helper()
	switch {
	case err == nil:
	case required:
		t.Fatalf("TCX_REQUIRE_KERNEL=1 but %v", err)
	default:
		t.Skipf("skipping kernel test: %v", err)
	}
}

// NewBackend is RequireKernel plus a backend in a fresh network namespace
// with a private bpffs; both go away when t ends.
func NewBackend(t testing.TB) *kernel.Backend {
	t.Helper()
	RequireKernel(t)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	b, err := kernel.New(ns, kernel.Options{})
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// Quirks returns the running kernel's release and its skb helper quirks
// (skb.QuirksFor): q to give the model, known for the bits on record; a
// test beside a kernel whose bits are not known may ask the kernel itself.
func Quirks(t testing.TB) (rel skb.Release, q, known skb.Quirks) {
	t.Helper()
	name, err := kernel.Release()
	if err != nil {
		t.Fatal(err)
	}
	rel, err = skb.ParseRelease(name)
	if err != nil {
		t.Fatal(err)
	}
	q, known = skb.QuirksFor(rel)
	return rel, q, known
}
