package amd64

import (
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// TestAsm_Encodings decodes every instruction form the compiler emits with
// an independent decoder (x/arch's, in its GNU spelling: %riz for an
// empty SIB index, signed immediates) and compares it with what was meant,
// as objdump reads the same bytes. Register numbering, REX bits, SIB
// for r12 bases, byte registers that need an empty REX, the lock prefix
// and immediate widths are where hand-written encoders go wrong.
func TestAsm_Encodings(t *testing.T) {
	cases := []struct {
		emit func(a *Asm)
		want string
	}{
		{func(a *Asm) { a.Load(8, RAX, MI(R12, R11, 0x1234)) }, "mov 0x1234(%r12,%r11),%rax"},
		{func(a *Asm) { a.Load(1, R13, M(R13, -8)) }, "movzbl -0x8(%r13),%r13d"},
		{func(a *Asm) { a.Load(2, RSI, M(RBP, 16)) }, "movzwl 0x10(%rbp),%esi"},
		{func(a *Asm) { a.Load(4, R9, M(R12, 0x900)) }, "mov 0x900(%r12,%riz),%r9d"},
		{func(a *Asm) { a.LoadSX(1, RDI, M(R12, 4)) }, "movsbq 0x4(%r12,%riz),%rdi"},
		{func(a *Asm) { a.LoadSX(2, RBX, M(R11, 2)) }, "movswq 0x2(%r11),%rbx"},
		{func(a *Asm) { a.LoadSX(4, R9, M(R11, 0)) }, "movsxd (%r11),%r9"},
		{func(a *Asm) { a.Store(1, M(RBX, 0), RSI) }, "mov %sil,(%rbx)"},
		{func(a *Asm) { a.Store(1, M(R11, 0), RDI) }, "mov %dil,(%r11)"},
		{func(a *Asm) { a.Store(1, M(R11, 0), R14) }, "mov %r14b,(%r11)"},
		{func(a *Asm) { a.Store(2, M(R11, 2), RDX) }, "mov %dx,0x2(%r11)"},
		{func(a *Asm) { a.Store(8, M(R12, 0x10), RBP) }, "mov %rbp,0x10(%r12,%riz)"},
		{func(a *Asm) { a.StoreImm(2, M(R12, 8), -2) }, "movw $-0x2,0x8(%r12,%riz)"},
		{func(a *Asm) { a.StoreImm(8, M(R11, 8), -2) }, "movq $-0x2,0x8(%r11)"},
		{func(a *Asm) { a.StoreImm(1, M(RBX, 8), 0x7f) }, "movb $0x7f,0x8(%rbx)"},
		{func(a *Asm) { a.StoreImm(4, M(R13, 8), 7) }, "movl $0x7,0x8(%r13)"},
		{func(a *Asm) { a.Movsx(false, 1, RAX, RSI) }, "movsbl %sil,%eax"},
		{func(a *Asm) { a.Movsx(true, 1, R15, RDI) }, "movsbq %dil,%r15"},
		{func(a *Asm) { a.Movsx(true, 2, R8, R9) }, "movswq %r9w,%r8"},
		{func(a *Asm) { a.Movsx(true, 4, RDX, R8) }, "movsxd %r8d,%rdx"},
		{func(a *Asm) { a.Movzx16(RDI, RDI) }, "movzwl %di,%edi"},
		{func(a *Asm) { a.Lock(); a.XaddMR(true, M(R11, 0), RSI) }, "lock xadd %rsi,(%r11)"},
		{func(a *Asm) { a.Lock(); a.CmpxchgMR(false, M(R11, 0), R15) }, "lock cmpxchg %r15d,(%r11)"},
		{func(a *Asm) { a.XchgMR(true, M(R11, 0), RBP) }, "xchg %rbp,(%r11)"},
		{func(a *Asm) { a.Lock(); a.ALUMR(false, OR, M(R11, 0), R9) }, "lock or %r9d,(%r11)"},
		{func(a *Asm) { a.MulRDX() }, "mul %rdx"},
		{func(a *Asm) { a.JmpR(R10) }, "jmp *%r10"},
		{func(a *Asm) { a.JmpR(RCX) }, "jmp *%rcx"},
		{func(a *Asm) { a.ShiftRCL(false, SAR, R13) }, "sar %cl,%r13d"},
		{func(a *Asm) { a.ShiftRI(true, SHL, RBX, 63) }, "shl $0x3f,%rbx"},
		{func(a *Asm) { a.ShiftRI(false, SHR, RAX, 16) }, "shr $0x10,%eax"},
		{func(a *Asm) { a.Bswap(false, R14) }, "bswap %r14d"},
		{func(a *Asm) { a.Bswap(true, RAX) }, "bswap %rax"},
		{func(a *Asm) { a.MovRI64(R10, 0x123456789) }, "mov $0x123456789,%r10"},
		{func(a *Asm) { a.MovRI64(R10, 0xffffffffffffff00) }, "mov $-0x100,%r10"},
		{func(a *Asm) { a.MovRI64(RDX, 5) }, "mov $0x5,%edx"},
		{func(a *Asm) { a.MovRI64(R9, 0xffffffff) }, "mov $-0x1,%r9d"},
		{func(a *Asm) { a.MovRR(true, RAX, R15) }, "mov %r15,%rax"},
		{func(a *Asm) { a.MovRR(false, R11, R11) }, "mov %r11d,%r11d"},
		{func(a *Asm) { a.ALURR(true, SUB, R13, RDI) }, "sub %rdi,%r13"},
		{func(a *Asm) { a.ALURR(false, XOR, RDX, RDX) }, "xor %edx,%edx"},
		{func(a *Asm) { a.ALURI(true, CMP, RCX, -1) }, "cmp $-0x1,%rcx"},
		{func(a *Asm) { a.ALURI(false, AND, R8, 0x12345) }, "and $0x12345,%r8d"},
		{func(a *Asm) { a.ALUMI(true, SUB, M(R12, 0x900), 3) }, "subq $0x3,0x900(%r12,%riz)"},
		{func(a *Asm) { a.ALURM(true, CMP, R11, M(R12, 0x908)) }, "cmp 0x908(%r12,%riz),%r11"},
		{func(a *Asm) { a.ALUMR(false, CMP, M(R12, 0x20), R11) }, "cmp %r11d,0x20(%r12,%riz)"},
		{func(a *Asm) { a.ImulRRI(true, RCX, RCX, 80) }, "imul $0x50,%rcx,%rcx"},
		{func(a *Asm) { a.ImulRR(false, RBX, R14) }, "imul %r14d,%ebx"},
		{func(a *Asm) { a.Neg(true, R15) }, "neg %r15"},
		{func(a *Asm) { a.Div(true, true, R11) }, "idiv %r11"},
		{func(a *Asm) { a.Div(false, false, R11) }, "div %r11d"},
		{func(a *Asm) { a.SignExtendRAX(true) }, "cqto"},
		{func(a *Asm) { a.SignExtendRAX(false) }, "cltd"},
		{func(a *Asm) { a.JmpM(M(R12, 0x10)) }, "jmpq *0x10(%r12,%riz)"},
		{func(a *Asm) { a.TestRI(false, R11, 7) }, "test $0x7,%r11d"},
		{func(a *Asm) { a.TestRR(true, R10, R10) }, "test %r10,%r10"},
		{func(a *Asm) { a.TestM8(MI(R10, R11, 0), 4) }, "testb $0x4,(%r10,%r11)"},
		{func(a *Asm) { a.CmpM8(M(R10, 0), 0) }, "cmpb $0x0,(%r10)"},
		{func(a *Asm) { a.Lea(true, R11, M(RBP, -8)) }, "lea -0x8(%rbp),%r11"},
		{func(a *Asm) { a.Lea(false, R10, M(R11, 4)) }, "lea 0x4(%r11),%r10d"},
		{func(a *Asm) { a.Ret() }, "retq"},
	}
	for _, c := range cases {
		var a Asm
		c.emit(&a)
		inst, err := x86asm.Decode(a.B, 64)
		if err != nil {
			t.Errorf("% x (want %s): %v", a.B, c.want, err)
			continue
		}
		if inst.Len != len(a.B) {
			t.Errorf("% x: decoded %d of %d bytes (want %s)", a.B, inst.Len, len(a.B), c.want)
		}
		if got := x86asm.GNUSyntax(inst, 0, nil); got != c.want {
			t.Errorf("% x: %s, want %s", a.B, got, c.want)
		}
	}
}

// TestAsm_Jumps checks rel32 patching forwards and backwards.
func TestAsm_Jumps(t *testing.T) {
	var a Asm
	back, fwd := a.NewLabel(), a.NewLabel()
	a.Bind(back)
	a.Jcc(CondNE, fwd) // 6 bytes at 0
	a.Jmp(back)        // 5 bytes at 6
	a.Bind(fwd)        // 11
	if !a.Finish() {
		t.Fatal("unbound label")
	}
	for _, c := range []struct {
		at   int
		want string
	}{{0, "jne .+0x5"}, {6, "jmpq .-0xb"}} {
		inst, err := x86asm.Decode(a.B[c.at:], 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := x86asm.GNUSyntax(inst, 0, nil); got != c.want {
			t.Errorf("at %d: %s, want %s", c.at, got, c.want)
		}
	}
	// lea of a label: RIP-relative, from the end of the instruction.
	var l Asm
	here := l.NewLabel()
	l.Bind(here)
	l.LeaLabel(R10, here) // 7 bytes at 0: here is .-7
	l.LeaLabel(RAX, here) // 7 bytes at 7: .-14
	if !l.Finish() {
		t.Fatal("unbound label")
	}
	for _, c := range []struct {
		at   int
		want string
	}{{0, "lea -0x7(%rip),%r10"}, {7, "lea -0xe(%rip),%rax"}} {
		inst, err := x86asm.Decode(l.B[c.at:], 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := x86asm.GNUSyntax(inst, 0, nil); got != c.want {
			t.Errorf("at %d: %s, want %s", c.at, got, c.want)
		}
	}
	var u Asm
	u.Jmp(u.NewLabel())
	if u.Finish() {
		t.Error("Finish accepted an unbound label")
	}
}
