package vm

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// pktPtrs is where the tests' contexts hold data and data_end.
var testPktPtrs = PacketPointers{Data: 0, End: 4}

// parse is a packet bounds check as tc programs write it, then a load
// of 2 bytes at off, at the op labelled "at".
func parseProgram(check asm.Instruction, n int32, off int16, between ...asm.Instruction) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, n),
		check,
	}
	insns = append(insns, between...)
	return append(insns,
		asm.LoadMem(asm.R0, asm.R2, off, asm.Half).WithSymbol("at"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 7).WithSymbol("out"),
		asm.Return(),
	)
}

// endMinus is parseProgram's check against data_end - m.
func endMinus(m int32, n int32, off int16) asm.Instructions {
	insns := parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), n, off)
	return append(insns[:2], append(asm.Instructions{asm.Add.Imm(asm.R3, -m)}, insns[2:]...)...)
}

// TestPktProofs checks which accesses the analysis proves inside the
// packet: the edge of each compare form that proves room, the room's
// exact end, and what forgets it (calls, joins with an unchecked path).
func TestPktProofs(t *testing.T) {
	checkPktProofs(t, []pktCase{
		{"data+14 > end goes out", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 12), true},
		{"the last two bytes of the room", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 12), true},
		{"one byte past the room", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 13), false},
		{"before data", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, -1), false},
		{"data+14 >= end goes out: 15 bytes", parseProgram(asm.JGE.Reg(asm.R4, asm.R3, "out"), 14, 13), true},
		{"end < data+14 goes out", parseProgram(asm.JLT.Reg(asm.R3, asm.R4, "out"), 14, 12), true},
		{"end <= data+14 goes out: 15 bytes", parseProgram(asm.JLE.Reg(asm.R3, asm.R4, "out"), 14, 13), true},
		{"data+14 <= end falls out (the wrong edge)", parseProgram(asm.JLE.Reg(asm.R4, asm.R3, "out"), 14, 12), false},
		{"a signed compare", parseProgram(asm.JSGT.Reg(asm.R4, asm.R3, "out"), 14, 12), false},
		{"a 32-bit compare", parseProgram(asm.JGT.Reg32(asm.R4, asm.R3, "out"), 14, 12), false},
		{"a helper call after the check", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 12, asm.BuiltinFunc(5).Call()), false},
		{"data moved after the check", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 0, asm.Add.Imm(asm.R2, 13)), false},
		{"data moved within the room", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 0, asm.Add.Imm(asm.R2, 12)), true},
		{"a path that skips the check", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 12, asm.JEq.Imm(asm.R5, 0, "at")), true},
		{"against data_end minus a constant, which could wrap", endMinus(100, 14, 12), false},
		{"data loaded again after the check", parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 12,
			asm.LoadMem(asm.R5, asm.R1, 0, asm.Word), asm.Mov.Imm(asm.R0, 0)), false},
		{"a jump over the check", append(asm.Instructions{asm.JEq.Imm(asm.R5, 0, "at")}, parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 14, 12)...), false},
	})
}

// pktCase is a program whose op labelled "at" loads 2 bytes through a
// register, and whether the analysis should prove that load.
type pktCase struct {
	name  string
	insns asm.Instructions
	want  bool
}

func checkPktProofs(t *testing.T, cases []pktCase) {
	t.Helper()
	helpers := make([]HelperFunc, 8)
	helpers[5] = func(*Machine, uint64, uint64, uint64, uint64, uint64) (uint64, error) { return 0, nil }
	for _, c := range cases {
		p, err := Load(c.insns, Options{Helpers: helpers, PacketPointers: testPktPtrs})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		facts, _ := pktProofs(p, stackProofs(p), testPktPtrs)
		pc := symPC(t, p, c.insns, "at")
		o := &p.code[pc]
		var f *pktFacts
		if facts != nil {
			f = &facts[pc]
		}
		if got := pktProven(f, o.src, o.off, 2); got != c.want {
			t.Errorf("%s: proven %v, want %v (facts %+v)", c.name, got, c.want, f)
		}
	}
}

