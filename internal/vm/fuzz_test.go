package vm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// fuzzEnv is the world random bytecode runs in: a packet with guard bytes
// around the accessible window, a policed context, one map, a few helpers.
type fuzzEnv struct {
	as       *vm.AddressSpace
	mapBase  uint64
	mapVals  []byte
	handle   uint64
	hash     *testHash // map 1: a hash map over the values' first 4 slots
	hashH    uint64
	opts     vm.Options
	self     *vm.Program
	pkt, ctx []byte
	// The packet helpers' data end, state byte and record word
	// (pkthelp_fuzz_test.go).
	end    int
	state  uint8
	record uint64
}

const (
	fuzzMeta, fuzzData = 8, 16 // packet buffer: 8 guard bytes, 8 meta bytes, data, 8 guard bytes
	fuzzGuard          = 0xa5
	fuzzLimit          = 1 << 14
)

func newFuzzEnv() *fuzzEnv {
	e := &fuzzEnv{as: vm.NewAddressSpace(), mapVals: make([]byte, 4*16)}
	e.mapBase, _ = e.as.Map(vm.Region{Data: e.mapVals, Stride: 16, SlotSize: 12})
	// An array of 3 values (the fourth slot past its end), which compiled
	// code looks up itself (Options.ArrayLookup); other handles (r1 not
	// the map) reach the helper.
	e.handle = e.as.NewArrayHandle("map", 3, 16, []uint64{e.mapBase})
	// A hash map of 4-byte keys 1, 2, 3 (3 deleted) and 0x100 in one
	// bucket, whose values are the same slots, which compiled code looks
	// up itself too (NewHashHandle).
	e.hash = newTestHash(4, 2, 0x2, [][]byte{{1, 0, 0, 0}, {2, 0, 0, 0}, {3, 0, 0, 0}, {0, 1, 0, 0}}, []bool{false, false, true, false}, true)
	e.hash.l.Bases, e.hash.l.Stride = []uint64{e.mapBase}, 16
	var err error
	if e.hashH, err = e.as.NewHashHandle("hash", e.hash.l); err != nil {
		panic(err)
	}
	hashLookup := e.hash.helper(e.hashH, new(int))
	pol := vm.NewCtxPolicy(32)
	pol.AllowField(0, 4, false, false)
	pol.AllowField(4, 4, false, false)
	pol.AllowField(8, 8, true, true)
	pol.AllowField(8, 8, false, true)
	pol.AllowField(16, 4, false, true)
	tbl := make([]vm.HelperFunc, int(asm.FnLoop)+1)
	tbl[asm.FnMapLookupElem] = func(m *vm.Machine, h, key, _, _, _ uint64) (uint64, error) {
		k, err := m.Mem(key, 4, false)
		if err != nil {
			return 0, err
		}
		if h == e.hashH {
			return hashLookup(m, h, key, 0, 0, 0)
		}
		if i := binary.LittleEndian.Uint32(k); h == e.handle {
			if i >= 3 {
				return 0, nil
			}
			return e.mapBase + 16*uint64(i), nil
		}
		return e.mapBase + 16*uint64(k[0]&3), nil
	}
	tbl[asm.FnMapUpdateElem] = func(m *vm.Machine, dst, n, _, _, _ uint64) (uint64, error) {
		b, err := m.Mem(dst, n&0xff, true)
		clear(b)
		return 0, err
	}
	tbl[5] = func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
		if r1 == 0 {
			m.Exit()
		}
		return r1, nil
	}
	tbl[asm.FnTailCall] = func(m *vm.Machine, _, _, _, _, _ uint64) (uint64, error) {
		if !m.TailCall(e.self) {
			return ^uint64(0), nil
		}
		return 0, nil
	}
	tbl[asm.FnLoop] = func(m *vm.Machine, n, fn, ctx, _, _ uint64) (uint64, error) {
		for i := range n & 3 {
			if _, err := m.Call(fn, i, ctx, 0, 0, 0); err != nil {
				return 0, err
			}
		}
		return n & 3, nil
	}
	e.addPacketHelpers(tbl)
	e.opts = vm.Options{
		PacketHelpers: fuzzPacketHelpers,
		AddressSpace:  e.as,
		Ctx:           pol,
		Helpers:       tbl,
		AllowCallx:    true,
		ArrayLookup:   int32(asm.FnMapLookupElem),
		// The context holds data at 0 and data_end at 4 (fuzzEnv.run).
		PacketPointers: vm.PacketPointers{Data: 0, End: 4},
		Maps: func(ref vm.MapRef) (uint64, error) {
			if !ref.Value() && ref.ID == 1 {
				return e.hashH, nil
			}
			if !ref.Value() {
				return e.handle, nil
			}
			if ref.Offset >= uint32(len(e.mapVals)) {
				return 0, errors.New("offset out of range")
			}
			return e.mapBase + uint64(ref.Offset), nil
		},
	}
	return e
}

