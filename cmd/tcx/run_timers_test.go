package main

import (
	"context"
	"encoding/binary"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcxgo/tcx/topology"
)

// TestRun_TimersFireWhenIdle: in tcx run, a bpf_timer that a frame armed
// (timer_due's arm, 50 ms ahead) fires with no frame after it, from the
// timers tcx run serves beside the datapath; stopping them returns.
func TestRun_TimersFireWhenIdle(t *testing.T) {
	obj, err := filepath.Abs(filepath.Join("..", "..", "internal", "testkit", "kerneldiff", "testdata", "timer_due.o"))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Parse("t.yaml", []byte(`objects:
  - { name: t, path: `+obj+` }
devices:
  - name: eth0
    ingress:
      - { object: t, program: arm }
`))
	if err != nil {
		t.Fatal(err)
	}
	built, err := topo.Build(topology.BuildOptions{NoPorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	stop := serveTimers(context.Background(), built, io.Discard)
	defer stop()
	ifindex, _ := built.Runtime.Ifindex("eth0")
	frame := make([]byte, 60)
	frame[12], frame[13] = 0x08, 0x00
	built.Runtime.Receive(ifindex, frame)
	fired := func() uint64 {
		v := make([]byte, 32)
		if err := built.Objects["t"].Maps["due"].Lookup(make([]byte, 4), v); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(v[16:])
	}
	for deadline := time.Now().Add(10 * time.Second); fired() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the timer armed by the frame has not fired 10 s later")
		}
	}
}
