package engine_test

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/skb"
	"github.com/tcxgo/tcx/userspace"
)

// chainStateSpec is issue 11's example: "write" sets cb[0] = 42,
// cb[4] = 7, bpf_set_hash(0x1234) and tstamp = 1000 and returns TCX_NEXT;
// "record" stores cb[0], cb[4], hash and tstamp into the array map "seen"
// (key 0: four u64).
func chainStateSpec() *ebpf.CollectionSpec {
	write := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.R6, skb.CtxCB, 42, asm.Word),
		asm.StoreImm(asm.R6, skb.CtxCB+16, 7, asm.Word),
		asm.Mov.Imm(asm.R2, 0x1234),
		asm.FnSetHash.Call(),
		asm.Mov.Imm(asm.R2, 1000),
		asm.StoreMem(asm.R6, skb.CtxTstamp, asm.R2, asm.DWord),
		asm.Mov.Imm(asm.R0, -1),
		asm.Return(),
	}
	record := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("seen"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R2, asm.R6, skb.CtxCB, asm.Word),
		asm.StoreMem(asm.R0, 0, asm.R2, asm.DWord),
		asm.LoadMem(asm.R2, asm.R6, skb.CtxCB+16, asm.Word),
		asm.StoreMem(asm.R0, 8, asm.R2, asm.DWord),
		asm.LoadMem(asm.R2, asm.R6, skb.CtxHash, asm.Word),
		asm.StoreMem(asm.R0, 16, asm.R2, asm.DWord),
		asm.LoadMem(asm.R2, asm.R6, skb.CtxTstamp, asm.DWord),
		asm.StoreMem(asm.R0, 24, asm.R2, asm.DWord),
		asm.Mov.Imm(asm.R0, -1).WithSymbol("out"),
		asm.Return(),
	}
	prog := func(name string, insns asm.Instructions) *ebpf.ProgramSpec {
		return &ebpf.ProgramSpec{Name: name, Type: ebpf.SchedCLS, SectionName: "tc", Instructions: insns, License: "GPL"}
	}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"seen": {Name: "seen", Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: 1}},
		Programs: map[string]*ebpf.ProgramSpec{
			"write":  prog("write", write),
			"record": prog("record", record),
		},
	}
}

// TestRunner_ChainSharesSkb: the second ELF program of a chain sees what
// the first wrote (the kernel shows cb[0] 42, cb[4] 7, hash 0x1234 and
// tstamp 1000 on a veth egress; this runtime used to show zeros), and so
// does a program on the peer's ingress after the veth crossing, with no
// allocation on the way.
func TestRunner_ChainSharesSkb(t *testing.T) {
	c := newCollection(t, chainStateSpec(), engine.Options{NumCPU: 1})
	rt := userspace.New()
	va, vb, err := rt.AddVethPair("va", "vb")
	if err != nil {
		t.Fatal(err)
	}
	attach(t, rt, va, tcx.Egress, "write", engine.NewRunner(c.Programs["write"]))
	attach(t, rt, va, tcx.Egress, "record", engine.NewRunner(c.Programs["record"]))
	check := func(where string) {
		t.Helper()
		v := make([]byte, 32)
		if err := c.Maps["seen"].Lookup(make([]byte, 4), v); err != nil {
			t.Fatal(err)
		}
		le := binary.LittleEndian
		if got := [4]uint64{le.Uint64(v), le.Uint64(v[8:]), le.Uint64(v[16:]), le.Uint64(v[24:])}; got != [4]uint64{42, 7, 0x1234, 1000} {
			t.Errorf("%s: cb[0], cb[4], hash, tstamp = %v, want [42 7 4660 1000]", where, got)
		}
	}
	frame := etherFrame(0x88b5, 64)
	buf := make([]byte, len(frame))
	copy(buf, frame)
	if out := rt.Transmit(va, buf); out.Fate != userspace.Delivered || out.Ifindex != vb {
		t.Fatalf("outcome %+v", out)
	}
	check("second program of the chain")
	if err := c.Maps["seen"].Update(make([]byte, 4), make([]byte, 32), 0); err != nil {
		t.Fatal(err)
	}
	attach(t, rt, vb, tcx.Ingress, "record", engine.NewRunner(c.Programs["record"]))
	rt.Transmit(va, buf)
	check("peer's ingress after the veth crossing")
	if n := testing.AllocsPerRun(200, func() {
		copy(buf, frame)
		if out := rt.Transmit(va, buf); out.Fate != userspace.Delivered {
			t.Fatalf("outcome %+v", out)
		}
	}); n != 0 {
		t.Errorf("ELF chain over a veth pair: %v allocations per frame", n)
	}
}