// check runs code and asserts the safety invariants: no panic, only typed
// errors, nothing written outside the regions the program holds.
func (e *fuzzEnv) check(t *testing.T, code, data []byte) { e.checkOn(t, code, data, vm.EngineInterp) }

// fuzzOutcome is everything a run leaves behind that two engines must
// agree on.
type fuzzOutcome struct {
	r0, executed, faults uint64
	dirty                uint64 // the image's dirty words (ContextImage)
	err, kind            string
	pkt, ctx, mapVals    []byte
	hashRef              []uint32 // the hash map's reference flags
	record               uint64   // the packet helpers' record word
}

// checkOn is check on engine eng (the interpreter: the package's test
// engine, see engineOpts); it returns the outcome, nil if the program
// does not load.
func (e *fuzzEnv) checkOn(t *testing.T, code, data []byte, eng vm.Engine) *fuzzOutcome {
	opts := engineOpts(e.opts)
	if eng != vm.EngineInterp {
		opts.Engine = eng
	}
	p, err := vm.LoadRaw(code, opts)
	if err != nil {
		var ve *vm.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("LoadRaw error %T: %v", err, err)
		}
		return nil
	}
	e.self = p
	data = data[:min(len(data), 256)]
	e.pkt = bytes.Repeat([]byte{fuzzGuard}, fuzzData+len(data)+8)
	copy(e.pkt[fuzzData:], data)
	end := fuzzData + len(data)
	e.end = end
	e.ctx = make([]byte, 32+8)
	binary.LittleEndian.PutUint32(e.ctx[0:], uint32(vm.PacketAddr(fuzzData)))
	binary.LittleEndian.PutUint32(e.ctx[4:], uint32(vm.PacketAddr(end)))
	if len(data) > 2 && data[0]&0x40 != 0 {
		// Forged packet pointers, which compiled code must not trust
		// (jitpkt.go): data_end small or past the packet, data before it.
		forged := []uint32{1, uint32(data[2]), uint32(vm.PacketAddr(end)) + uint32(data[2]), uint32(vm.PacketAddr(0))}
		binary.LittleEndian.PutUint32(e.ctx[4*(data[2]&1):], forged[data[2]>>1%4])
	}
	copy(e.ctx[32:], bytes.Repeat([]byte{fuzzGuard}, 8))
	ctxBefore := append([]byte(nil), e.ctx...)

	m := vm.NewMachine()
	var dirty uint64
	m.SetLimit(fuzzLimit)
	if len(data) > 1 {
		e.state = data[1] % 4
	}
	m.SetPacketState(&e.state, &e.record)
	if err := m.SetPacket(e.pkt, fuzzMeta, fuzzData, end); err != nil {
		t.Fatal(err)
	}
	switch {
	case len(data) > 0 && data[0]&3 == 3:
		// An accessor with an image: plain loads read it while fresh.
		fresh := uint64(0)
		if data[0]&4 != 0 {
			fresh = vm.CtxAllWords
		}
		m.SetContextAccessor(&imgCtxImage{imgCtx: imgCtx(e.ctx[:32]), fresh: &fresh, dirty: &dirty, plain: fuzzPlain()}, 32)
	case len(data) > 0 && data[0]&1 == 1:
		m.SetContextAccessor(imgCtx(e.ctx[:32]), 32)
	default:
		m.SetContext(e.ctx[:32])
	}
	r0, err := m.Run(p)
	out := &fuzzOutcome{r0: r0, executed: m.Executed(), dirty: dirty}
	if err != nil {
		out.err = err.Error()
	}
	var f *vm.Fault
	var le *vm.LimitError
	var he *vm.HelperError
	switch {
	case err == nil:
	case errors.As(err, &f):
		if f.Kind == vm.FaultPanic {
			t.Fatalf("interpreter panicked: %v", err)
		}
		if p.Faults() == 0 {
			t.Fatalf("fault %v not counted", err)
		}
		out.kind = f.Kind.String()
	case errors.As(err, &le):
		out.kind = "limit"
	case errors.As(err, &he):
		out.kind = "helper"
	default:
		t.Fatalf("untyped error %T: %v", err, err)
	}
	if m.Executed() > fuzzLimit+uint64(p.Len())*vm.MaxFrames*8 {
		t.Fatalf("executed %d instructions with limit %d", m.Executed(), fuzzLimit)
	}
	for i, b := range e.pkt {
		if (i < fuzzMeta || i >= end) && b != fuzzGuard {
			t.Fatalf("packet byte %d outside [data_meta, data_end) changed to %#x", i, b)
		}
	}
	for i := range e.ctx {
		writable := i >= 8 && i < 16
		if !writable && e.ctx[i] != ctxBefore[i] {
			t.Fatalf("context byte %d outside the writable field changed", i)
		}
	}
	for slot := range 4 {
		for i := 12; i < 16; i++ {
			if e.mapVals[16*slot+i] != 0 {
				t.Fatalf("map value padding %d:%d written", slot, i)
			}
		}
	}
	out.faults = p.Faults()
	out.pkt, out.ctx, out.mapVals = slices.Clone(e.pkt), slices.Clone(e.ctx), slices.Clone(e.mapVals)
	out.hashRef = slices.Clone(e.hash.l.Ref)
	out.record = e.record
	return out
}

