package vm_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
	"github.com/tcxgo/tcx/internal/vm/amd64"
)

// The differential fuzz targets run the same program on the same inputs
// in the interpreter and compiled, and require the same r0, error (fault
// kind, instruction, address and size; limit; helper error), instruction
// count, fault count and bytes of packet, context and map values. Folding
// r1-r9 into r0 before the exit (FuzzJITProgram) makes every register
// part of the comparison.
//
// Compiled code that misbehaves can crash the process (a wild store or
// jump is a SIGSEGV, not a panic). `go test -fuzz` already isolates that:
// the inputs run in worker processes, and the coordinator reports a
// crashed worker as a failure with the input saved under testdata/fuzz.
// Without -fuzz, the seeds run in-process like any test, in a child
// process when they are the JIT half of TestMain.

func diffEngines(t *testing.T, code, data []byte) *fuzzOutcome {
	if !amd64.Supported {
		t.Skip("no compiler on this platform")
	}
	want := newFuzzEnv().checkOn(t, code, data, vm.EngineInterp)
	got := newFuzzEnv().checkOn(t, code, data, vm.EngineJIT)
	if (want == nil) != (got == nil) {
		t.Fatalf("loads: interpreter %v, jit %v", want != nil, got != nil)
	}
	if want == nil {
		return nil
	}
	if d := want.diff(got); d != "" {
		t.Fatalf("jit differs from the interpreter: %s\ncode %x\ndata %x\n%v", d, code, data, disasm(code))
	}
	return want
}

func (a *fuzzOutcome) diff(b *fuzzOutcome) string {
	switch {
	case a.err != b.err:
		return fmt.Sprintf("error: interpreter %q, jit %q", a.err, b.err)
	case a.r0 != b.r0:
		return fmt.Sprintf("r0: interpreter %#x, jit %#x", a.r0, b.r0)
	case a.executed != b.executed:
		return fmt.Sprintf("executed: interpreter %d, jit %d", a.executed, b.executed)
	case a.faults != b.faults:
		return fmt.Sprintf("faults: interpreter %d, jit %d", a.faults, b.faults)
	case !bytes.Equal(a.pkt, b.pkt):
		return fmt.Sprintf("packet: interpreter % x, jit % x", a.pkt, b.pkt)
	case !bytes.Equal(a.ctx, b.ctx):
		return fmt.Sprintf("context: interpreter % x, jit % x", a.ctx, b.ctx)
	case a.dirty != b.dirty:
		return fmt.Sprintf("context image dirty words: interpreter %#x, jit %#x", a.dirty, b.dirty)
	case !bytes.Equal(a.mapVals, b.mapVals):
		return fmt.Sprintf("map values: interpreter % x, jit % x", a.mapVals, b.mapVals)
	case !slices.Equal(a.hashRef, b.hashRef):
		return fmt.Sprintf("hash reference flags: interpreter %v, jit %v", a.hashRef, b.hashRef)
	case a.record != b.record:
		return fmt.Sprintf("packet helper record: interpreter %#x, jit %#x", a.record, b.record)
	}
	return ""
}

// disasm lists code for a failure message (as far as asm decodes it).
func disasm(code []byte) asm.Instructions {
	var insns asm.Instructions
	r := bytes.NewReader(code)
	for r.Len() > 0 {
		var ins asm.Instruction
		if err := ins.Unmarshal(r, binary.LittleEndian, "linux"); err != nil {
			break
		}
		insns = append(insns, ins)
	}
	return insns
}

