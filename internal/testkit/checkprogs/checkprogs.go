package checkprogs

import (
	"github.com/cilium/ebpf/asm"

	"github.com/tcxgo/tcx/skb"
)

// JoinAccess is the index of the packet load in Join's program.
const JoinAccess = 11

// Join checks a bound of a bytes on one way (skb->mark == 0) and b on the
// other, then loads the two bytes at offset 12 where the ways join: the
// kernel loads it when both bounds are at least 14.
func Join(a, b int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skb.CtxDataEnd, asm.Word),
		asm.LoadMem(asm.R0, asm.R1, skb.CtxMark, asm.Word),
		asm.JEq.Imm(asm.R0, 0, "other"),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, a),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.Ja.Label("join"),
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("other"),
		asm.Add.Imm(asm.R4, b),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R0, asm.R2, 12, asm.Half).WithSymbol("join"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}

// LoopAccess is the index of the packet load in Loop's program.
const LoopAccess = 6

// Loop checks 14 bytes, then loads byte 12 in a loop of four rounds. With
// reload, each round reloads skb->data into the pointer it loads through,
// so from the second round on the load is unchecked and the kernel
// refuses it.
func Loop(reload bool) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skb.CtxDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.Mov.Imm(asm.R5, 0),
		asm.LoadMem(asm.R0, asm.R2, 12, asm.Byte).WithSymbol("loop"),
	}
	if reload {
		insns = append(insns, asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word))
	} else {
		insns = append(insns, asm.Mov.Reg(asm.R2, asm.R2))
	}
	return append(insns,
		asm.Add.Imm(asm.R5, 1),
		asm.JLT.Imm(asm.R5, 4, "loop"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
}

// VarOffsetAccess is the index of the packet load in VarOffset's program.
const VarOffsetAccess = 8

// VarOffset adds skb->mark & mask to the packet pointer, checks 14 bytes
// after it and loads the last of them: the kernel keeps the check only
// while the variable part and the 14 stay within 0xffff (MAX_PACKET_OFF),
// so a mask of 0xff loads and one of 0xffff is refused.
func VarOffset(mask int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skb.CtxData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skb.CtxDataEnd, asm.Word),
		asm.LoadMem(asm.R0, asm.R1, skb.CtxMark, asm.Word),
		asm.And.Imm(asm.R0, mask),
		asm.Add.Reg(asm.R0, asm.R2),
		asm.Mov.Reg(asm.R5, asm.R0),
		asm.Add.Imm(asm.R0, 14),
		asm.JGT.Reg(asm.R0, asm.R3, "out"),
		asm.LoadMem(asm.R4, asm.R5, 13, asm.Byte),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}
