//go:build linux

package conformance

import (
	"testing"

	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
)

// requireKernel skips (or, with TCX_REQUIRE_KERNEL=1, fails) a test that
// needs the kernel backend when this machine cannot run tcx.
func requireKernel(t *testing.T) { kerneltest.RequireKernel(t) }
