package userspace_test

import (
	"sync"
	"testing"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// TestRuntime_ChainSharesPacket: the programs of a chain, and of the hooks
// after it, run on one sk_buff: what the first writes the second reads.
func TestRuntime_ChainSharesPacket(t *testing.T) {
	e := newEnv(t)
	va, vb, _ := e.rt.AddVethPair("va", "vb")
	write, _ := e.rt.NewProgram("write", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		p.CB[0], p.CB[16] = 42, 7
		p.SetHash(0x1234)
		p.Tstamp = 1000
		p.Mark, p.Priority = 5, 6
		return tcx.VerdictNext
	}))
	type seen struct {
		cb0, cb4      byte
		hash          uint32
		sw, l4        bool
		tstamp        uint64
		mark, prio    uint32
		ifindex, iif  uint32
		dir           tcx.Direction
		pktType       uint8
		wireLen, plen uint32
	}
	var got []seen
	read, _ := e.rt.NewProgram("read", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		got = append(got, seen{p.CB[0], p.CB[16], p.Hash, p.SWHash, p.L4Hash, p.Tstamp, p.Mark, p.Priority,
			p.Ifindex, p.IngressIfindex, p.Direction(), p.PktType, p.WireLen, uint32(p.Len())})
		return tcx.VerdictNext
	}))
	e.mustAttach(va, tcx.Egress, write, tcx.AttachOptions{})
	e.mustAttach(va, tcx.Egress, read, tcx.AttachOptions{})
	e.mustAttach(vb, tcx.Ingress, read, tcx.AttachOptions{})
	buf := append([]byte(nil), frame...)
	buf[0] = 0x02 // unicast to a MAC vb does not have: PACKET_OTHERHOST
	out := e.rt.Transmit(va, buf)
	if out.Fate != userspace.Delivered || out.Ifindex != vb || out.Runtime != e.rt {
		t.Fatalf("outcome %+v", out)
	}
	n := uint32(len(frame))
	want := []seen{
		{42, 7, 0x1234, true, true, 1000, 5, 6, uint32(va), 0, tcx.Egress, skb.PacketHost, n, n},
		// veth crossing within a namespace: priority and skb_iif reset,
		// pkt_type from vb's address, wire_len without the MAC header.
		{42, 7, 0x1234, true, true, 1000, 5, 0, uint32(vb), uint32(vb), tcx.Ingress, skb.PacketOtherHost, n - 14, n},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("seen\n%+v\nwant\n%+v", got, want)
	}
}

// TestRuntime_VethAcrossRuntimes: a veth pair between two runtimes (network
// namespaces) scrubs the mark and a realtime tstamp, and bpf_redirect_peer
// crosses it from the host end's ingress keeping both.
func TestRuntime_VethAcrossRuntimes(t *testing.T) {
	host, guest := userspace.New(), userspace.New()
	hv, gv, err := host.AddVethPairTo("hv", guest, "gv")
	isErr(t, err, nil)
	if hv != 2 || gv != 2 {
		t.Fatalf("ifindexes %d %d: each end gets its own runtime's next", hv, gv)
	}
	hd, _, _ := host.AddVethPair("h1", "h0") // h0 = 3 feeds host ingress on h1
	var marks []uint32
	mark, _ := host.NewProgram("mark", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		p.Mark, p.Tstamp = 9, 77
		return tcx.VerdictNext
	}))
	peer, _ := host.NewProgram("peer", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		p.Mark, p.Tstamp = 9, 77
		return int32(p.RedirectPeer(uint32(hv), 0))
	}))
	look, _ := guest.NewProgram("look", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		marks = append(marks, p.Mark, uint32(p.Tstamp), p.Ifindex)
		return tcx.VerdictNext
	}))
	isErr(t, host.Attach(hv, tcx.Egress, mark, tcx.AttachOptions{}), nil)
	isErr(t, guest.Attach(gv, tcx.Ingress, look, tcx.AttachOptions{}), nil)
	out := host.Transmit(hv, append([]byte(nil), frame...))
	if out.Fate != userspace.Delivered || out.Runtime != guest || out.Ifindex != gv || len(marks) != 3 || marks[0] != 0 || marks[1] != 0 || marks[2] != uint32(gv) {
		t.Fatalf("veth across: %+v, guest saw %v", out, marks)
	}
	marks = marks[:0]
	isErr(t, host.Attach(hd, tcx.Ingress, peer, tcx.AttachOptions{}), nil)
	h0, _ := host.Ifindex("h0")
	out = host.Transmit(h0, append([]byte(nil), frame...))
	if out.Fate != userspace.Delivered || out.Runtime != guest || out.Redirects != 1 || len(marks) != 3 || marks[0] != 9 || marks[1] != 77 {
		t.Fatalf("redirect_peer: %+v, guest saw %v", out, marks)
	}
	// Within one namespace bpf_redirect_peer drops: the peer must be elsewhere.
	isErr(t, host.Detach(hd, tcx.Ingress, peer, tcx.DetachOptions{}), nil)
	local, _ := host.NewProgram("local", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		return int32(p.RedirectPeer(uint32(hd), 0))
	}))
	isErr(t, host.Attach(hd, tcx.Ingress, local, tcx.AttachOptions{}), nil)
	if out := host.Transmit(h0, append([]byte(nil), frame...)); out.Fate != userspace.Dropped {
		t.Fatalf("redirect_peer within a namespace: %+v", out)
	}
	isErr(t, guest.DeleteDevice(gv), nil)
	if _, ok := host.Ifindex("hv"); ok {
		t.Fatal("the host end survived its peer")
	}
}

// TestRuntime_VethAcrossRuntimes_Concurrent: pairs between two runtimes
// come and go from both sides at once (each side takes both control locks
// in its own order) while frames cross them: no deadlock, no race (-race),
// and every frame ends somewhere.
func TestRuntime_VethAcrossRuntimes_Concurrent(t *testing.T) {
	x, y := userspace.New(), userspace.New()
	var wg sync.WaitGroup
	churn := func(from, to *userspace.Runtime, a, b string) {
		defer wg.Done()
		for range 300 {
			ia, _, err := from.AddVethPairTo(a, to, b)
			if err != nil {
				t.Error(err)
				return
			}
			if out := from.Transmit(ia, append([]byte(nil), frame...)); out.Fate == 0 {
				t.Errorf("no fate: %+v", out)
			}
			if err := from.DeleteDevice(ia); err != nil {
				t.Error(err)
				return
			}
		}
	}
	wg.Add(2)
	go churn(x, y, "xa", "yb")
	go churn(y, x, "ya", "xb")
	wg.Wait()
	for _, n := range []string{"xa", "xb"} {
		if _, ok := x.Ifindex(n); ok {
			t.Errorf("%s survived", n)
		}
	}
}
