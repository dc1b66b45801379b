package amd64

import "encoding/binary"

// Reg is a general-purpose register, numbered as in the instruction
// encoding.
type Reg uint8

// The general-purpose registers.
const (
	RAX Reg = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

// Mem is a memory operand [Base + Index + Disp]; Index is used if HasIndex.
type Mem struct {
	Base     Reg
	Index    Reg
	HasIndex bool
	Disp     int32
}

// M is [base + disp].
func M(base Reg, disp int32) Mem { return Mem{Base: base, Disp: disp} }

// MI is [base + index + disp].
func MI(base, index Reg, disp int32) Mem {
	return Mem{Base: base, Index: index, HasIndex: true, Disp: disp}
}

// Cond is a condition code (the low nibble of Jcc).
type Cond uint8

// Condition codes.
const (
	CondB  Cond = 0x2 // below (unsigned <)
	CondAE Cond = 0x3 // above or equal (unsigned >=)
	CondE  Cond = 0x4
	CondNE Cond = 0x5
	CondBE Cond = 0x6 // unsigned <=
	CondA  Cond = 0x7 // unsigned >
	CondL  Cond = 0xc // signed <
	CondGE Cond = 0xd
	CondLE Cond = 0xe
	CondG  Cond = 0xf
)

// Invert is the opposite condition.
func (c Cond) Invert() Cond { return c ^ 1 }

// ALU operations with the /digit of their immediate form (0x81 /d) and the
// opcode of their register form (op r/m, r).
type ALU uint8

// The ALU operations.
const (
	ADD ALU = 0
	OR  ALU = 1
	AND ALU = 4
	SUB ALU = 5
	XOR ALU = 6
	CMP ALU = 7
)

func (a ALU) regOp() byte { return byte(a)<<3 | 1 }

// Shift operations, the /digit of 0xC1 and 0xD3.
type Shift uint8

// The shift operations.
const (
	ROL Shift = 0
	SHL Shift = 4
	SHR Shift = 5
	SAR Shift = 7
)

// Label is a position in the code, bound once.
type Label int

// Asm assembles x86-64 code into a byte slice. Jumps to labels are rel32
// and patched by Finish.
type Asm struct {
	B      []byte
	labels []int // label -> offset, -1 while unbound
	fixups []fixup
}

type fixup struct {
	at    int // offset of the rel32
	label Label
}

// NewLabel returns an unbound label.
func (a *Asm) NewLabel() Label {
	a.labels = append(a.labels, -1)
	return Label(len(a.labels) - 1)
}

// Bind binds l to the current position.
func (a *Asm) Bind(l Label) { a.labels[l] = len(a.B) }

// Bound reports where l is bound (-1 if not yet).
func (a *Asm) Bound(l Label) int { return a.labels[l] }

// Finish patches jumps; it reports false if a label was never bound.
func (a *Asm) Finish() bool {
	for _, f := range a.fixups {
		t := a.labels[f.label]
		if t < 0 {
			return false
		}
		binary.LittleEndian.PutUint32(a.B[f.at:], uint32(int32(t-(f.at+4))))
	}
	return true
}

func (a *Asm) byte1(b ...byte) { a.B = append(a.B, b...) }

func (a *Asm) imm32(v int32) { a.B = binary.LittleEndian.AppendUint32(a.B, uint32(v)) }

// rex emits a REX prefix if needed (or forced, for byte registers).
func (a *Asm) rex(w bool, reg, index, base Reg, force bool) {
	b := byte(0x40)
	if w {
		b |= 8
	}
	if reg&8 != 0 {
		b |= 4
	}
	if index&8 != 0 {
		b |= 2
	}
	if base&8 != 0 {
		b |= 1
	}
	if b != 0x40 || force {
		a.B = append(a.B, b)
	}
}

// rr emits [prefix] op ModRM(11, reg, rm).
func (a *Asm) rr(w bool, force bool, op []byte, reg, rm Reg) {
	a.rex(w, reg, 0, rm, force)
	a.B = append(a.B, op...)
	a.B = append(a.B, 0xc0|byte(reg&7)<<3|byte(rm&7))
}

// rm emits [prefix] op ModRM(10, reg, mem) [SIB] disp32.
func (a *Asm) rm(w bool, force bool, op []byte, reg Reg, m Mem) {
	idx := Reg(0)
	if m.HasIndex {
		idx = m.Index
	}
	a.rex(w, reg, idx, m.Base, force)
	a.B = append(a.B, op...)
	switch {
	case m.HasIndex:
		a.B = append(a.B, 0x80|byte(reg&7)<<3|4, byte(m.Index&7)<<3|byte(m.Base&7))
	case m.Base&7 == 4: // rsp, r12 need a SIB
		a.B = append(a.B, 0x80|byte(reg&7)<<3|4, 0x24)
	default:
		a.B = append(a.B, 0x80|byte(reg&7)<<3|byte(m.Base&7))
	}
	a.imm32(m.Disp)
}

// ALURR is dst op= src (64-bit if w, else 32-bit, which zero-extends).
func (a *Asm) ALURR(w bool, op ALU, dst, src Reg) { a.rr(w, false, []byte{op.regOp()}, src, dst) }

// ALURI is dst op= imm (sign-extended to 64 bits if w).
func (a *Asm) ALURI(w bool, op ALU, dst Reg, imm int32) {
	if imm >= -128 && imm <= 127 {
		a.rr(w, false, []byte{0x83}, Reg(op), dst)
		a.B = append(a.B, byte(imm))
		return
	}
	a.rr(w, false, []byte{0x81}, Reg(op), dst)
	a.imm32(imm)
}

// ALURM is reg op= [m].
func (a *Asm) ALURM(w bool, op ALU, reg Reg, m Mem) { a.rm(w, false, []byte{op.regOp() + 2}, reg, m) }

// ALUMR is [m] op= reg.
func (a *Asm) ALUMR(w bool, op ALU, m Mem, reg Reg) { a.rm(w, false, []byte{op.regOp()}, reg, m) }

// ALUMI is [m] op= imm.
func (a *Asm) ALUMI(w bool, op ALU, m Mem, imm int32) {
	a.rm(w, false, []byte{0x81}, Reg(op), m)
	a.imm32(imm)
}

// CmpM8 compares the byte at m with imm.
func (a *Asm) CmpM8(m Mem, imm uint8) {
	a.rm(false, false, []byte{0x80}, 7, m)
	a.B = append(a.B, imm)
}

// TestM8 is test byte [m], imm.
func (a *Asm) TestM8(m Mem, imm uint8) {
	a.rm(false, false, []byte{0xf6}, 0, m)
	a.B = append(a.B, imm)
}

// TestRR is test a, b.
func (a *Asm) TestRR(w bool, x, y Reg) { a.rr(w, false, []byte{0x85}, y, x) }

// TestRI is test r, imm.
func (a *Asm) TestRI(w bool, r Reg, imm int32) {
	a.rr(w, false, []byte{0xf7}, 0, r)
	a.imm32(imm)
}

// MovRR is dst = src (32-bit zero-extends).
func (a *Asm) MovRR(w bool, dst, src Reg) { a.rr(w, false, []byte{0x89}, src, dst) }

// MovRI64 is dst = imm, with the shortest encoding.
func (a *Asm) MovRI64(dst Reg, imm uint64) {
	switch {
	case imm <= 0xffffffff:
		a.rex(false, 0, 0, dst, false)
		a.B = append(a.B, 0xb8|byte(dst&7))
		a.imm32(int32(uint32(imm)))
	case int64(imm) >= -1<<31 && int64(imm) < 1<<31:
		a.rr(true, false, []byte{0xc7}, 0, dst)
		a.imm32(int32(imm))
	default:
		a.rex(true, 0, 0, dst, false)
		a.B = append(a.B, 0xb8|byte(dst&7))
		a.B = binary.LittleEndian.AppendUint64(a.B, imm)
	}
}

// Load is dst = zero-extended n-byte [m] (n = 1, 2, 4, 8).
func (a *Asm) Load(n int, dst Reg, m Mem) {
	switch n {
	case 1:
		a.rm(false, false, []byte{0x0f, 0xb6}, dst, m)
	case 2:
		a.rm(false, false, []byte{0x0f, 0xb7}, dst, m)
	case 4:
		a.rm(false, false, []byte{0x8b}, dst, m)
	default:
		a.rm(true, false, []byte{0x8b}, dst, m)
	}
}

// LoadSX is dst = sign-extended n-byte [m] (n = 1, 2, 4) to 64 bits.
func (a *Asm) LoadSX(n int, dst Reg, m Mem) {
	switch n {
	case 1:
		a.rm(true, false, []byte{0x0f, 0xbe}, dst, m)
	case 2:
		a.rm(true, false, []byte{0x0f, 0xbf}, dst, m)
	default:
		a.rm(true, false, []byte{0x63}, dst, m)
	}
}

// Store is n-byte [m] = src.
func (a *Asm) Store(n int, m Mem, src Reg) {
	switch n {
	case 1:
		a.rm(false, src >= RSP, []byte{0x88}, src, m)
	case 2:
		a.B = append(a.B, 0x66)
		a.rm(false, false, []byte{0x89}, src, m)
	case 4:
		a.rm(false, false, []byte{0x89}, src, m)
	default:
		a.rm(true, false, []byte{0x89}, src, m)
	}
}

// StoreImm is n-byte [m] = imm (sign-extended for n = 8).
func (a *Asm) StoreImm(n int, m Mem, imm int32) {
	switch n {
	case 1:
		a.rm(false, false, []byte{0xc6}, 0, m)
		a.B = append(a.B, byte(imm))
	case 2:
		a.B = append(a.B, 0x66)
		a.rm(false, false, []byte{0xc7}, 0, m)
		a.B = binary.LittleEndian.AppendUint16(a.B, uint16(imm))
	case 4:
		a.rm(false, false, []byte{0xc7}, 0, m)
		a.imm32(imm)
	default:
		a.rm(true, false, []byte{0xc7}, 0, m)
		a.imm32(imm)
	}
}

// Lea is dst = address of m.
func (a *Asm) Lea(w bool, dst Reg, m Mem) { a.rm(w, false, []byte{0x8d}, dst, m) }

// ImulRR is dst *= src.
func (a *Asm) ImulRR(w bool, dst, src Reg) { a.rr(w, false, []byte{0x0f, 0xaf}, dst, src) }

// ImulRRI is dst = src * imm.
func (a *Asm) ImulRRI(w bool, dst, src Reg, imm int32) {
	a.rr(w, false, []byte{0x69}, dst, src)
	a.imm32(imm)
}

// ShiftRI is dst shifted by imm.
func (a *Asm) ShiftRI(w bool, op Shift, dst Reg, imm uint8) {
	a.rr(w, false, []byte{0xc1}, Reg(op), dst)
	a.B = append(a.B, imm)
}

// ShiftRCL is dst shifted by cl.
func (a *Asm) ShiftRCL(w bool, op Shift, dst Reg) { a.rr(w, false, []byte{0xd3}, Reg(op), dst) }

// Neg is dst = -dst.
func (a *Asm) Neg(w bool, dst Reg) { a.rr(w, false, []byte{0xf7}, 3, dst) }

// Div is rdx:rax / src (unsigned, or signed if signed), quotient in rax,
// remainder in rdx.
func (a *Asm) Div(w, signed bool, src Reg) {
	d := Reg(6)
	if signed {
		d = 7
	}
	a.rr(w, false, []byte{0xf7}, d, src)
}

// MulRDX is rdx:rax = rax * rdx (unsigned).
func (a *Asm) MulRDX() { a.rr(true, false, []byte{0xf7}, 4, RDX) }

// SignExtendRAX is cqo (w) or cdq: rdx = the sign of rax (eax).
func (a *Asm) SignExtendRAX(w bool) {
	if w {
		a.B = append(a.B, 0x48)
	}
	a.B = append(a.B, 0x99)
}

// Movsx is dst = src's low n bytes (1, 2, 4) sign-extended to 64 bits (w)
// or 32 bits.
func (a *Asm) Movsx(w bool, n int, dst, src Reg) {
	switch n {
	case 1:
		a.rr(w, src >= RSP, []byte{0x0f, 0xbe}, dst, src)
	case 2:
		a.rr(w, false, []byte{0x0f, 0xbf}, dst, src)
	default:
		a.rr(true, false, []byte{0x63}, dst, src)
	}
}

// Movzx16 is dst = zero-extended low 16 bits of src.
func (a *Asm) Movzx16(dst, src Reg) { a.rr(false, false, []byte{0x0f, 0xb7}, dst, src) }

// Bswap reverses the bytes of the 32- or 64-bit register.
func (a *Asm) Bswap(w bool, r Reg) {
	a.rex(w, 0, 0, r, false)
	a.B = append(a.B, 0x0f, 0xc8|byte(r&7))
}

// Jmp jumps to l.
func (a *Asm) Jmp(l Label) {
	a.B = append(a.B, 0xe9)
	a.fixups = append(a.fixups, fixup{at: len(a.B), label: l})
	a.imm32(0)
}

// Jcc jumps to l if c.
func (a *Asm) Jcc(c Cond, l Label) {
	a.B = append(a.B, 0x0f, 0x80|byte(c))
	a.fixups = append(a.fixups, fixup{at: len(a.B), label: l})
	a.imm32(0)
}

// Call calls l (pushing the return address).
func (a *Asm) Call(l Label) {
	a.B = append(a.B, 0xe8)
	a.fixups = append(a.fixups, fixup{at: len(a.B), label: l})
	a.imm32(0)
}

// LeaLabel is dst = the address of l (lea dst, [rip+rel32]).
func (a *Asm) LeaLabel(dst Reg, l Label) {
	a.rex(true, dst, 0, 0, false)
	a.B = append(a.B, 0x8d, byte(dst&7)<<3|5)
	a.fixups = append(a.fixups, fixup{at: len(a.B), label: l})
	a.imm32(0)
}

// JmpR jumps to the address in r.
func (a *Asm) JmpR(r Reg) { a.rr(false, false, []byte{0xff}, 4, r) }

// JmpM jumps to the address stored at m.
func (a *Asm) JmpM(m Mem) { a.rm(false, false, []byte{0xff}, 4, m) }

// Ret returns.
func (a *Asm) Ret() { a.B = append(a.B, 0xc3) }

// Lock emits the lock prefix for the next instruction.
func (a *Asm) Lock() { a.B = append(a.B, 0xf0) }

// XaddMR is tmp = [m]; [m] += reg; reg = tmp (n = 4, 8).
func (a *Asm) XaddMR(w bool, m Mem, reg Reg) { a.rm(w, false, []byte{0x0f, 0xc1}, reg, m) }

// XchgMR swaps [m] and reg (implicitly locked).
func (a *Asm) XchgMR(w bool, m Mem, reg Reg) { a.rm(w, false, []byte{0x87}, reg, m) }

// CmpxchgMR is: if rax == [m] { [m] = reg } else { rax = [m] }.
func (a *Asm) CmpxchgMR(w bool, m Mem, reg Reg) { a.rm(w, false, []byte{0x0f, 0xb1}, reg, m) }
