package vm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"syscall"

	"github.com/cilium/ebpf/asm"
)

// rawInsn is one 8-byte instruction slot in the kernel's encoding; the
// second half of an ld_imm64 is a slot of its own, as in the kernel.
type rawInsn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
	index    int    // position in the asm.Instructions
	ref      string // symbolic reference (map name), for MapRef.Name
}

func invalid(insn, index int, errno syscall.Errno, format string, args ...any) *ValidationError {
	return &ValidationError{Insn: insn, Index: index, Reason: fmt.Sprintf(format, args...), Errno: errno}
}

var ja32 = asm.OpCode(asm.Jump32Class).SetJumpOp(asm.Ja)

// fromAsm resolves symbolic jump/call references and encodes insns into
// raw slots with asm's own encoder, so extended asm opcodes (SDiv, MovSX,
// atomics) get exactly their kernel encoding.
func fromAsm(insns asm.Instructions) ([]rawInsn, error) {
	syms := make(map[string]int)
	off := 0
	for i := range insns {
		if s := insns[i].Symbol(); s != "" {
			if _, dup := syms[s]; dup {
				return nil, invalid(off, i, syscall.EINVAL, "duplicate symbol %q", s)
			}
			syms[s] = off
		}
		off += int(insns[i].Width())
	}

	raw := make([]rawInsn, 0, off)
	var buf bytes.Buffer
	off = 0
	for i, ins := range insns {
		ref := ins.Reference()
		if ref != "" {
			if err := resolveRef(&ins, syms, ref, off, i); err != nil {
				return nil, err
			}
		}
		if a := ins.OpCode.AtomicOp(); a != asm.InvalidAtomic {
			// asm v0.22.0's Marshal reads Constant before deriving it from
			// the opcode, so DSL-built atomics (FetchAdd, Xchg, CmpXchg,
			// LoadAcquire, ...) would be encoded with imm 0 (plain add).
			ins.Constant = int64(a >> 8)
		}
		buf.Reset()
		if err := marshal(&buf, ins); err != nil {
			if ins.OpCode.JumpOp() == asm.Call && ins.Src == asm.R0 {
				return nil, invalid(off, i, syscall.EINVAL, "unknown helper %d", ins.Constant)
			}
			return nil, invalid(off, i, syscall.EINVAL, "unknown opcode: %v", err)
		}
		for b := buf.Bytes(); len(b) >= asm.InstructionSize; b = b[asm.InstructionSize:] {
			raw = append(raw, rawInsn{
				code:  b[0],
				dst:   b[1] & 0xf,
				src:   b[1] >> 4,
				off:   int16(binary.LittleEndian.Uint16(b[2:])),
				imm:   int32(binary.LittleEndian.Uint32(b[4:])),
				index: i,
				ref:   ref,
			})
		}
		off = len(raw)
	}
	return raw, nil
}

// resolveRef fills in the placeholder (-1) target of a jump, bpf-to-bpf
// call or function pointer load that names a symbol instead.
func resolveRef(ins *asm.Instruction, syms map[string]int, ref string, off, index int) error {
	byConstant := ins.IsFunctionReference() || ins.OpCode == ja32
	byOffset := !byConstant && ins.OpCode.Class().IsJump() &&
		ins.OpCode.JumpOp() != asm.Call && ins.OpCode.JumpOp() != asm.Exit
	switch {
	case byConstant && ins.Constant == -1, byOffset && ins.Offset == -1:
	default:
		return nil // a map reference, or already resolved
	}
	target, ok := syms[ref]
	if !ok {
		return invalid(off, index, syscall.EINVAL, "unresolved reference %q", ref)
	}
	delta := target - off - 1
	if byConstant {
		ins.Constant = int64(delta)
		if ins.OpCode.IsDWordLoad() {
			ins.Constant = int64(uint32(delta)) // high immediate 0, backwards too
		}
		return nil
	}
	if delta < math.MinInt16 || delta > math.MaxInt16 {
		return invalid(off, index, syscall.EINVAL, "jump to %q out of 16-bit range", ref)
	}
	ins.Offset = int16(delta)
	return nil
}

// decodeRaw decodes bytecode with asm's decoder and rejects anything it
// cannot re-encode bit for bit (reserved bits asm would drop).
func decodeRaw(code []byte) (asm.Instructions, error) {
	if len(code)%asm.InstructionSize != 0 {
		return nil, invalid(len(code)/asm.InstructionSize, len(code)/asm.InstructionSize, syscall.EINVAL,
			"%d trailing bytes", len(code)%asm.InstructionSize)
	}
	var insns asm.Instructions
	var buf bytes.Buffer
	r := bytes.NewReader(code)
	for r.Len() > 0 {
		start := len(code) - r.Len()
		off := start / asm.InstructionSize
		var ins asm.Instruction
		if err := ins.Unmarshal(r, binary.LittleEndian, "linux"); err != nil {
			if code[start] == 0x85 && code[start+1] == 0 {
				return nil, invalid(off, len(insns), syscall.EINVAL, "unknown helper %d",
					int32(binary.LittleEndian.Uint32(code[start+4:])))
			}
			return nil, invalid(off, len(insns), syscall.EINVAL, "invalid instruction: %v", err)
		}
		end := len(code) - r.Len()
		buf.Reset()
		if err := marshal(&buf, ins); err != nil {
			if ins.IsBuiltinCall() {
				return nil, invalid(off, len(insns), syscall.EINVAL, "unknown helper %d", ins.Constant)
			}
			return nil, invalid(off, len(insns), syscall.EINVAL, "unknown opcode %#02x: %v", code[start], err)
		}
		if !bytes.Equal(buf.Bytes(), code[start:end]) {
			return nil, invalid(off, len(insns), syscall.EINVAL, "unknown opcode %#02x or reserved fields in use", code[start])
		}
		insns = append(insns, ins)
	}
	return insns, nil
}

// helperTagMask covers the platform tag asm keeps in bits 28-30 of a helper
// ID; Linux's tag is 0.
const helperTagMask = 7 << 28

// marshal is asm's little-endian encoding of ins, except that a call of a
// Linux helper is encoded on every host: asm refuses a helper whose
// platform tag is not the host's, so on macOS or Windows it would reject
// every helper call of a Linux program. The call is encoded as if its dst
// were r1 (no helper call for asm) and the register byte cleared after.
func marshal(buf *bytes.Buffer, ins asm.Instruction) error {
	if !ins.IsBuiltinCall() {
		_, err := ins.Marshal(buf, binary.LittleEndian)
		return err
	}
	id := uint32(ins.Constant)
	if id&helperTagMask != 0 {
		return fmt.Errorf("helper %#x: not a Linux helper", id)
	}
	start := buf.Len()
	ins.Dst, ins.Constant = asm.R1, int64(int32(id))
	if _, err := ins.Marshal(buf, binary.LittleEndian); err != nil {
		return err
	}
	buf.Bytes()[start+1] = 0 // dst r0, src r0
	return nil
}
