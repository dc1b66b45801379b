package kernel_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
)

// TestNetNS_Ping_Verdicts: the chain stops at the first verdict that is not
// NEXT; drops show up as ENOBUFS (egress) or no delivery (ingress).
func TestNetNS_Ping_Verdicts(t *testing.T) {
	e := newEnv(t)
	in1, in2 := e.probe(1, tcx.VerdictNext), e.probe(2, tcx.VerdictPass)
	in3 := e.probe(3, tcx.VerdictNext)
	e.attach(e.lo, tcx.Ingress, in1, tcx.AttachOptions{})
	e.attach(e.lo, tcx.Ingress, in2, tcx.AttachOptions{})
	e.attach(e.lo, tcx.Ingress, in3, tcx.AttachOptions{})
	out := e.probe(4, tcx.VerdictNext)
	e.attach(e.lo, tcx.Egress, out, tcx.AttachOptions{})
	e.traffic(1, 2, 4) // PASS stops the chain before tc3

	// A drop on egress: the sender hears ENOBUFS, ingress never runs.
	drop := e.probe(5, tcx.VerdictDrop)
	e.attach(e.lo, tcx.Egress, drop, tcx.AttachOptions{})
	e.resetSeen()
	wantErrno(t, e.ns.Ping(10*time.Second), unix.ENOBUFS, "ping with egress drop")
	if got := e.ran(8); !slices.Equal(got, []int{4, 5}) {
		t.Errorf("egress drop: probes %v ran, want [4 5]", got)
	}
	e.detach(e.lo, tcx.Egress, drop, tcx.DetachOptions{})

	// A drop on ingress: nothing arrives.
	idrop := e.probe(6, tcx.VerdictDrop)
	e.attach(e.lo, tcx.Ingress, idrop, tcx.AttachOptions{Flags: tcx.FlagBefore})
	e.resetSeen()
	wantErrno(t, e.ns.Ping(200*time.Millisecond), unix.ETIMEDOUT, "ping with ingress drop")
	e.waitSeen(6)
	if got := e.ran(8); !slices.Equal(got, []int{4, 6}) {
		t.Errorf("ingress drop: probes %v ran, want [4 6]", got)
	}
}

