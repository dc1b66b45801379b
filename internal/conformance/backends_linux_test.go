package conformance

import (
	"os"
	"testing"

	"github.com/tcxgo/tcx/kernel"
)

type backendCase struct {
	name    string
	factory Factory
	require func(t *testing.T)
}

func backends() []backendCase {
	return []backendCase{
		{name: "kernel", factory: NewKernelEnv, require: requireKernel},
	}
}

func requireKernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		if os.Getenv("TCX_REQUIRE_KERNEL") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}
