package benchprog

import (
	"encoding/binary"
	"math/bits"

	"github.com/cilium/ebpf/asm"
)

// JHash is a hash-heavy tc program: Bob Jenkins' lookup3 mix (the
// kernel's jhash2, __jhash_mix) over the first JHashWords*3 32-bit words
// of the packet, read by direct packet access with a bounds check per
// block, as a load balancer hashing a flow key does. Its r0 is the c word.
const JHash = "jhash"

// JHashBlocks is how many 12-byte blocks JHash mixes (fewer if the
// packet is shorter).
const JHashBlocks = 8

const jhashInit = 0xdeadbeef

// __sk_buff offsets of data and data_end.
const ctxData, ctxDataEnd = 76, 80

func jhashSpec() asm.Instructions {
	a, b, c, t := asm.R4, asm.R5, asm.R0, asm.R7
	// rol32(x, k) into t: t = x << k | x >> (32 - k), all 32-bit.
	rolInto := func(x asm.Register, k int32) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg32(t, x), asm.LSh.Imm32(t, k),
			asm.Mov.Reg32(asm.R9, x), asm.RSh.Imm32(asm.R9, 32-k),
			asm.Or.Reg32(t, asm.R9),
		}
	}
	// x -= z; x ^= rol32(z, k); z += y
	step := func(x, y, z asm.Register, k int32) asm.Instructions {
		out := asm.Instructions{asm.Sub.Reg32(x, z)}
		out = append(out, rolInto(z, k)...)
		return append(out, asm.Xor.Reg32(x, t), asm.Add.Reg32(z, y))
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, ctxData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, ctxDataEnd, asm.Word),
		asm.Mov.Imm32(a, jhashInit-1<<32), asm.Mov.Imm32(b, jhashInit-1<<32), asm.Mov.Imm32(c, jhashInit-1<<32),
		asm.Mov.Imm(asm.R8, JHashBlocks),
		asm.Mov.Reg(asm.R6, asm.R2).WithSymbol("block"),
		asm.Add.Imm(asm.R6, 12),
		asm.JGT.Reg(asm.R6, asm.R3, "out"),
		asm.LoadMem(asm.R6, asm.R2, 0, asm.Word), asm.Add.Reg32(a, asm.R6),
		asm.LoadMem(asm.R6, asm.R2, 4, asm.Word), asm.Add.Reg32(b, asm.R6),
		asm.LoadMem(asm.R6, asm.R2, 8, asm.Word), asm.Add.Reg32(c, asm.R6),
	}
	// __jhash_mix(a, b, c)
	insns = append(insns, step(a, b, c, 4)...)
	insns = append(insns, step(b, c, a, 6)...)
	insns = append(insns, step(c, a, b, 8)...)
	insns = append(insns, step(a, b, c, 16)...)
	insns = append(insns, step(b, c, a, 19)...)
	insns = append(insns, step(c, a, b, 4)...)
	return append(insns,
		asm.Add.Imm(asm.R2, 12),
		asm.Sub.Imm(asm.R8, 1),
		asm.JNE.Imm(asm.R8, 0, "block"),
		asm.Return().WithSymbol("out"),
	)
}

// JHashResult is JHash's r0 for a packet.
func JHashResult(pkt []byte) uint32 {
	a, b, c := uint32(jhashInit), uint32(jhashInit), uint32(jhashInit)
	step := func(x, y, z *uint32, k int) {
		*x -= *z
		*x ^= bits.RotateLeft32(*z, k)
		*z += *y
	}
	for i := 0; i < JHashBlocks && 12*(i+1) <= len(pkt); i++ {
		w := pkt[12*i:]
		a += binary.LittleEndian.Uint32(w)
		b += binary.LittleEndian.Uint32(w[4:])
		c += binary.LittleEndian.Uint32(w[8:])
		step(&a, &b, &c, 4)
		step(&b, &c, &a, 6)
		step(&c, &a, &b, 8)
		step(&a, &b, &c, 16)
		step(&b, &c, &a, 19)
		step(&c, &a, &b, 4)
	}
	return c
}
