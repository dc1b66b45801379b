package engine_test

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/userspace"
)

// xmitPacket is a packet holding frame for TransmitPacket or ReceivePacket
// on ifindex.
func xmitPacket(t testing.TB, frame []byte, ifindex int) *userspace.Packet {
	t.Helper()
	p := new(userspace.Packet)
	if err := p.ResetXmit(frame, uint32(ifindex)); err != nil {
		t.Fatal(err)
	}
	return p
}

// attach loads r as a program of rt and attaches it to ifindex's hook.
func attach(t testing.TB, rt *userspace.Runtime, ifindex int, dir tcx.Direction, name string, r userspace.Runner) {
	t.Helper()
	h, err := rt.NewProgram(name, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Attach(ifindex, dir, h, tcx.AttachOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRunner_L3Forward forwards a frame from lo's ingress out of eth0
// with the corpus router: the runtime follows the program's bpf_redirect
// and carries its rewritten bytes.
func TestRunner_L3Forward(t *testing.T) {
	rt := userspace.New()
	eth0, err := rt.AddDevice("eth0")
	if err != nil {
		t.Fatal(err)
	}
	spec := corpusSpec(t, "l3_forward")
	if err := spec.Variables["out_ifindex"].Set(uint32(eth0)); err != nil {
		t.Fatal(err)
	}
	p := newCollection(t, spec, engine.Options{NumCPU: 2}).Programs["l3_forward"]
	attach(t, rt, 1, tcx.Ingress, "l3_forward", engine.NewRunner(p))

	in := ipv4Frame(t, 64)
	out := rt.Receive(1, bytes.Clone(in))
	if out.Fate != userspace.Transmitted || out.Ifindex != eth0 || out.RedirectedTo != eth0 || out.Redirects != 1 {
		t.Fatalf("outcome %+v", out)
	}
	pkt := gopacket.NewPacket(out.Frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil || ip.TTL != 63 || eth.DstMAC.String() != "02:00:00:00:00:02" || eth.SrcMAC.String() != "02:00:00:00:00:01" {
		t.Fatalf("forwarded frame % x", out.Frame)
	}
	if err := pktgen.CheckChecksums(out.Frame); err != nil {
		t.Errorf("checksum after TTL decrement: %v", err)
	}
	// TTL 1 expires: dropped on lo.
	if out := rt.Receive(1, ipv4Frame(t, 1)); out.Fate != userspace.Dropped || out.Redirects != 0 {
		t.Errorf("TTL 1: %+v", out)
	}
}

// TestRunner_Metadata checks what goes into the sk_buff and comes back:
// qos_mark reads cb-less metadata and writes priority, mark, tc_classid.
func TestRunner_Metadata(t *testing.T) {
	rt := userspace.New()
	eth0, _ := rt.AddDevice("eth0")
	// A program in Go before the engine program sets the mark's high half.
	attach(t, rt, eth0, tcx.Egress, "pre", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		p.Mark = 0xabcd0000
		return tcx.VerdictNext
	}))
	c := corpus(t, "qos_mark")
	attach(t, rt, eth0, tcx.Egress, "qos_mark", engine.NewRunner(c.Programs["qos_mark"]))
	frame := udp4(t, "10.0.0.1", "10.0.0.2", 64, 100)
	frame[15] = 46 << 2 // DSCP EF
	binary.BigEndian.PutUint16(frame[24:], 0)
	out := rt.TransmitPacket(xmitPacket(t, frame, eth0))
	if out.Fate != userspace.Transmitted || out.Verdict != tcx.VerdictPass || out.Packet.Mark>>16 != 0xabcd || out.Packet.Mark&0xffff == 0 || out.Packet.Priority == 0 {
		t.Errorf("outcome %+v", out)
	}
}

// TestRunner_VLAN: an egress push keeps the tag out of band in the
// sk_buff; the runtime gets it back in the bytes. At ingress the outer tag
// of a tagged frame is out of band, as after the kernel's skb_vlan_untag:
// the program sees vlan_present and an untagged frame, and the tag is back
// in the bytes afterwards.
func TestRunner_VLAN(t *testing.T) {
	rt := userspace.New()
	eth0, _ := rt.AddDevice("eth0")
	attach(t, rt, eth0, tcx.Egress, "vlan_push", engine.NewRunner(corpus(t, "vlan_push").Programs["vlan_push"]))
	frame := ipv4Frame(t, 64)
	out := rt.Transmit(eth0, bytes.Clone(frame))
	tagged := out.Frame
	if out.Fate != userspace.Transmitted || len(tagged) != len(frame)+4 || binary.BigEndian.Uint16(tagged[12:]) != 0x8100 ||
		binary.BigEndian.Uint16(tagged[14:])&0xfff != 100 || !bytes.Equal(tagged[16:], frame[12:]) {
		t.Fatalf("pushed frame % x (%+v)", tagged[:min(len(tagged), 24)], out)
	}

	// mark = vlan_present << 16 | vlan_tci; priority = the ethertype in
	// the bytes (as a little-endian load).
	c := newCollection(t, handSpec(asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 20, asm.Word), // vlan_present
		asm.LSh.Imm(asm.R2, 16),
		asm.LoadMem(asm.R3, asm.R1, 24, asm.Word), // vlan_tci
		asm.Or.Reg(asm.R2, asm.R3),
		asm.StoreMem(asm.R1, 8, asm.R2, asm.Word), // mark
		asm.LoadMem(asm.R2, asm.R1, 76, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R2, 12, asm.Half),
		asm.StoreMem(asm.R1, 32, asm.R3, asm.Word), // priority
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	}), engine.Options{NumCPU: 1})
	rt2 := userspace.New()
	attach(t, rt2, 1, tcx.Ingress, "vlan_info", engine.NewRunner(c.Programs["prog"]))
	out = rt2.ReceivePacket(xmitPacket(t, tagged, 1))
	wire := out.Packet.WireFrame(nil)
	if out.Packet.Mark != 1<<16|uint32(binary.BigEndian.Uint16(tagged[14:])) || out.Packet.Priority != 0x0008 || !bytes.Equal(wire, tagged) {
		t.Errorf("ingress of a tagged frame: mark %#x, ethertype seen %#x, frame after % x", out.Packet.Mark, out.Packet.Priority, wire[:18])
	}
}

