package tcx_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// crossTargets are the platforms the module must build on although kernel
// BPF exists only on Linux: the userspace runtime and the engine run
// anywhere, with the platform's own errno numbering (windows has no
// x/sys/unix at all), on 64-bit ARM and on 32-bit machines (linux/386
// also covers package kernel's Linux-only code there).
//
// On windows internal/testkit/conformance (test infrastructure that compares with the
// Linux kernel and names errnos through x/sys/unix) is left out; everything a
// user runs there is vetted.
var crossTargets = []struct {
	goos, goarch string
	pkgs         []string
}{
	{"darwin", "arm64", []string{"./..."}},
	{"windows", "amd64", []string{".", "./userspace/...", "./engine/...", "./internal/vm/...",
		"./maps/...", "./skb/...", "./cmd/...", "./internal/mprog/...", "./internal/linuxerr/...",
		"./kernel/...", "./internal/testkit/kerneldiff/...", "./internal/testkit/pktgen/...", "./internal/testkit/isaconf/..."}},
	{"freebsd", "amd64", []string{"./..."}},
	{"linux", "386", []string{"./..."}},
}

// TestCrossCompile type-checks the whole module, tests included, for every
// cross target with go vet (which reports everything the compiler does but
// needs no linking). With a cold build cache the targets take about 30 s
// of CPU each, run in parallel; with a warm one, well under a second.
// -short skips it.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling for 5 targets is slow; not in -short mode")
	}
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to cross-compile with: %v", err)
	}
	for _, tc := range crossTargets {
		t.Run(tc.goos+"_"+tc.goarch, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(gotool, append([]string{"vet"}, tc.pkgs...)...)
			cmd.Env = append(os.Environ(), "GOOS="+tc.goos, "GOARCH="+tc.goarch, "CGO_ENABLED=0", "GOFLAGS=") // no -race or other host-only flags
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("GOOS=%s GOARCH=%s go vet %v: %v\n%s", tc.goos, tc.goarch, tc.pkgs, err, strings.TrimSpace(string(out)))
			}
		})
	}
}
