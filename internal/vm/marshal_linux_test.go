package vm

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// On Linux asm encodes helper calls itself; marshal, which exists for the
// hosts where it will not, must agree with it bit for bit, and refuse what
// it refuses.
func TestMarshal_HelperCallsMatchAsmOnLinux(t *testing.T) {
	consts := []int64{-1, -2, 1<<31 + 1, 1 << 28, 3<<28 | 1, 1<<28 - 1, 1 << 32}
	for id := range int64(240) {
		consts = append(consts, id)
	}
	for _, c := range consts {
		for _, ins := range []asm.Instruction{
			{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Constant: c},
			{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Constant: c, Offset: 3},
			{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call).SetSource(asm.RegSource), Constant: c},
		} {
			var want, got bytes.Buffer
			_, wantErr := ins.Marshal(&want, binary.LittleEndian)
			gotErr := marshal(&got, ins)
			if (wantErr != nil) != (gotErr != nil) || !bytes.Equal(want.Bytes(), got.Bytes()) {
				t.Errorf("%v (constant %#x): asm %x, %v; marshal %x, %v", ins, c, want.Bytes(), wantErr, got.Bytes(), gotErr)
			}
		}
	}
}