func TestRunner_FaultDrops(t *testing.T) {
	c := newCollection(t, handSpec(asm.Instructions{asm.Mov.Imm(asm.R1, 0), asm.LoadMem(asm.R0, asm.R1, 0, asm.Word), asm.Return()}), engine.Options{NumCPU: 1})
	rt := userspace.New()
	attach(t, rt, 1, tcx.Ingress, "null", engine.NewRunner(c.Programs["prog"]))
	if out := rt.Receive(1, ipv4Frame(t, 64)); out.Fate != userspace.Dropped || out.Verdict != tcx.VerdictDrop {
		t.Errorf("outcome %+v", out)
	}
	if n := c.Programs["prog"].Faults(); n != 1 {
		t.Errorf("Faults() = %d", n)
	}
}

// TestRunner_Concurrent pushes frames from several goroutines through a
// runtime running two engine programs (run with -race): per-CPU counters
// summed over CPUs must equal a sequential run of the same frames.
func TestRunner_Concurrent(t *testing.T) {
	const workers, perWorker = 4, 500
	fs := frames(perWorker, 9)
	rt := userspace.New()
	eth0, _ := rt.AddDevice("eth0")
	counters := corpus(t, "proto_counters")
	attach(t, rt, eth0, tcx.Egress, "l4_classify", engine.NewRunner(corpus(t, "l4_classify").Programs["l4_classify"]))
	attach(t, rt, eth0, tcx.Egress, "proto_counters", engine.NewRunner(counters.Programs["proto_counters"]))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for _, f := range fs {
				rt.Transmit(eth0, bytes.Clone(f))
			}
		})
	}
	wg.Wait()

	seq := corpus(t, "proto_counters")
	p := seq.Programs["proto_counters"]
	l4 := corpus(t, "l4_classify").Programs["l4_classify"]
	for range workers {
		for _, f := range fs {
			if rv, _, _, err := l4.TestRun(f, nil); err != nil {
				t.Fatal(err)
			} else if int32(rv) != tcx.VerdictNext {
				continue // l4_classify decided; proto_counters does not run
			}
			if _, _, _, err := p.TestRun(f, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"class_stats", "port_stats"} {
		got, want := sums(t, counters, name), sums(t, seq, name)
		if (name == "class_stats" && len(got) == 0) || len(got) != len(want) {
			t.Fatalf("%s: %d keys, sequential run %d", name, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s key %x: %v, sequential %v", name, k, got[k], v)
			}
		}
	}
}

// sums adds a per-CPU map's 16-byte {packets, bytes} values over CPUs.
func sums(t *testing.T, c *engine.Collection, name string) map[string][2]uint64 {
	m := c.Maps[name]
	out := map[string][2]uint64{}
	next := make([]byte, m.Info().KeySize)
	vals := make([]byte, c.NumCPU()*16)
	var key []byte
	for m.NextKey(key, next) == nil {
		key = bytes.Clone(next)
		if err := m.Lookup(key, vals); err != nil {
			t.Fatal(err)
		}
		var s [2]uint64
		for cpu := range c.NumCPU() {
			s[0] += binary.NativeEndian.Uint64(vals[cpu*16:])
			s[1] += binary.NativeEndian.Uint64(vals[cpu*16+8:])
		}
		out[string(key)] = s
	}
	return out
}
