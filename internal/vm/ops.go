package vm

// op is one lowered instruction. Every field the interpreter needs is
// pre-decoded: immediates are already sign- or zero-extended (and shift
// amounts masked), jump targets are absolute op indices, ld_imm64 in all its
// forms is a single kMov64Imm with the resolved 64-bit value.
type op struct {
	kind uint8
	dst  uint8
	src  uint8
	_    uint8
	off  int32  // memory offset, jump/call target (op index), helper id
	imm  uint64 // immediate; atomic sub-op
}

// Operation kinds. The interpreter is one switch over these; keep them
// dense so the compiler emits a jump table.
const (
	kInvalid uint8 = iota

	// ALU64, immediate operand (imm pre-extended).
	kAdd64Imm
	kSub64Imm
	kMul64Imm
	kDiv64Imm // imm != 0 (division by constant zero is lowered to mov 0)
	kSDiv64Imm
	kOr64Imm
	kAnd64Imm
	kLsh64Imm // imm masked to 63
	kRsh64Imm
	kArsh64Imm
	kMod64Imm // imm != 0
	kSMod64Imm
	kXor64Imm
	kMov64Imm

	// ALU64, register operand.
	kAdd64Reg
	kSub64Reg
	kMul64Reg
	kDiv64Reg
	kSDiv64Reg
	kOr64Reg
	kAnd64Reg
	kLsh64Reg
	kRsh64Reg
	kArsh64Reg
	kMod64Reg
	kSMod64Reg
	kXor64Reg
	kMov64Reg
	kMovSX8To64
	kMovSX16To64
	kMovSX32To64
	kNeg64

	// ALU32, immediate operand (imm zero-extended from 32 bits).
	kAdd32Imm
	kSub32Imm
	kMul32Imm
	kDiv32Imm
	kSDiv32Imm
	kOr32Imm
	kAnd32Imm
	kLsh32Imm // imm masked to 31
	kRsh32Imm
	kArsh32Imm
	kMod32Imm
	kSMod32Imm
	kXor32Imm
	kMov32Imm

	// ALU32, register operand.
	kAdd32Reg
	kSub32Reg
	kMul32Reg
	kDiv32Reg
	kSDiv32Reg
	kOr32Reg
	kAnd32Reg
	kLsh32Reg
	kRsh32Reg
	kArsh32Reg
	kMod32Reg
	kSMod32Reg
	kXor32Reg
	kMov32Reg // also "zero-extend dst" (mod32 by constant zero)
	kMovSX8To32
	kMovSX16To32
	kNeg32

	// Byte order (little-endian host): le16/le32 truncate, be and bswap swap.
	kZext16
	kZext32
	kSwap16
	kSwap32
	kSwap64
	kNop // le64, mod64 by constant zero

	// Jumps, 64-bit compare; imm sign-extended to 64 bits, off = target.
	kJa
	kJeqImm
	kJgtImm
	kJgeImm
	kJsetImm
	kJneImm
	kJsgtImm
	kJsgeImm
	kJltImm
	kJleImm
	kJsltImm
	kJsleImm
	kJeqReg
	kJgtReg
	kJgeReg
	kJsetReg
	kJneReg
	kJsgtReg
	kJsgeReg
	kJltReg
	kJleReg
	kJsltReg
	kJsleReg

	// Jumps, 32-bit compare; imm zero-extended 32 bits.
	kJeq32Imm
	kJgt32Imm
	kJge32Imm
	kJset32Imm
	kJne32Imm
	kJsgt32Imm
	kJsge32Imm
	kJlt32Imm
	kJle32Imm
	kJslt32Imm
	kJsle32Imm
	kJeq32Reg
	kJgt32Reg
	kJge32Reg
	kJset32Reg
	kJne32Reg
	kJsgt32Reg
	kJsge32Reg
	kJlt32Reg
	kJle32Reg
	kJslt32Reg
	kJsle32Reg

	kMayGoto // taken when the per-run may_goto budget is exhausted

	// Calls.
	kCall       // bpf-to-bpf, off = target op index
	kCallHelper // off = helper id
	kCallx      // helper id in register dst (non-Linux extension, opt-in)
	kPoisoned   // call of CorePoisonedCall: faults when reached
	kExit

	// Loads: dst = *(size *)(src + off).
	kLdxB
	kLdxH
	kLdxW
	kLdxDW
	kLdxSB // sign-extending (MEMSX)
	kLdxSH
	kLdxSW

	// Stores of an immediate: *(size *)(dst + off) = imm.
	kStB
	kStH
	kStW
	kStDW

	// Stores of a register: *(size *)(dst + off) = src.
	kStxB
	kStxH
	kStxW
	kStxDW

	// Atomics, imm = the raw atomic operation (BPF_ADD, ... | BPF_FETCH, XCHG, CMPXCHG).
	kAtomic32
	kAtomic64

	// Legacy packet loads, r0 = ntoh(packet[data+off(+src)]); out of bounds ends the program with r0 = 0.
	kLdAbsB
	kLdAbsH
	kLdAbsW
	kLdIndB
	kLdIndH
	kLdIndW

	numKinds
)
