package engine_test

import (
	"encoding/binary"
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