// TestJIT_PacketPointersForged runs a program whose bounds check passes
// on the pointers its context holds, with those pointers forged: data_end
// past the packet, data before it. The checks compiled code makes on the
// pointers send the frame to the interpreter, which faults where the
// interpreter alone faults; with true pointers both engines read the
// packet.
func TestJIT_PacketPointersForged(t *testing.T) {
	pkt := make([]byte, 48)
	for _, c := range []struct {
		name      string
		off       int16
		endMinus  int32
		data, end uint32
		want      uint64
		fault     bool
	}{
		{"true pointers, a packet too short", 40, 0, uint32(PacketAddr(0)), uint32(PacketAddr(48)), 7, false},
		{"data_end forged past the packet", 50, 0, uint32(PacketAddr(0)), uint32(PacketAddr(48)) + 64, 0, true},
		{"data forged before the packet", 40, 0, uint32(PacketAddr(0)) - 64, uint32(PacketAddr(48)), 0, true},
		// data_end - 100 wraps: the compare falls through for any data.
		{"data_end forged as 1, compared less 100", 50, 100, uint32(PacketAddr(0)), 1, 0, true},
	} {
		insns := parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 64, c.off)
		if c.endMinus != 0 {
			insns = endMinus(c.endMinus, 64, c.off)
		}
		ctx := make([]byte, 8)
		binary.LittleEndian.PutUint32(ctx[0:], c.data)
		binary.LittleEndian.PutUint32(ctx[4:], c.end)
		checkBothEngines(t, c.name, insns, pkt, ctx, c.want, c.fault)
	}
	insns := parseProgram(asm.JGT.Reg(asm.R4, asm.R3, "out"), 64, 40)
	// With a long enough packet, the proven load reads it.
	long := make([]byte, 80)
	long[40], long[41] = 0x34, 0x12
	p, err := Load(insns, Options{Engine: EngineJIT, PacketPointers: testPktPtrs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := make([]byte, 8)
	binary.LittleEndian.PutUint32(ctx[0:], uint32(PacketAddr(0)))
	binary.LittleEndian.PutUint32(ctx[4:], uint32(PacketAddr(80)))
	m := NewMachine()
	if err := m.SetPacket(long, 0, 0, len(long)); err != nil {
		t.Fatal(err)
	}
	m.SetContext(ctx)
	if r0, err := m.Run(p); err != nil || r0 != 0x1234 {
		t.Errorf("true pointers: r0 %#x, %v; want 0x1234", r0, err)
	}
}

// checkBothEngines runs insns on both engines with pkt as the packet and
// ctx as the context: each must return want, or fault if fault, and both
// the same error.
func checkBothEngines(t *testing.T, name string, insns asm.Instructions, pkt, ctx []byte, want uint64, fault bool) {
	t.Helper()
	var results [2]string
	for i, e := range []Engine{EngineInterp, EngineJIT} {
		p, err := Load(insns, Options{Engine: e, PacketPointers: testPktPtrs})
		if err != nil {
			t.Fatal(err)
		}
		if e == EngineJIT {
			if ok, why := p.Compiled(); !ok {
				t.Skipf("not compiled: %s", why)
			}
		}
		m := NewMachine()
		if err := m.SetPacket(pkt, 0, 0, len(pkt)); err != nil {
			t.Fatal(err)
		}
		m.SetContext(ctx)
		r0, err := m.Run(p)
		var f *Fault
		if fault != errors.As(err, &f) || (!fault && (err != nil || r0 != want)) {
			t.Errorf("%s, %v: r0 %#x, %v; want %#x, fault %v", name, e, r0, err, want, fault)
		}
		results[i] = errString(err)
	}
	if results[0] != results[1] {
		t.Errorf("%s: interpreter %q, jit %q", name, results[0], results[1])
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestJIT_PacketPointerReloaded: data is loaded again after a check, from
// a context the program moved it in; the room proven for the first value
// must not serve the second, or compiled code would read past the packet.
func TestJIT_PacketPointerReloaded(t *testing.T) {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 64),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.Mov.Reg(asm.R6, asm.R2),
		asm.Add.Imm(asm.R6, 32),
		asm.StoreMem(asm.R1, 0, asm.R6, asm.Word), // data += 32
		asm.LoadMem(asm.R5, asm.R1, 0, asm.Word),
		asm.Mov.Imm(asm.R0, 0),
		asm.LoadMem(asm.R0, asm.R5, 40, asm.Half), // packet offset 72 of 70
		asm.Return(),
		asm.Mov.Imm(asm.R0, 7).WithSymbol("out"),
		asm.Return(),
	}
	var results [2]string
	for i, e := range []Engine{EngineInterp, EngineJIT} {
		p, err := Load(insns, Options{Engine: e, PacketPointers: testPktPtrs})
		if err != nil {
			t.Fatal(err)
		}
		ctx := make([]byte, 8)
		binary.LittleEndian.PutUint32(ctx[0:], uint32(PacketAddr(0)))
		binary.LittleEndian.PutUint32(ctx[4:], uint32(PacketAddr(70)))
		m := NewMachine()
		if err := m.SetPacket(make([]byte, 70), 0, 0, 70); err != nil {
			t.Fatal(err)
		}
		m.SetContext(ctx)
		_, err = m.Run(p)
		var f *Fault
		if !errors.As(err, &f) {
			t.Errorf("%v: %v, want an out-of-bounds fault", e, err)
		}
		results[i] = errString(err)
	}
	if results[0] != results[1] {
		t.Errorf("interpreter %q, jit %q", results[0], results[1])
	}
}
