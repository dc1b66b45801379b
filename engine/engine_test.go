package engine_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/internal/testkit/pktgen"
	"github.com/tcxgo/tcx/maps"
	"github.com/tcxgo/tcx/skb"
)

const corpusDir = "../testdata/progs"

// corpusSpec parses one corpus object.
func corpusSpec(t testing.TB, name string) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := engine.LoadCollectionSpec(filepath.Join(corpusDir, name+".o"))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// corpus loads one corpus object with two CPUs.
func corpus(t testing.TB, name string) *engine.Collection {
	t.Helper()
	return newCollection(t, corpusSpec(t, name), engine.Options{NumCPU: 2})
}

func newCollection(t testing.TB, spec *ebpf.CollectionSpec, opts engine.Options) *engine.Collection {
	t.Helper()
	c, err := engine.NewCollection(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// handSpec is a collection with one SCHED_CLS program "prog" and maps.
func handSpec(insns asm.Instructions, ms ...*ebpf.MapSpec) *ebpf.CollectionSpec {
	spec := &ebpf.CollectionSpec{
		Maps:     map[string]*ebpf.MapSpec{},
		Programs: map[string]*ebpf.ProgramSpec{"prog": {Name: "prog", Type: ebpf.SchedCLS, SectionName: "tc", Instructions: insns, License: "GPL"}},
	}
	for _, m := range ms {
		spec.Maps[m.Name] = m
	}
	return spec
}

func TestNewCollection_Corpus(t *testing.T) {
	objs, err := filepath.Glob(filepath.Join(corpusDir, "*.o"))
	if err != nil || len(objs) < 20 {
		t.Fatalf("corpus: %d objects, %v", len(objs), err)
	}
	progs := 0
	for _, obj := range objs {
		spec, err := engine.LoadCollectionSpec(obj)
		if err != nil {
			t.Fatal(err)
		}
		c := newCollection(t, spec, engine.Options{NumCPU: 2})
		if len(c.Programs) != len(spec.Programs) || len(c.Maps) != len(spec.Maps) {
			t.Errorf("%s: %d programs, %d maps; spec has %d, %d", obj, len(c.Programs), len(c.Maps), len(spec.Programs), len(spec.Maps))
		}
		for name, p := range c.Programs {
			if p.Name() != name || p.SectionName() != "tc" || p.Len() < len(spec.Programs[name].Instructions) {
				t.Errorf("%s: %s: name %q section %q len %d", obj, name, p.Name(), p.SectionName(), p.Len())
			}
		}
		for name, m := range c.Maps {
			if frozen := m.Info().Frozen; frozen != strings.HasPrefix(name, ".rodata") {
				t.Errorf("%s: map %s frozen = %v", obj, name, frozen)
			}
		}
		progs += len(c.Programs)
	}
	if progs < 29 {
		t.Errorf("%d programs loaded", progs)
	}
}

func TestNewCollection_GlobalData(t *testing.T) {
	spec := corpusSpec(t, "config_filter")
	c := newCollection(t, spec, engine.Options{NumCPU: 1})
	for _, sec := range []string{".data", ".rodata", ".bss", ".data.stats"} {
		m := c.Maps[sec]
		if m == nil {
			t.Fatalf("no map %s", sec)
		}
		got := make([]byte, m.Info().ValueSize)
		if err := m.Lookup([]byte{0, 0, 0, 0}, got); err != nil {
			t.Fatal(err)
		}
		want := spec.Maps[sec].Contents[0].Value.([]byte)
		if !bytes.Equal(got, want) {
			t.Errorf("%s = % x, want the ELF's % x", sec, got, want)
		}
	}
	// A .rodata variable set on the spec reaches the program.
	spec = corpusSpec(t, "mpls_push")
	if err := spec.Variables["label"].Set(uint32(0xabcde)); err != nil {
		t.Fatal(err)
	}
	p := newCollection(t, spec, engine.Options{NumCPU: 1}).Programs["mpls_push"]
	_, out, _, err := p.TestRun(ipv4Frame(t, 64), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Label entry: label<<12 | tc<<9 | S<<8 | ttl, after the MAC addresses and 0x8847.
	if out[12] != 0x88 || out[13] != 0x47 || out[14] != 0xab || out[15] != 0xcd || out[16]>>4 != 0xe {
		t.Errorf("MPLS header % x, want label 0xabcde", out[12:18])
	}
}

func TestNewCollection_Rejects(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  *ebpf.CollectionSpec
		errno syscall.Errno
		want  string
	}{
		{"unknown helper", handSpec(asm.Instructions{asm.FnGetCurrentPidTgid.Call(), asm.Return()}), syscall.EINVAL, "FnGetCurrentPidTgid"},
		{"write to r10", handSpec(asm.Instructions{asm.Mov.Imm(asm.R10, 0), asm.Return()}), syscall.EACCES, "frame pointer is read only"},
		{"jump out of range", handSpec(asm.Instructions{{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Ja), Offset: 10}, asm.Return()}), syscall.EINVAL, "insn 0"},
		{"unknown map", handSpec(asm.Instructions{asm.LoadMapPtr(asm.R1, 0).WithReference("nope"), asm.Mov.Imm(asm.R0, 0), asm.Return()}), syscall.EINVAL, `unknown map "nope"`},
		{"unknown function", handSpec(asm.Instructions{asm.Call.Label("missing"), asm.Return()}), syscall.EINVAL, `"missing"`},
		{"kfunc", handSpec(asm.Instructions{{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Src: asm.PseudoKfuncCall, Constant: 1}, asm.Return()}), syscall.EINVAL, "kfunc"},
		{"not SCHED_CLS", func() *ebpf.CollectionSpec {
			s := handSpec(asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()})
			s.Programs["prog"].Type = ebpf.XDP
			return s
		}(), syscall.EINVAL, "not SCHED_CLS"},
		{"map value of a hash", handSpec(asm.Instructions{asm.LoadMapValue(asm.R1, 0, 0).WithReference("h"), asm.Mov.Imm(asm.R0, 0), asm.Return()},
			&ebpf.MapSpec{Name: "h", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1}), syscall.EINVAL, "no direct value access"},
		{"unsupported map in use", handSpec(asm.Instructions{asm.LoadMapPtr(asm.R1, 0).WithReference("q"), asm.Mov.Imm(asm.R0, 0), asm.Return()},
			&ebpf.MapSpec{Name: "q", Type: ebpf.Queue, ValueSize: 4, MaxEntries: 1}), syscall.EOPNOTSUPP, `insn 0: map "q"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := engine.NewCollection(c.spec, engine.Options{NumCPU: 1})
			if !errors.Is(err, c.errno) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v; want %v mentioning %q", err, c.errno, c.want)
			}
		})
	}
	// Validation errors name the instruction.
	_, err := engine.NewCollection(handSpec(asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R10, 0), asm.Return()}), engine.Options{NumCPU: 1})
	var ve *engine.ValidationError
	if !errors.As(err, &ve) || ve.Insn != 1 || !strings.Contains(err.Error(), `program "prog"`) {
		t.Errorf("err = %v; want a ValidationError at insn 1 naming the program", err)
	}
}

// TestNewCollection_SourceLine: a refused instruction from an ELF is
// named with its C source line.
func TestNewCollection_SourceLine(t *testing.T) {
	spec := corpusSpec(t, "l4_classify")
	insns := spec.Programs["l4_classify"].Instructions
	i := 0
	for insns[i].Source() == nil {
		i++
	}
	insns[i] = asm.Mov.Imm(asm.R10, 0).WithMetadata(insns[i].Metadata)
	_, err := engine.NewCollection(spec, engine.Options{NumCPU: 1})
	if err == nil || !strings.Contains(err.Error(), "(source: ") || !strings.Contains(err.Error(), "frame pointer is read only") {
		t.Errorf("err = %v; want the reason and the source line", err)
	}
}

// TestLink_SeparateFunctions links a program whose callee and callback
// live in other ProgramSpecs, as a hand-built spec (not flattened by the
// ELF reader) has them.
func TestLink_SeparateFunctions(t *testing.T) {
	spec := handSpec(asm.Instructions{
		asm.Mov.Imm(asm.R1, 5),
		asm.Call.Label("double"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.Mov.Imm(asm.R1, 3), // bpf_loop(3, add_one, &stack, 0)
		{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1, Metadata: asm.Metadata{}},
		{OpCode: asm.StoreImmOp(asm.DWord), Dst: asm.RFP, Offset: -8, Constant: 0},
		asm.Mov.Reg(asm.R3, asm.RFP), asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord),
		asm.Add.Reg(asm.R0, asm.R6), // 10 + 3
		asm.Return(),
	})
	insns := spec.Programs["prog"].Instructions
	insns[4] = insns[4].WithReference("add_one")
	spec.Programs["double"] = &ebpf.ProgramSpec{Name: "double", Type: ebpf.SchedCLS, SectionName: ".text", Instructions: asm.Instructions{
		asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("double"), asm.Add.Reg(asm.R0, asm.R0), asm.Return(),
	}}
	spec.Programs["add_one"] = &ebpf.ProgramSpec{Name: "add_one", Type: ebpf.SchedCLS, SectionName: ".text", Instructions: asm.Instructions{
		asm.LoadMem(asm.R3, asm.R2, 0, asm.DWord).WithSymbol("add_one"), asm.Add.Imm(asm.R3, 1), asm.StoreMem(asm.R2, 0, asm.R3, asm.DWord),
		asm.Mov.Imm(asm.R0, 0), asm.Return(),
	}}
	c := newCollection(t, spec, engine.Options{NumCPU: 1})
	rv, _, _, err := c.Programs["prog"].TestRun(etherFrame(0x88b5, 60), nil)
	if err != nil || rv != 13 {
		t.Errorf("retval %d, %v; want 13", rv, err)
	}
	if spec.Programs["prog"].Instructions[1].Constant != -1 {
		t.Error("linking modified the spec")
	}
}

func TestCollection_Close(t *testing.T) {
	c, err := engine.NewCollection(corpusSpec(t, "proto_counters"), engine.Options{NumCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Programs["proto_counters"]
	frame := pktgen.New(1).Next()
	if _, _, _, err := p.TestRun(frame, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := p.TestRun(frame, nil); !errors.Is(err, syscall.EBADF) {
		t.Errorf("run after Close: %v, want EBADF", err)
	}
	if err := c.Close(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("second Close: %v", err)
	}
	// Maps stay readable.
	var keys int
	next := make([]byte, 4)
	var key []byte
	for c.Maps["class_stats"].NextKey(key, next) == nil {
		key = slices.Clone(next)
		keys++
	}
	if keys != 9 {
		t.Errorf("class_stats has %d keys after Close", keys)
	}
	if _, ok := c.Maps["class_stats"].(maps.SlotMap); !ok {
		t.Error("class_stats is no SlotMap")
	}
}

func TestProgram_TestRun_Inputs(t *testing.T) {
	devices := func(ifindex uint32) (skb.Device, bool) { return skb.Device{Ifindex: ifindex}, ifindex == 5 }
	p := newCollection(t, corpusSpec(t, "ctx_fields"), engine.Options{NumCPU: 1, Devices: devices}).Programs["ctx_fields"]
	ctxWith := func(off int, v uint32, n int) []byte {
		c := make([]byte, n)
		binary.LittleEndian.PutUint32(c[off:], v)
		return c
	}
	for _, c := range []struct {
		name      string
		data, ctx []byte
		errno     syscall.Errno
	}{
		{"13 bytes", etherFrame(0x88b5, 13), nil, syscall.EINVAL},
		{"ipv4 33 bytes", etherFrame(0x0800, 33), nil, syscall.EINVAL},
		{"3713 bytes", etherFrame(0x88b5, 3713), nil, syscall.EINVAL},
		{"len in ctx", etherFrame(0x88b5, 60), ctxWith(skb.CtxLen, 1, skb.CtxSize), syscall.EINVAL},
		{"ctx tail", etherFrame(0x88b5, 60), ctxWith(200, 1, 256), syscall.E2BIG},
		{"unknown ifindex", etherFrame(0x88b5, 60), ctxWith(skb.CtxIfindex, 6, skb.CtxSize), syscall.ENODEV},
	} {
		if _, _, _, err := p.TestRun(c.data, c.ctx); !errors.Is(err, c.errno) {
			t.Errorf("%s: %v, want %v", c.name, err, c.errno)
		}
	}
	rv, out, ctxOut, err := p.TestRun(etherFrame(0x88b5, 60), nil)
	if err != nil || rv != 0 || len(out) != 60 || ctxOut != nil {
		t.Errorf("no ctx: %d, %d bytes, ctx_out %v, %v", rv, len(out), ctxOut, err)
	}
	_, _, ctxOut, err = p.TestRun(etherFrame(0x88b5, 60), ctxWith(skb.CtxIfindex, 5, skb.CtxSize))
	if err != nil || len(ctxOut) != skb.CtxSize || binary.LittleEndian.Uint32(ctxOut[skb.CtxIfindex:]) != 5 ||
		binary.LittleEndian.Uint32(ctxOut[skb.CtxWireLen:]) != 60 {
		t.Errorf("ifindex 5: ctx_out % x, %v", ctxOut, err)
	}
}

// TestNewCollection_ProgArrayContents: __array(values, ...) initialisers
// become the collection's programs in the prog array.
func TestNewCollection_ProgArrayContents(t *testing.T) {
	spec := corpusSpec(t, "tail_dispatch")
	c := newCollection(t, spec, engine.Options{NumCPU: 1})
	pa := c.Maps["dispatch"].(*maps.ProgramArray)
	filled := 0
	for _, kv := range spec.Maps["dispatch"].Contents {
		if got := pa.Get(kv.Key.(uint32)); got != c.Programs[kv.Value.(string)] || got == nil {
			t.Errorf("slot %v holds %v, want %s", kv.Key, got, kv.Value)
		}
		filled++
	}
	if filled != 3 || pa.Get(2) != nil {
		t.Errorf("%d slots filled, slot 2 = %v", filled, pa.Get(2))
	}
}
