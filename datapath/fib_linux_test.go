package datapath_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/dptraffic"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/port"
	"github.com/tcxgo/tcx/topology"
	"github.com/tcxgo/tcx/userspace"
)

const fibRouterYAML = "../testdata/datapath/fib_router.yaml"

// fibFate is what became of one frame: the lookup's answer (the slot of
// dp_fib_fwd's fib_results the run counted), the device it left by ("" if
// it did not leave) and its bytes there.
type fibFate struct {
	slot int
	out  string
	data []byte
}

func (f fibFate) String() string {
	if f.out == "" {
		return fmt.Sprintf("result %d, not transmitted", f.slot)
	}
	return fmt.Sprintf("result %d, transmitted at %s", f.slot, f.out)
}

// resultsTotal sums fib_results; slotOf finds the slot that grew.
func resultsTotal(v [12]uint64) (n uint64) {
	for _, x := range v {
		n += x
	}
	return n
}

func slotOf(before, after [12]uint64) int {
	for i := range before {
		if after[i] != before[i] {
			return i
		}
	}
	return -1
}

// runFibUserspace sends frames into r0 of the userspace router built
// from fib_router.yaml, one at a time.
func runFibUserspace(t *testing.T, topo *topology.Topology, frames []port.Frame) []fibFate {
	built, err := topo.Build(topology.BuildOptions{NoPorts: true, Engine: testEngine})
	if err != nil {
		t.Fatal(err)
	}
	defer built.Close()
	names := map[int]string{}
	for i, d := range built.Devices {
		names[d.Ifindex] = built.Labels[i]
	}
	m := built.Objects["fwd"].Maps["fib_results"]
	read := func() (v [12]uint64) {
		b := make([]byte, 8)
		for i := range v {
			if err := m.Lookup(binary.NativeEndian.AppendUint32(nil, uint32(i)), b); err != nil {
				t.Fatal(err)
			}
			v[i] = binary.NativeEndian.Uint64(b)
		}
		return v
	}
	r0 := built.Devices[0].Ifindex
	out := make([]fibFate, len(frames))
	for i, f := range frames {
		before := read()
		o := built.Runtime.Receive(r0, append([]byte(nil), f.Data...))
		out[i].slot = slotOf(before, read())
		if o.Fate == userspace.Transmitted {
			out[i].out, out[i].data = names[o.Ifindex], append([]byte(nil), o.Frame...)
		}
	}
	return out
}

