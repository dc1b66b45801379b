package engine_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/linuxerr"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/sock"
)

// lookupListener looks up the TCP socket of 10.0.0.1:80 for a packet from
// 10.0.0.2:1234 into r7 (returning 0 if none), then runs then.
func lookupListener(then ...asm.Instruction) asm.Instructions {
	tuple := make([]byte, sock.TupleSize4)
	copy(tuple, []byte{10, 0, 0, 2, 10, 0, 0, 1})
	binary.BigEndian.PutUint16(tuple[8:], 1234)
	binary.BigEndian.PutUint16(tuple[10:], 80)
	ins := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	for i := 0; i < len(tuple); i += 4 {
		ins = append(ins, asm.StoreImm(asm.R10, int16(-16+i), int64(int32(binary.LittleEndian.Uint32(tuple[i:]))), asm.Word))
	}
	ins = append(ins,
		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Reg(asm.R2, asm.R10), asm.Add.Imm(asm.R2, -16),
		asm.Mov.Imm(asm.R3, sock.TupleSize4), asm.Mov.Imm(asm.R4, -1), asm.Mov.Imm(asm.R5, 0),
		asm.FnSkLookupTcp.Call(),
		asm.JNE.Imm(asm.R0, 0, "found"),
		asm.Return(),
		asm.Mov.Reg(asm.R7, asm.R0).WithSymbol("found"),
	)
	return append(ins, then...)
}

func release(r asm.Register) asm.Instructions {
	return asm.Instructions{asm.Mov.Reg(asm.R1, r), asm.FnSkRelease.Call()}
}

func socketTable(t *testing.T) (*sock.Table, *sock.Socket) {
	tb := &sock.Table{}
	s, err := tb.Add(sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen,
		Local: netip.MustParseAddrPort("10.0.0.1:80"), Cookie: 77})
	if err != nil {
		t.Fatal(err)
	}
	return tb, s
}

// TestSockets_References: a lookup's reference is released once; a
// second release, or a read after the release, fails the run (the
// verifier refuses such programs); a reference a run leaks is dropped
// when it ends. Without a table nothing is found.
func TestSockets_References(t *testing.T) {
	tb, _ := socketTable(t)
	readState := asm.Instructions{asm.LoadMem(asm.R0, asm.R7, sock.OffState, asm.Word)}
	for _, c := range []struct {
		name    string
		ins     asm.Instructions
		want    uint32
		wantErr bool
	}{
		{"read, release", append(append(readState, asm.Mov.Reg(asm.R8, asm.R0)), append(release(asm.R7), asm.Mov.Reg(asm.R0, asm.R8), asm.Return())...), sock.StateListen, false},
		{"release twice", append(append(release(asm.R7), release(asm.R7)...), asm.Return()), 0, true},
		{"read after release", append(release(asm.R7), append(readState, asm.Return())...), 0, true},
		{"leak", append(readState, asm.Return()), sock.StateListen, false},
		{"tcp_sock, released through it", asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R7), asm.FnTcpSock.Call(), asm.Mov.Reg(asm.R8, asm.R0),
			asm.JEq.Imm(asm.R8, 0, "none"),
			asm.LoadMem(asm.R9, asm.R8, sock.OffSndCwnd, asm.Word),
			asm.Mov.Reg(asm.R1, asm.R8), asm.FnSkRelease.Call(),
			asm.Mov.Reg(asm.R0, asm.R9), asm.Return(),
			asm.Mov.Imm(asm.R0, 99).WithSymbol("none"), asm.Return(),
		}, 10, false},
		{"fullsock, listener", append(asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R7), asm.FnSkFullsock.Call(), asm.Mov.Reg(asm.R1, asm.R0), asm.FnGetListenerSock.Call(),
			asm.Mov.Reg(asm.R8, asm.R0), asm.Sub.Reg(asm.R8, asm.R7)}, append(release(asm.R7), asm.Mov.Reg(asm.R0, asm.R8), asm.Return())...), 0, false},
	} {
		c := c
		coll := newCollection(t, handSpec(lookupListener(c.ins...)), engine.Options{NumCPU: 1, Sockets: tb})
		for range vm.MaxDynamicRegions + 4 { // a run's sockets do not outlive it
			res, _, err := run(t, coll, 0, etherFrame(0x88b5, 60))
			if (err != nil) != c.wantErr || !c.wantErr && res.Retval != c.want {
				t.Errorf("%s: retval %d, %v", c.name, res.Retval, err)
			}
		}
		if c.name == "read, release" {
			empty := newCollection(t, handSpec(lookupListener(c.ins...)), engine.Options{NumCPU: 1})
			if res, _, err := run(t, empty, 0, etherFrame(0x88b5, 60)); err != nil || res.Retval != 0 {
				t.Errorf("without sockets: retval %d, %v", res.Retval, err)
			}
		}
	}
}