// TestNetNS_AddFilter_AfterTCX: classic cls_bpf runs after tcx when the tcx
// chain ends in NEXT, and not after PASS (tc_opts_chain_classic, _mixed).
func TestNetNS_AddFilter_AfterTCX(t *testing.T) {
	for _, c := range []struct {
		kind string
		dir  tcx.Direction
	}{
		{kernel.QdiscClsact, tcx.Ingress},
		{kernel.QdiscClsact, tcx.Egress},
		{kernel.QdiscIngress, tcx.Ingress},
	} {
		t.Run(c.kind+"/"+c.dir.String(), func(t *testing.T) {
			e := newEnv(t)
			next, pass, classic := e.probe(1, tcx.VerdictNext), e.probe(5, tcx.VerdictPass), e.probe(3, tcx.VerdictPass)
			if err := e.ns.AddQdisc(e.lo, c.kind); err != nil {
				t.Fatal(err)
			}
			if err := e.ns.AddFilter(e.lo, c.dir, 1, 1, classic); err != nil {
				t.Fatal(err)
			}
			e.traffic(3)
			l := e.link(e.lo, c.dir, next, tcx.LinkOptions{})
			e.traffic(1, 3)
			if err := l.Update(pass, tcx.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			e.traffic(5)
			if err := l.Detach(); err != nil {
				t.Fatal(err)
			}
			// The qdisc keeps the hook's entry: empty, but revisions go on.
			res, err := e.b.Query(e.lo, c.dir, tcx.QueryOptions{})
			if err != nil || res.Count != 0 {
				t.Errorf("query after detach with qdisc: %+v %v", res, err)
			}
			if err := e.ns.DeleteFilter(e.lo, c.dir, 1, 1); err != nil {
				t.Fatal(err)
			}
			e.traffic()
			wantErrno(t, e.ns.DeleteFilter(e.lo, c.dir, 1, 1), unix.ENOENT, "delete absent filter")
			if err := e.ns.DeleteQdisc(e.lo, c.kind); err != nil {
				t.Fatal(err)
			}
			wantErrno(t, e.ns.DeleteQdisc(e.lo, c.kind), unix.EINVAL, "delete absent qdisc")
		})
	}
}

func TestNetNS_AddQdisc_Errors(t *testing.T) {
	e := newEnv(t)
	wantErrno(t, e.ns.AddQdisc(e.lo, "no-such-qdisc"), unix.ENOENT, "unknown qdisc kind")
	if err := e.ns.AddQdisc(e.lo, kernel.QdiscClsact); err != nil {
		t.Fatal(err)
	}
	// The kernel checks the slot before the kind.
	wantErrno(t, e.ns.AddQdisc(e.lo, kernel.QdiscIngress), unix.EEXIST, "ingress over clsact")
	wantErrno(t, e.ns.AddQdisc(99, kernel.QdiscClsact), unix.ENODEV, "qdisc on unknown device")
	tc1 := e.tc(1)
	closeOK(t, tc1)
	wantErrno(t, e.ns.AddFilter(e.lo, tcx.Ingress, 1, 1, tc1), unix.EBADF, "filter with closed program")
}

// TestNetNS_PacketSocket sends frames over a veth pair: egress of one end,
// ingress of the other. A tap (ETH_P_ALL) sees frames before ingress, a
// protocol socket only what ingress let through.
func TestNetNS_PacketSocket(t *testing.T) {
	const etherType = 0x88b5 // IEEE local experimental
	e := newEnv(t)
	ia, ib, err := e.ns.AddVethPair("pkt0", "pkt1")
	if err != nil {
		t.Fatal(err)
	}
	proto, err := e.ns.OpenPacketSocket(ib, etherType)
	if err != nil {
		t.Fatal(err)
	}
	defer proto.Close()
	tap, err := e.ns.OpenPacketSocket(ib, unix.ETH_P_ALL)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()

	frame := append(bytes.Repeat([]byte{0xff}, 6), 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5)
	frame = append(frame, []byte("tcx-go frame")...)
	e.attach(ia, tcx.Egress, e.probe(1, tcx.VerdictNext), tcx.AttachOptions{})
	l := e.link(ib, tcx.Ingress, e.probe(2, tcx.VerdictPass), tcx.LinkOptions{})
	e.resetSeen()
	if err := e.ns.SendFrame(ia, frame); err != nil {
		t.Fatal(err)
	}
	got, err := proto.Recv(10 * time.Second)
	if err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("received %x %v, want %x", got, err, frame)
	}
	if got := e.ran(4); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("probes %v ran, want [1 2]", got)
	}
	if _, err := tap.Recv(10 * time.Second); err != nil {
		t.Errorf("tap: %v", err)
	}

	// Ingress drop: the tap still sees the frame, the protocol socket not.
	if err := l.Update(e.probe(3, tcx.VerdictDrop), tcx.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.resetSeen()
	if err := e.ns.SendFrame(ia, frame); err != nil {
		t.Fatal(err)
	}
	if _, err := tap.Recv(10 * time.Second); err != nil {
		t.Errorf("tap with ingress drop: %v", err)
	}
	e.waitSeen(3)
	_, err = proto.Recv(100 * time.Millisecond)
	wantErrno(t, err, unix.ETIMEDOUT, "protocol socket with ingress drop")

	// Egress drop: Send reports it.
	e.attach(ia, tcx.Egress, e.probe(4, tcx.VerdictDrop), tcx.AttachOptions{})
	sender, err := e.ns.OpenPacketSocket(ia, etherType)
	if err != nil {
		t.Fatal(err)
	}
	wantErrno(t, sender.Send(frame), unix.ENOBUFS, "send with egress drop")
	closeOK(t, sender)
	wantErrno(t, sender.Close(), unix.EBADF, "second socket close")
	wantErrno(t, sender.Send(frame), unix.EBADF, "send on closed socket")
}