// runFibKernel sets a kernel namespace up as the topology says (the same
// devices, MACs, MTUs, addresses, forwarding, routes and neighbours),
// attaches dp_fib_fwd to r0's ingress with tcx, and sends the frames
// into r0 from its veth peer h0 in a second namespace, where the peers
// h1 and h2 of r1 and r2 capture what leaves.
func runFibKernel(t *testing.T, topo *topology.Topology, frames []port.Frame) []fibFate {
	l := newLab(t)
	for _, d := range topo.Devices {
		h := "h" + d.Name[1:]
		if _, _, err := l.a.AddVethPairTo(d.Name, l.b, h); err != nil {
			t.Fatal(err)
		}
		if d.MAC != "" {
			l.ip(l.nameA, "link", "set", d.Name, "address", d.MAC)
		}
		if d.MTU != 0 {
			l.ip(l.nameA, "link", "set", d.Name, "mtu", strconv.Itoa(d.MTU))
			l.ip(l.nameB, "link", "set", h, "mtu", strconv.Itoa(d.MTU))
		}
		l.ip(l.nameA, "link", "set", d.Name, "up")
		l.ip(l.nameB, "link", "set", h, "up")
	}
	inNS(t, l.pathA, "sysctl", "-q", "-w", "net.ipv4.conf.all.forwarding=1", "net.ipv6.conf.all.forwarding=1")
	inNS(t, l.pathB, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
	for _, d := range topo.Devices {
		for _, a := range d.Addresses {
			l.ip(l.nameA, "addr", "add", a, "dev", d.Name, "nodad")
		}
	}
	for _, r := range topo.Routes {
		args := []string{"route", "add"}
		if r.Type != "" {
			args = append(args, r.Type)
		}
		args = append(args, r.To)
		for _, kv := range [][2]string{{"via", r.Via}, {"dev", r.Dev}, {"src", r.Src}} {
			if kv[1] != "" {
				args = append(args, kv[0], kv[1])
			}
		}
		if r.Metric != 0 {
			args = append(args, "metric", strconv.Itoa(int(r.Metric)))
		}
		if r.Table != 0 {
			args = append(args, "table", strconv.Itoa(int(r.Table)))
		}
		if r.MTU != 0 {
			args = append(args, "mtu", "lock", strconv.Itoa(r.MTU))
		}
		l.ip(l.nameA, args...)
	}
	for _, r := range topo.Rules {
		args := []string{"rule", "add", "priority", strconv.Itoa(int(r.Priority))}
		if r.Family == "ipv6" {
			args = append([]string{"-6"}, args...)
		}
		if r.Not {
			args = append(args, "not")
		}
		for _, kv := range [][2]string{{"from", r.From}, {"to", r.To}, {"iif", r.Iif}, {"oif", r.Oif}, {"fwmark", fmt.Sprint(r.Fwmark)}} {
			if kv[1] != "" && kv[1] != "<nil>" {
				args = append(args, kv[0], kv[1])
			}
		}
		if r.Type != "" {
			args = append(args, r.Type)
		} else {
			args = append(args, "table", strconv.Itoa(int(r.Table)))
		}
		l.ip(l.nameA, args...)
	}
	for _, n := range topo.Neighbours {
		l.ip(l.nameA, "neigh", "add", n.Addr, "lladdr", n.MAC, "dev", n.Dev, "nud", "permanent")
	}
	b, err := kernel.New(l.a, kernel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := loadKernel(t, b, "dp_fib_fwd.o", nil)
	r0, err := l.a.Ifindex("r0")
	if err != nil {
		t.Fatal(err)
	}
	link, err := tcx.AttachLink(b, r0, tcx.Ingress, c.Programs["dp_fib_fwd"], tcx.Tail(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()

	// Captures on h1 and h2: the frames carrying a sequence number.
	var mu sync.Mutex
	got := map[int64]fibFate{}
	var wg sync.WaitGroup
	var ports []port.Port
	for _, d := range topo.Devices[1:] {
		p, err := port.Open("afpacket:h"+d.Name[1:], port.Options{NetNS: l.pathB, MTU: 1500})
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
		wg.Add(1)
		go func(dev string) {
			defer wg.Done()
			batch := port.NewBatch(8, 2048)
			for {
				if err := p.Read(batch); err != nil {
					if !errors.Is(err, port.ErrClosed) {
						t.Errorf("read %s: %v", dev, err)
					}
					return
				}
				for _, f := range batch.Frames[:batch.N] {
					if seq := dptraffic.RoutedSeq(f.Data); seq >= 0 {
						mu.Lock()
						got[seq] = fibFate{out: dev, data: append([]byte(nil), f.Data...)}
						mu.Unlock()
					}
				}
			}
		}(d.Name)
	}
	h0, err := port.Open("afpacket:h0", port.Options{NetNS: l.pathB, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	defer h0.Close()
	read := func() (v [12]uint64) {
		for i := range v {
			if err := c.Maps["fib_results"].Lookup(uint32(i), &v[i]); err != nil {
				t.Fatal(err)
			}
		}
		return v
	}
	out := make([]fibFate, len(frames))
	sent := 0
	for i, f := range frames {
		before := read()
		if err := h0.Write([]port.Frame{{Data: append([]byte(nil), f.Data...), Len: len(f.Data)}}); err != nil {
			t.Fatalf("frame %d: send: %v", i, err)
		}
		// The program counts every frame once: wait for it.
		deadline := time.Now().Add(5 * time.Second)
		after := read()
		for resultsTotal(after) == resultsTotal(before) {
			if time.Now().After(deadline) {
				t.Fatalf("frame %d: dp_fib_fwd did not run within 5s", i)
			}
			time.Sleep(50 * time.Microsecond)
			after = read()
		}
		out[i].slot = slotOf(before, after)
		if out[i].slot == 0 {
			sent++
		}
	}
	// Every forwarded frame reaches its capture.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= sent || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // and nothing more than those
	for _, p := range ports {
		p.Close()
	}
	wg.Wait()
	for i := range out {
		if g, ok := got[int64(i)]; ok {
			out[i].out, out[i].data = g.out, g.data
		}
	}
	return out
}

// TestFibRouter_Kernel: dp_fib_fwd forwarding by bpf_fib_lookup through
// the userspace router of fib_router.yaml and through the kernel's tcx in
// a namespace set up with the same addresses, routes and neighbours: per
// frame the same lookup answer, the same device out and the same bytes
// (TTL or hop limit decremented, the MACs the lookup returned).
func TestFibRouter_Kernel(t *testing.T) {
	topo, err := topology.Load(fibRouterYAML)
	if err != nil {
		t.Fatal(err)
	}
	frames := dptraffic.Routed(2000, 11)
	us := runFibUserspace(t, topo, frames)
	kn := runFibKernel(t, topo, frames)
	slots := map[int]int{}
	outs := map[string]int{}
	diverged := 0
	for i := range frames {
		u, k := us[i], kn[i]
		slots[u.slot]++
		outs[u.out]++
		if u.slot != k.slot || u.out != k.out || !bytes.Equal(u.data, k.data) {
			diverged++
			if diverged <= 5 {
				t.Errorf("frame %d: userspace %s, kernel %s\n  in     %x\n  user   %x\n  kernel %x", i, u, k, frames[i].Data, u.data, k.data)
			}
		}
	}
	// The traffic reaches every answer dp_fib_fwd tells apart.
	for _, s := range []int{0, 1, 2, 3, 4, 7, 8, 11} {
		if slots[s] == 0 {
			t.Errorf("no frame got result slot %d: %v", s, slots)
		}
	}
	if outs["r1"] == 0 || outs["r2"] == 0 {
		t.Errorf("frames out of r1 %d, r2 %d: want some of each", outs["r1"], outs["r2"])
	}
	t.Logf("results by slot %v; out of r1 %d, r2 %d", slots, outs["r1"], outs["r2"])
	fmt.Printf("fib router: %d frames, %d divergences from the kernel\n", len(frames), diverged)
}