// TestSockets_Assign: bpf_sk_assign gives the packet the socket at tc
// ingress only, and releases nothing of the program's reference.
func TestSockets_Assign(t *testing.T) {
	tb, s := socketTable(t)
	ins := lookupListener(
		asm.Mov.Reg(asm.R1, asm.R6), asm.Mov.Reg(asm.R2, asm.R7), asm.Mov.Imm(asm.R3, 0), asm.FnSkAssign.Call(),
		asm.Mov.Reg(asm.R8, asm.R0))
	ins = append(append(ins, release(asm.R7)...), asm.Mov.Reg(asm.R0, asm.R8), asm.Return())
	coll := newCollection(t, handSpec(ins), engine.Options{NumCPU: 1, Sockets: tb})
	x, err := coll.NewExecutor(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ingress := range []bool{false, true} {
		pkt, err := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
		if err != nil {
			t.Fatal(err)
		}
		pkt.AtIngress = ingress
		res, err := x.Run(coll.Programs["prog"], pkt)
		want, wantSock := int32(0), s.Cookie
		if !ingress {
			want, wantSock = -linuxerr.EOPNOTSUPP, 0
		}
		if err != nil || int32(res.Retval) != want || pkt.Sock != wantSock {
			t.Errorf("ingress %v: retval %d, sock %d, %v; want %d, %d", ingress, int32(res.Retval), pkt.Sock, err, want, wantSock)
		}
	}
}

// TestSockets_NoAlloc: a lookup and its release do not allocate.
func TestSockets_NoAlloc(t *testing.T) {
	tb, _ := socketTable(t)
	coll := newCollection(t, handSpec(lookupListener(append(release(asm.R7), asm.Mov.Imm(asm.R0, 1), asm.Return())...)), engine.Options{NumCPU: 1, Sockets: tb})
	x, pkt := executorAndPacket(t, coll)
	var runErr error
	n := testing.AllocsPerRun(200, func() {
		res, err := x.Run(coll.Programs["prog"], pkt)
		if err != nil || res.Retval != 1 {
			runErr = errors.Join(err, syscall.EINVAL)
		}
	})
	if runErr != nil || n != 0 {
		t.Errorf("%v allocations per run, %v", n, runErr)
	}
}

// TestSockets_ManyRuns: each run leaks its reference to another socket; a
// run's sockets end with it, so the twentieth run finds its socket as the
// first did.
func TestSockets_ManyRuns(t *testing.T) {
	tb := &sock.Table{}
	const n = vm.MaxDynamicRegions + 4
	for i := range n {
		if _, err := tb.Add(sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen,
			Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(100+i))}); err != nil {
			t.Fatal(err)
		}
	}
	// lookupListener's tuple with the destination port taken from cb[0]
	// (network byte order), then the socket's src_port returned.
	ins := lookupListener(asm.LoadMem(asm.R0, asm.R7, sock.OffSrcPort, asm.Word), asm.Return())
	at := slicesIndex(ins, asm.FnSkLookupTcp.Call())
	patch := asm.Instructions{asm.LoadMem(asm.R0, asm.R6, skb.CtxCB, asm.Word), asm.StoreMem(asm.R10, -16+10, asm.R0, asm.Half)}
	ins = append(ins[:at:at], append(patch, ins[at:]...)...)
	coll := newCollection(t, handSpec(ins), engine.Options{NumCPU: 1, Sockets: tb})
	x, err := coll.NewExecutor(0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		pkt, err := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint16(pkt.CB[:], uint16(100+i))
		res, err := x.Run(coll.Programs["prog"], pkt)
		if err != nil || res.Retval != uint32(100+i) {
			t.Fatalf("run %d: retval %d, %v", i, res.Retval, err)
		}
	}
}

func slicesIndex(ins asm.Instructions, want asm.Instruction) int {
	for i, in := range ins {
		if in.OpCode == want.OpCode && in.Constant == want.Constant {
			return i
		}
	}
	return -1
}

// TestSockets_NetnsCookie: bpf_get_netns_cookie answers the table's
// namespace for a context and the initial namespace for NULL (0 without
// a table).
func TestSockets_NetnsCookie(t *testing.T) {
	tb := &sock.Table{NetnsCookie: 4242, InitNetnsCookie: 3}
	for _, c := range []struct {
		null bool
		tb   *sock.Table
		want uint32
	}{{false, tb, 4242}, {true, tb, 3}, {false, nil, 0}} {
		ins := asm.Instructions{}
		if c.null {
			ins = append(ins, asm.Mov.Imm(asm.R1, 0))
		}
		ins = append(ins, asm.FnGetNetnsCookie.Call(), asm.Return())
		coll := newCollection(t, handSpec(ins), engine.Options{NumCPU: 1, Sockets: c.tb})
		if res, _, err := run(t, coll, 0, etherFrame(0x88b5, 60)); err != nil || res.Retval != c.want {
			t.Errorf("null %v, table %v: %d, %v; want %d", c.null, c.tb != nil, res.Retval, err, c.want)
		}
	}
}

// BenchmarkSockets measures a run that looks a socket up in a table of
// 64 and releases it, beside the same run without the lookup (baseline).
func BenchmarkSockets(b *testing.B) {
	tb := &sock.Table{}
	for i := range 64 {
		if _, err := tb.Add(sock.Socket{Family: sock.AFInet, Protocol: sock.ProtoTCP, State: sock.StateListen,
			Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(40+i))}); err != nil { // 80 among them
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		ins  asm.Instructions
	}{
		{"baseline", asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}},
		{"lookup-release", lookupListener(append(release(asm.R7), asm.Mov.Imm(asm.R0, 1), asm.Return())...)},
	} {
		b.Run(c.name, func(b *testing.B) {
			coll := newCollection(b, handSpec(c.ins), engine.Options{NumCPU: 1, Sockets: tb})
			x, pkt := executorAndPacket(b, coll)
			for b.Loop() {
				if res, err := x.Run(coll.Programs["prog"], pkt); err != nil || res.Retval != 1 {
					b.Fatalf("retval %d, %v", res.Retval, err)
				}
			}
		})
	}
}

// executorAndPacket is an executor of coll on CPU 0 and a frame to run.
func executorAndPacket(t testing.TB, coll *engine.Collection) (*engine.Executor, *skb.Packet) {
	t.Helper()
	x, err := coll.NewExecutor(0)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := skb.New(etherFrame(0x88b5, 60), skb.Loopback())
	if err != nil {
		t.Fatal(err)
	}
	return x, pkt
}
