#include "textflag.h"

// func enter(entry, state uintptr)
//
// Calls compiled code with r12 = state. The compiled code uses every
// general-purpose register; Go's ABI0 lets an assembly function clobber
// all of them except the stack and frame pointers, and the ABI wrapper
// around this function reloads g (r14) afterwards. r14 and r15 are saved
// here anyway so that nothing depends on that wrapper, and BP is restored
// by the epilogue the assembler generates for a function with a frame.
TEXT ·enter(SB), 0, $32-16
	MOVQ entry+0(FP), AX
	MOVQ state+8(FP), R12
	MOVQ R14, 0(SP)
	MOVQ R15, 8(SP)
	MOVQ BP, 16(SP)
	CALL AX
	MOVQ 0(SP), R14
	MOVQ 8(SP), R15
	MOVQ 16(SP), BP
	RET