// imgCtxImage is imgCtx as a ContextImage: loads at offsets 0-15 read
// the image directly while fresh, stores at 8-11 write it.
type imgCtxImage struct {
	imgCtx
	fresh *uint64
	dirty *uint64
	plain *vm.CtxPolicy
}

var _ vm.ContextImage = (*imgCtxImage)(nil)

func (c *imgCtxImage) CtxImage() ([]byte, *uint64, *uint64, *vm.CtxPolicy) {
	return c.imgCtx, c.fresh, c.dirty, c.plain
}

// fuzzPlain: loads at 0-15 and stores at 8-11 are plain image accesses;
// 16-19 reads like a 16-bit field (a load of 2 or 4 bytes reads the field
// from 16, bytes 16 and 17 are plain), a 4-byte store at 12 keeps 16
// bits, an 8-byte store at 8 keeps 32 (CtxPolicy.AllowAlias), a 2-byte
// store at 14 is dropped from 0x1000 up (CtxPolicy.AllowStoreBelow).
func fuzzPlain() *vm.CtxPolicy {
	return vm.CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) {
		switch {
		case write && off >= 8 && off+size <= 12:
			return off, size, 0, true
		case write && off == 12 && size == 4:
			return 12, 2, 0, true
		case write && off == 8 && size == 8:
			return 8, 4, 0, true
		case write && off == 14 && size == 2:
			return 14, 2, 0x1000, true
		case write:
		case off < 16:
			return off, size, 0, true
		case off >= 16 && off < 20 && size >= 2:
			return 16, 2, 0, true
		case off == 16 || off == 17:
			return off, size, 0, true
		}
		return 0, 0, 0, false
	})
}

// imgCtx is a ContextAccessor over a plain image: the VM must only ever
// hand it in-bounds, policy-approved accesses.
type imgCtx []byte

func (c imgCtx) LoadCtx(off, size int) (uint64, bool) {
	var b [8]byte
	copy(b[:], c[off:off+size])
	return binary.LittleEndian.Uint64(b[:]), true
}

func (c imgCtx) StoreCtx(off, size int, v uint64) bool {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	copy(c[off:off+size], b[:size])
	return true
}

