package conformance

import (
	"testing"

	"github.com/tcxgo/tcx/internal/kerneltest"
)

type backendCase struct {
	name    string
	factory Factory
	// require gates the backend: it skips (or, with TCX_REQUIRE_KERNEL=1,
	// fails) when the backend cannot run here.
	require func(t *testing.T)
}

func backends() []backendCase {
	return []backendCase{
		{name: "userspace", factory: NewUserspaceEnv},
		{name: "kernel", factory: NewKernelEnv, require: requireKernel},
	}
}

func requireKernel(t *testing.T) { kerneltest.RequireKernel(t) }