// FuzzJITDifferential compares the engines on random bytecode (seeded
// with the valid programs of FuzzLoadRaw).
func FuzzJITDifferential(f *testing.F) {
	for _, insns := range fuzzSeeds() {
		var buf bytes.Buffer
		if err := marshalFixed(insns, &buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	}
	f.Fuzz(func(t *testing.T, code, data []byte) { diffEngines(t, code, data) })
}

// FuzzJITProgram compares the engines on programs built from the fuzz
// input, 8 bytes per instruction, that load and validate far more often
// than random bytecode: ALU, jumps both ways, loads and stores into every
// region (and beside them), load-acquire and store-release, atomics,
// helpers, bpf-to-bpf calls, LD_ABS.
func FuzzJITProgram(f *testing.F) {
	f.Add([]byte("\x00\x12\x34\x56\x78\x9a\xbc\xde\x01\x60\x04\x00\x01\x02\x03\x04\x02\x81\xf8\xff\x11\x22\x33\x44"), []byte("0123456789abcdef"))
	f.Add([]byte("\x05\x80\x08\x00\x01\x00\x00\x00\x06\x01\x00\x00\x00\x00\x00\x00\x03\x13\x02\x00\x05\x00\x00\x00\x04\x02\x01\x00\x02\x00\x00\x00"), []byte("\x01abcdefghijklmnop"))
	f.Add([]byte("\x07\x00\x0c\x00\x00\x00\x00\x00\x08\x33\x00\x00\xff\xff\xff\x7f\x00\x9b\x00\x00\x00\x00\x00\x80\x00\x4c\x00\x00\xff\xff\xff\xff"), []byte("\x00\x01"))
	f.Fuzz(func(t *testing.T, prog, data []byte) {
		insns := genProgram(prog)
		var buf bytes.Buffer
		if err := marshalFixed(insns, &buf); err != nil {
			return // asm refused the encoding
		}
		diffEngines(t, buf.Bytes(), data)
	})
}

// TestJIT_GeneratedPrograms runs FuzzJITProgram's generator on a fixed
// stream of pseudo-random inputs, so every test run compares a few
// thousand programs even without -fuzz.
func TestJIT_GeneratedPrograms(t *testing.T) {
	if !amd64.Supported {
		t.Skip("no compiler on this platform")
	}
	n := 3000
	if testing.Short() {
		n = 300
	}
	x := uint64(0x9e3779b97f4a7c15)
	next := func() byte {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return byte(x)
	}
	outcomes := map[string]int{}
	for i := range n {
		prog := make([]byte, 8*(4+i%40))
		for j := range prog {
			prog[j] = next()
		}
		data := make([]byte, int(next())%80)
		for j := range data {
			data[j] = next()
		}
		var buf bytes.Buffer
		if err := marshalFixed(genProgram(prog), &buf); err != nil {
			outcomes["not encodable"]++
			continue
		}
		out := diffEngines(t, buf.Bytes(), data)
		switch {
		case out == nil:
			outcomes["not loaded"]++
		case out.err == "":
			outcomes["ok"]++
		default:
			outcomes[out.kind]++
		}
	}
	t.Logf("%d programs: %v", n, outcomes)
	// The generator must keep producing programs that run to their end:
	// a change that makes most of them fail validation or fault at once
	// would leave the comparison with nothing to compare.
	if outcomes["ok"] < n/5 {
		t.Errorf("only %d of %d generated programs ran to their exit: %v", outcomes["ok"], n, outcomes)
	}
}

// genProgram builds a program from b. r6 is data, r7 data_end (from the
// context), r8 a map value, r9 a stack pointer; r1-r5 and r0 start from
// the input. Registers picked as operands are mostly r0-r5, sometimes a
// pointer, so accesses land inside regions, beside them and nowhere.
func genProgram(b []byte) asm.Instructions {
	const nregs = 6
	u32 := func(p []byte) uint32 { return binary.LittleEndian.Uint32(p) }
	insns := asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R7, asm.R1, 4, asm.Word),
		asm.LoadMapValue(asm.R8, 0, 0),
		asm.Mov.Reg(asm.R9, asm.RFP),
		asm.Add.Imm(asm.R9, -64),
	}
	n := len(b) / 8
	sym := func(i int) string { return fmt.Sprintf("L%d", min(max(i, 0), n)) }
	aluOps := []asm.ALUOp{asm.Add, asm.Sub, asm.Mul, asm.Div, asm.SDiv, asm.Or, asm.And, asm.LSh, asm.RSh,
		asm.Mod, asm.SMod, asm.Xor, asm.Mov, asm.ArSh}
	jmpOps := []asm.JumpOp{asm.JEq, asm.JGT, asm.JGE, asm.JSet, asm.JNE, asm.JSGT, asm.JSGE, asm.JLT, asm.JLE, asm.JSLT, asm.JSLE}
	sizes := []asm.Size{asm.Byte, asm.Half, asm.Word, asm.DWord}
	bases := []asm.Register{asm.R6, asm.R8, asm.RFP, asm.R9, asm.R1, asm.R6, asm.RFP, asm.R8,
		asm.R6, asm.R8, asm.RFP, asm.R9, asm.R1, asm.R0, asm.R2, asm.R7}
	for i := 0; i < n; i++ {
		c := b[8*i : 8*i+8]
		dst, src := asm.Register(c[1]%nregs), asm.Register(c[1]>>4%nregs)
		if c[1]&0x88 == 0x88 {
			src = asm.Register(6 + c[2]%5) // r6-r9 or r10
		}
		imm := int32(u32(c[4:]))
		base := bases[c[2]%uint8(len(bases))]
		off := int16(int8(c[3]))
		switch base { // mostly inside the region, sometimes just beside it
		case asm.RFP:
			off = -8 - int16(c[3]%60)
		case asm.R9:
			off = int16(c[3]%72) - 4
		case asm.R8:
			off = int16(c[3] % 14)
		case asm.R6:
			off = int16(c[3]%40) - 6
		case asm.R1:
			off = int16(c[3] % 24)
		}
		size := sizes[c[2]>>4%4]
		var ins asm.Instruction
		switch c[0] % 12 {
		case 0, 1:
			op := aluOps[int(c[2])%len(aluOps)]
			switch c[0] / 12 % 4 {
			case 0:
				ins = op.Imm(dst, imm)
			case 1:
				ins = op.Imm32(dst, imm)
			case 2:
				ins = op.Reg(dst, src)
			default:
				ins = op.Reg32(dst, src)
			}
		case 2:
			switch c[2] % 6 {
			case 0:
				ins = asm.Neg.Imm(dst, 0)
			case 1:
				ins = asm.BSwap(dst, sizes[1+c[3]%3])
			case 2:
				ins = asm.HostTo(asm.BE, dst, sizes[1+c[3]%3])
			case 3:
				ins = asm.HostTo(asm.LE, dst, sizes[1+c[3]%3])
			case 4:
				ins = []asm.ALUOp{asm.MovSX8, asm.MovSX16, asm.MovSX32}[c[3]%3].Reg(dst, src)
			default:
				ins = []asm.ALUOp{asm.MovSX8, asm.MovSX16}[c[3]%2].Reg32(dst, src)
			}
		case 3: // load, load-acquire
			switch {
			case c[3]&1 == 1 && size != asm.DWord:
				ins = asm.LoadMemSX(dst, base, off, size)
			case c[3]&2 == 2:
				ins = asm.LoadAcquire(dst, base, size, off)
			default:
				ins = asm.LoadMem(dst, base, off, size)
			}
		case 4: // store, store-release
			switch {
			case c[3]&1 == 1 && size != asm.DWord:
				ins = asm.StoreImm(base, off, int64(imm), size)
			case c[3]&2 == 2:
				ins = asm.StoreRelease(base, src, size, off)
			default:
				ins = asm.StoreMem(base, off, src, size)
			}
		case 5, 6: // jump, mostly forward
			op := jmpOps[int(c[2])%len(jmpOps)]
			t := sym(i + 1 + int(c[3]%5))
			if c[0]%12 == 6 && c[3]&0x80 != 0 {
				t = sym(i - int(c[3]%8))
			}
			switch c[0] / 12 % 4 {
			case 0:
				ins = op.Imm(dst, imm, t)
			case 1:
				ins = op.Imm32(dst, imm, t)
			case 2:
				ins = op.Reg(dst, src, t)
			default:
				ins = op.Reg32(dst, src, t)
			}
		case 7: // atomic on the stack, the map value or elsewhere
			aops := []asm.AtomicOp{asm.AddAtomic, asm.FetchAdd, asm.AndAtomic, asm.FetchAnd, asm.OrAtomic,
				asm.FetchOr, asm.XorAtomic, asm.FetchXor, asm.Xchg, asm.CmpXchg}
			abase := []asm.Register{asm.R8, asm.RFP, asm.R9, asm.R6}[c[2]%4]
			asize := []asm.Size{asm.Word, asm.DWord}[c[2]>>2%2]
			ins = aops[int(c[3])%len(aops)].Mem(abase, src, asize, int16(int8(c[4]))&^3)
		case 8:
			ins = asm.LoadImm(dst, int64(binary.LittleEndian.Uint64(c)), asm.DWord)
		case 9: // helpers
			switch c[2] % 8 {
			case 4, 5, 6:
				call := packetHelperCall(c) // pkthelp_fuzz_test.go
				call[0] = call[0].WithSymbol(sym(i))
				insns = append(insns, call...)
				continue
			case 0:
				insns = append(insns, asm.Mov.Reg(asm.R2, asm.R9).WithSymbol(sym(i)))
				// The array (map 0) or the hash map (map 1).
				insns = append(insns, asm.LoadMapPtr(asm.R1, int(c[3]&1)), asm.FnMapLookupElem.Call())
				continue
			case 1:
				ins = asm.BuiltinFunc(5).Call()
			case 2:
				ins = asm.FnTailCall.Call()
			default:
				ins = asm.Call.Label("sub")
			}
		case 10:
			if c[2]&1 == 0 {
				ins = asm.LoadAbs(int32(c[3]%32), []asm.Size{asm.Byte, asm.Half, asm.Word}[c[4]%3])
			} else {
				ins = asm.LoadInd(asm.R0, src, int32(c[3]%32)-8, []asm.Size{asm.Byte, asm.Half, asm.Word}[c[4]%3])
			}
		default:
			if c[2]&1 == 0 {
				ins = asm.Mov.Reg(dst, src)
				break
			}
			// A bounds check of the packet as tc programs write it,
			// which the compiler proves accesses through r6 with
			// (jitpkt.go): dst = data + k, then dst against data_end,
			// in one of the four ways the edges can prove room.
			k := int32(c[3]%48) - 4
			t := sym(i + 1 + int(c[4]%5))
			insns = append(insns, asm.Mov.Reg(dst, asm.R6).WithSymbol(sym(i)))
			if c[2]&0x80 != 0 {
				// A cursor moved by a length (jitpktvar.go): r6
				// itself, by a small value or by anything at all.
				src := asm.Register(c[1] >> 4 % nregs)
				if c[2]&0x40 != 0 {
					insns = append(insns, asm.And.Imm(src, 0x3f))
				}
				insns = append(insns, asm.Add.Reg(asm.R6, src), asm.Mov.Reg(dst, asm.R6))
			}
			insns = append(insns, asm.Add.Imm(dst, k))
			if c[4]&0x80 != 0 { // against data_end less a constant
				insns = append(insns, asm.Add.Imm(asm.R7, -int32(c[4]&0x7f)))
			}
			switch c[2] >> 1 % 4 {
			case 0:
				ins = asm.JGT.Reg(dst, asm.R7, t)
			case 1:
				ins = asm.JGE.Reg(dst, asm.R7, t)
			case 2:
				ins = asm.JLT.Reg(asm.R7, dst, t)
			default:
				ins = asm.JLE.Reg(dst, asm.R7, t)
			}
			insns = append(insns, ins)
			continue
		}
		insns = append(insns, ins.WithSymbol(sym(i)))
	}
	// Fold every register into r0, so all of them are compared.
	insns = append(insns, asm.Mov.Reg(asm.R0, asm.R0).WithSymbol(sym(n)))
	for r := asm.R1; r <= asm.R9; r++ {
		insns = append(insns, asm.Mul.Imm(asm.R0, 0x1b3), asm.Xor.Reg(asm.R0, r))
	}
	insns = append(insns, asm.Return())
	// A subprogram: a frame of its own, stack use, a helper.
	insns = append(insns,
		asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("sub"),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, -8, asm.Word),
		asm.Add.Reg(asm.R0, asm.R2),
		asm.Return())
	return insns
}