// FuzzLoadRaw feeds random bytecode (and packet contents) through
// validation and, when accepted, a bounded run.
func FuzzLoadRaw(f *testing.F) {
	for _, insns := range fuzzSeeds() {
		var buf bytes.Buffer
		if err := marshalFixed(insns, &buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	}
	f.Fuzz(func(t *testing.T, code, data []byte) {
		newFuzzEnv().check(t, code, data)
	})
}

// FuzzALU compares random ALU programs with the naive reference model.
func FuzzALU(f *testing.F) {
	f.Add([]byte{0x07, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde}, uint64(1), uint64(2))
	f.Add([]byte{0xff, 0x00, 0x80, 0x00, 0x00, 0x00, 0x80, 0x13}, uint64(1<<63), ^uint64(0))
	ops := []asm.ALUOp{asm.Add, asm.Sub, asm.Mul, asm.Div, asm.SDiv, asm.Or, asm.And, asm.LSh, asm.RSh,
		asm.Mod, asm.SMod, asm.Xor, asm.Mov, asm.ArSh, asm.Neg, asm.MovSX8, asm.MovSX16, asm.MovSX32, asm.Swap}
	f.Fuzz(func(t *testing.T, prog []byte, a, b uint64) {
		regs := [11]uint64{a, b, a ^ b, a + b, a - b, ^a, a >> 32, b << 32, a * b}
		insns := asm.Instructions{}
		for r := asm.R0; r <= asm.R8; r++ {
			insns = append(insns, imm64(r, regs[r]))
		}
		for ; len(prog) >= 7; prog = prog[7:] {
			op := ops[int(prog[0])%len(ops)]
			dst, src := asm.Register(prog[1]%9), asm.Register(prog[2]%9)
			imm := int32(binary.LittleEndian.Uint32(prog[3:]))
			var ins asm.Instruction
			switch mode := prog[1] >> 4 & 3; {
			case op == asm.Swap:
				size := []asm.Size{asm.Half, asm.Word, asm.DWord}[prog[2]%3]
				if mode == 0 {
					ins = asm.BSwap(dst, size)
				} else {
					ins = asm.HostTo([]asm.Endianness{asm.LE, asm.BE}[mode&1], dst, size)
				}
			case op == asm.Neg && mode&1 == 0:
				ins = asm.Neg.Imm(dst, 0)
			case op == asm.Neg:
				ins = asm.Neg.Imm32(dst, 0)
			case op == asm.MovSX8 || op == asm.MovSX16 || op == asm.MovSX32:
				if op != asm.MovSX32 && mode&1 == 1 {
					ins = op.Reg32(dst, src)
				} else {
					ins = op.Reg(dst, src)
				}
			case mode == 0:
				ins = op.Imm(dst, imm)
			case mode == 1:
				ins = op.Imm32(dst, imm)
			case mode == 2:
				ins = op.Reg(dst, src)
			default:
				ins = op.Reg32(dst, src)
			}
			refALU(ins, &regs)
			insns = append(insns, ins)
		}
		checkRegs(t, vm.NewMachine(), insns, &regs)
	})
}

// marshalFixed encodes insns the way Load sees them: references resolved,
// atomics fixed up (asm's Marshal drops the operation of DSL-built
// atomics; see decode.go), and helper calls encoded on every host (asm
// refuses Linux helpers elsewhere, so they go through it with dst r1,
// cleared after).
func marshalFixed(insns asm.Instructions, buf *bytes.Buffer) error {
	insns = slices.Clone(insns)
	var calls []int
	slot := buf.Len() / asm.InstructionSize
	for i, ins := range insns {
		if a := ins.OpCode.AtomicOp(); a != asm.InvalidAtomic {
			insns[i].Constant = int64(a >> 8)
		}
		if ins.IsBuiltinCall() {
			insns[i].Dst = asm.R1
			calls = append(calls, slot)
		}
		slot += int(ins.Width())
	}
	if err := insns.Marshal(buf, binary.LittleEndian); err != nil {
		return err
	}
	for _, c := range calls {
		buf.Bytes()[c*asm.InstructionSize+1] = 0
	}
	return nil
}

// fuzzSeeds are valid programs touching every region and control-flow form.
func fuzzSeeds() []asm.Instructions {
	insns := func(is ...asm.Instruction) asm.Instructions { return is }
	return []asm.Instructions{
		insns(
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
			asm.Mov.Imm(asm.R0, 0),
			asm.JGE.Reg(asm.R2, asm.R3, "out").WithSymbol("loop"),
			asm.LoadMem(asm.R4, asm.R2, 0, asm.Byte), asm.Add.Reg(asm.R0, asm.R4),
			asm.StoreMem(asm.R2, -8, asm.R4, asm.Byte),
			asm.Add.Imm(asm.R2, 1), asm.Ja.Label("loop"),
			asm.Return().WithSymbol("out"),
		),
		insns(
			asm.StoreImm(asm.RFP, -4, 1, asm.Word),
			asm.LoadMapPtr(asm.R1, 0), asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.Mov.Imm(asm.R1, 1), asm.FetchAdd.Mem(asm.R0, asm.R1, asm.DWord, 0),
			asm.CmpXchg.Mem(asm.R0, asm.R1, asm.Word, 8),
			asm.LoadMapValue(asm.R3, 0, 20), asm.StoreImm(asm.R3, 0, 7, asm.Word),
			asm.Return(),
		),
		insns(
			// The hash map: a key from the packet's first byte, then key 2.
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.LoadAbs(0, asm.Byte), asm.StoreMem(asm.RFP, -4, asm.R0, asm.Word),
			asm.LoadMapPtr(asm.R1, 1), asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "miss"),
			asm.Mov.Imm(asm.R1, 1), asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
			asm.StoreImm(asm.RFP, -4, 2, asm.Word).WithSymbol("miss"),
			asm.LoadMapPtr(asm.R1, 1), asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.Return(),
		),
		insns(
			asm.Mov.Reg(asm.R6, asm.R1), asm.LoadAbs(0, asm.Half), asm.LoadInd(asm.R0, asm.R0, 1, asm.Byte),
			asm.StoreImm(asm.R6, 8, 3, asm.Word), asm.LoadMem(asm.R0, asm.R6, 16, asm.Half),
			asm.Return(),
		),
		insns(
			asm.Mov.Imm(asm.R1, 3), asm.Call.Label("f"), asm.Mov.Imm(asm.R1, 0), asm.BuiltinFunc(5).Call(), asm.Return(),
			asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("f"), asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
			asm.FnTailCall.Call(), asm.Return(),
		),
		insns(
			asm.Mov.Imm(asm.R1, 3),
			asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference("cb"),
			asm.Mov.Reg(asm.R3, asm.RFP), asm.FnLoop.Call(), asm.Return(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("cb"), asm.StoreMem(asm.R2, -8, asm.R1, asm.DWord), asm.Return(),
		),
		insns(
			asm.Mov.Imm(asm.R0, 0), asm.Mov.Imm(asm.R1, 10),
			asm.SDiv.Imm(asm.R0, 3).WithSymbol("l"), asm.MovSX8.Reg32(asm.R2, asm.R1), asm.BSwap(asm.R2, asm.Word),
			asm.Sub.Imm(asm.R1, 1), asm.JSGT.Imm32(asm.R1, 0, "l"), asm.LongJump("end"), asm.Neg.Imm(asm.R0, 0),
			asm.Return().WithSymbol("end"),
		),
	}
}

// TestLoadRaw_FuzzSeeds runs the seed corpus as a plain test, and with
// VM_WRITE_FUZZ_SEEDS=1 writes it to testdata/fuzz (committed).
func TestLoadRaw_FuzzSeeds(t *testing.T) {
	for i, insns := range fuzzSeeds() {
		var buf bytes.Buffer
		if err := marshalFixed(insns, &buf); err != nil {
			t.Fatal(err)
		}
		if _, err := vm.LoadRaw(buf.Bytes(), newFuzzEnv().opts); err != nil {
			t.Errorf("seed %d does not load: %v", i, err)
		}
		newFuzzEnv().check(t, buf.Bytes(), []byte("0123456789abcdef0123"))
		if os.Getenv("VM_WRITE_FUZZ_SEEDS") == "1" {
			dir := filepath.Join("testdata", "fuzz", "FuzzLoadRaw")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			body := "go test fuzz v1\n[]byte(" + quote(buf.Bytes()) + ")\n[]byte(\"0123456789abcdef0123\")\n"
			if err := os.WriteFile(filepath.Join(dir, "seed"+string(rune('0'+i))), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func quote(b []byte) string {
	var s bytes.Buffer
	s.WriteByte('"')
	for _, c := range b {
		s.WriteString(`\x`)
		s.WriteByte("0123456789abcdef"[c>>4])
		s.WriteByte("0123456789abcdef"[c&15])
	}
	s.WriteByte('"')
	return s.String()
}
