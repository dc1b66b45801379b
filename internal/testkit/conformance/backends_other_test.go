//go:build !linux

package conformance

import "testing"

func requireKernel(t *testing.T) { t.Skip("skipping kernel test: tcx needs Linux") }
