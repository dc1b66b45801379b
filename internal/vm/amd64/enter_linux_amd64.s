#include "textflag.h"

// func enter(entry, state uintptr)
//
// Calls compiled code with r12 = state. The compiled code uses every
// general-purpose register. Go's ABI0 lets an assembly function clobber
// all of them but the stack and frame pointers, and the code Go emits
// around a call of an ABI0 function reloads g (r14) and zeroes x15
// afterwards, so only BP is saved here. NOSPLIT and no frame: the
// trampoline runs on every entry into compiled code, every helper exit's
// resumption included, and the stack check and frame setup of a split
// function were a tenth of it; the compiled code's few bytes below the
// return address (see Code.Enter) fit the slack below the stack guard
// that NOSPLIT functions may use.
TEXT ·enter(SB), NOSPLIT, $0-16
	MOVQ entry+0(FP), AX
	MOVQ state+8(FP), R12
	PUSHQ BP
	CALL AX
	POPQ BP
	RET
