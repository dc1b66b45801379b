package vm

import (
	"testing"

	"github.com/cilium/ebpf/asm"
)

// TestJIT_InlineAccesses checks that compiled code does load-acquire,
// store-release (plain MOVs on x86-64, whose loads are acquire and
// stores release) and in-window LD_ABS/LD_IND itself, with the answer
// the interpreter gives and without a memory exit to Go, and that an
// LD_ABS past the packet still leaves to Go, which ends the run with
// r0 = 0 as bpf_gen_ld_abs does.
func TestJIT_InlineAccesses(t *testing.T) {
	pkt := []byte{0xff, 0xff, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99}
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		want  uint64
		exits uint64
	}{
		{"acquire/release on the stack", asm.Instructions{
			asm.LoadImm(asm.R1, 0x1122334455667788, asm.DWord),
			asm.StoreRelease(asm.RFP, asm.R1, asm.DWord, -8),
			asm.StoreRelease(asm.RFP, asm.R1, asm.Byte, -12),
			asm.LoadAcquire(asm.R0, asm.RFP, asm.DWord, -8),
			asm.LoadAcquire(asm.R2, asm.RFP, asm.Half, -12),
			asm.Add.Reg(asm.R0, asm.R2),
		}, 0x1122334455667788 + 0x88, 0},
		{"acquire/release in the packet", asm.Instructions{
			asm.LoadImm(asm.R1, int64(PacketAddr(2)), asm.DWord),
			asm.Mov.Imm(asm.R3, 0x5a5a),
			asm.StoreRelease(asm.R1, asm.R3, asm.Half, 4),
			asm.LoadAcquire(asm.R0, asm.R1, asm.Word, 4),
			asm.LoadAcquire(asm.R2, asm.R1, asm.Byte, 0),
			asm.LSh.Imm(asm.R0, 8),
			asm.Or.Reg(asm.R0, asm.R2),
		}, 0x88775a5a_11, 0},
		{"LD_ABS and LD_IND in the window", asm.Instructions{
			asm.LoadAbs(1, asm.Word),
			asm.Mov.Reg(asm.R6, asm.R0),
			asm.Mov.Imm(asm.R3, 4),
			asm.LoadInd(asm.R0, asm.R3, 2, asm.Half),
			asm.LSh.Imm(asm.R6, 16),
			asm.Or.Reg(asm.R0, asm.R6),
		}, 0x22334455_7788, 0},
		{"LD_ABS past the end", asm.Instructions{
			asm.LoadAbs(8, asm.Word),
			asm.Mov.Imm(asm.R0, 7),
		}, 0, 1},
	} {
		for _, eng := range []Engine{EngineInterp, EngineJIT} {
			p, err := Load(append(c.insns, asm.Return()), Options{Engine: eng})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if ok, why := p.Compiled(); eng == EngineJIT && !ok {
				t.Skipf("not compiled: %s", why)
			}
			buf := append([]byte(nil), pkt...)
			m := NewMachine()
			if err := m.SetPacket(buf, 0, 2, len(buf)); err != nil {
				t.Fatal(err)
			}
			r0, err := m.Run(p)
			if err != nil || r0 != c.want {
				t.Errorf("%s (%v): r0 = %#x, %v; want %#x", c.name, eng, r0, err, c.want)
			}
			if eng == EngineJIT && m.jit.memExits != c.exits {
				t.Errorf("%s: %d memory exits to Go, want %d", c.name, m.jit.memExits, c.exits)
			}
		}
	}
}