// TestRunner_ChainStress sends frames from two goroutines through an ELF
// chain on a veth pair while a third attaches and detaches a program at
// the chain's head: every frame must arrive with the ELF program's writes
// (run it with -race: packets are per frame, executors per CPU).
func TestRunner_ChainStress(t *testing.T) {
	c := newCollection(t, chainStateSpec(), engine.Options{NumCPU: 2})
	rt := userspace.New()
	va, vb, err := rt.AddVethPair("va", "vb")
	if err != nil {
		t.Fatal(err)
	}
	attach(t, rt, va, tcx.Egress, "write", engine.NewRunner(c.Programs["write"]))
	var bad atomic.Int64
	attach(t, rt, vb, tcx.Ingress, "check", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		if p.CB[0] != 42 || p.CB[16] != 7 || p.Hash != 0x1234 || p.Tstamp != 1000 {
			bad.Add(1)
		}
		return tcx.VerdictPass
	}))
	flip, err := rt.NewProgram("flip", engine.NewRunner(c.Programs["record"]))
	if err != nil {
		t.Fatal(err)
	}
	frame := etherFrame(0x88b5, 64)
	var wg sync.WaitGroup
	var stop atomic.Bool
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(frame))
			for i := 0; i < 2000 && !stop.Load(); i++ {
				copy(buf, frame)
				if out := rt.Transmit(va, buf); out.Fate != userspace.Delivered {
					bad.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		if err := rt.Attach(va, tcx.Egress, flip, tcx.AttachOptions{Flags: tcx.FlagBefore}); err != nil {
			t.Fatal(err)
		}
		if err := rt.Detach(va, tcx.Egress, flip, tcx.DetachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d frames lost the chain's state or were not delivered", n)
	}
}

// TestRunner_ChainKeepsCPU: the programs of a trip run on one simulated
// CPU, even with two senders competing for the executors: the second
// program's bpf_get_smp_processor_id equals the first's (left in cb[1]).
func TestRunner_ChainKeepsCPU(t *testing.T) {
	firstSpec := handSpec(asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetSmpProcessorId.Call(),
		asm.StoreMem(asm.R6, skb.CtxCB+4, asm.R0, asm.Word),
		asm.Mov.Imm(asm.R0, -1),
		asm.Return(),
	})
	spec := handSpec(asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetSmpProcessorId.Call(),
		asm.LoadMem(asm.R1, asm.R6, skb.CtxCB+4, asm.Word),
		asm.Mov.Imm(asm.R2, 0),
		asm.JEq.Reg(asm.R0, asm.R1, "same"),
		asm.Mov.Imm(asm.R2, 1),
		asm.StoreMem(asm.R6, skb.CtxMark, asm.R2, asm.Word).WithSymbol("same"),
		asm.Mov.Imm(asm.R0, -1),
		asm.Return(),
	})
	firstSpec.Programs["second"] = spec.Programs["prog"]
	firstSpec.Programs["second"].Name = "second"
	first := newCollection(t, firstSpec, engine.Options{NumCPU: 2})
	rt := userspace.New()
	va, _, err := rt.AddVethPair("va", "vb")
	if err != nil {
		t.Fatal(err)
	}
	attach(t, rt, va, tcx.Egress, "first", engine.NewRunner(first.Programs["prog"]))
	// Let the other senders take executors between the two programs.
	attach(t, rt, va, tcx.Egress, "yield", userspace.RunnerFunc(func(*userspace.Packet) int32 {
		runtime.Gosched()
		return tcx.VerdictNext
	}))
	attach(t, rt, va, tcx.Egress, "second", engine.NewRunner(first.Programs["second"]))
	var moved atomic.Int64
	attach(t, rt, va, tcx.Egress, "check", userspace.RunnerFunc(func(p *userspace.Packet) int32 {
		if p.Mark != 0 {
			moved.Add(1)
		}
		return tcx.VerdictNext
	}))
	frame := etherFrame(0x88b5, 64)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(frame))
			for range 2000 {
				copy(buf, frame)
				rt.Transmit(va, buf)
			}
		}()
	}
	wg.Wait()
	if n := moved.Load(); n != 0 {
		t.Fatalf("%d of 8000 frames changed CPU within a chain", n)
	}
}
