package kerneltest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest/probes"
	"github.com/tcxgo/tcx/kernel"
)

// recorder is a testing.TB that records instead of stopping the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestGate(t *testing.T) {
	cause := errors.New("kernel backend unsupported: create tcx link: operation not permitted")
	for _, c := range []struct {
		name          string
		err           error
		required      bool
		skip, failure bool
	}{
		{"supported", nil, false, false, false},
		{"supported required", nil, true, false, false},
		{"unsupported", cause, false, true, false},
		{"unsupported required", cause, true, false, true},
	} {
		r := &recorder{TB: t}
		gate(r, c.err, c.required)
		if (r.skipped != "") != c.skip || (r.failed != "") != c.failure {
			t.Errorf("%s: skipped %q failed %q", c.name, r.skipped, r.failed)
		}
		if msg := r.skipped + r.failed; c.err != nil && !strings.Contains(msg, c.err.Error()) {
			t.Errorf("%s: message %q does not say why", c.name, msg)
		}
	}
}

// TestProbes_Kernel runs the probes on lo: each records its slot once traffic
// crosses its hook, a probe beyond MaxProbe records nothing, and the verdicts
// steer the chain.
func TestProbes_Kernel(t *testing.T) {
	b := NewBackend(t)
	seen, err := b.NewMap(probes.SeenSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer seen.Close()
	c, err := b.LoadCollection(probes.Spec(
		probes.Probe{N: 0, Verdict: tcx.VerdictNext},
		probes.Probe{N: probes.MaxProbe, Verdict: tcx.VerdictNext},
		probes.Probe{N: probes.MaxProbe + 1, Verdict: tcx.VerdictPass},
		probes.Probe{N: 7, Verdict: tcx.VerdictPass},
	), kernel.LoadOptions{Maps: map[string]*kernel.Map{probes.SeenMap: seen}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lo, err := b.NetNS().Ifindex("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tc0", "tc255", "tc256", "tc7"} {
		if c.Programs[name].Name() != name {
			t.Errorf("program %s named %q", name, c.Programs[name].Name())
		}
		if err := b.Attach(lo, tcx.Ingress, c.Programs[name], tcx.AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.NetNS().Ping(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	var ran []int
	err = seen.Iterate(func(key, value []byte) error {
		if value[0] != 0 {
			ran = append(ran, int(binary.NativeEndian.Uint32(key)))
		}
		return nil
	})
	if err != nil || !slices.Equal(ran, []int{0, probes.MaxProbe}) {
		t.Errorf("probes that ran: %v %v, want [0 255] (tc256 records nothing, tc7 comes after a PASS)", ran, err)
	}
}
