package vm

import (
	"errors"
	"slices"
	"syscall"

	"github.com/cilium/ebpf/asm"
)

// MaxInsns is the longest program Load accepts (the kernel's
// BPF_COMPLEXITY_LIMIT_INSNS for privileged loaders).
const MaxInsns = 1 << 20

// CorePoisonedCall is the helper ID a CO-RE loader calls in place of an
// instruction whose relocation found no target (libbpf's and cilium/ebpf's
// 0xbad2310). The kernel's verifier refuses it only where it is reachable;
// Load accepts it and a run that reaches it ends in a FaultPoisoned.
const CorePoisonedCall = 0xbad2310

// Raw opcode fields (include/uapi/linux/bpf.h).
const (
	clsLD, clsLDX, clsST, clsSTX, clsALU, clsJMP, clsJMP32, clsALU64 = 0, 1, 2, 3, 4, 5, 6, 7

	modeIMM, modeABS, modeIND, modeMEM, modeMEMSX, modeATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xc0

	sizeW, sizeH, sizeB, sizeDW = 0x00, 0x08, 0x10, 0x18

	srcX = 0x08

	opJA, opCALL, opEXIT, opJCOND = 0x00, 0x80, 0x90, 0xe0

	aluDIV, aluNEG, aluMOD, aluMOV, aluEND = 0x30, 0x80, 0x90, 0xb0, 0xd0

	atomicFetch   = 0x01
	atomicXchg    = 0xe1
	atomicCmpxchg = 0xf1
	loadAcquire   = 0x100
	storeRelease  = 0x110

	pseudoMapFD, pseudoMapValue, pseudoBTFID, pseudoFunc, pseudoMapIdx, pseudoMapIdxValue = 1, 2, 3, 4, 5, 6
	pseudoCall, pseudoKfuncCall                                                           = 1, 2

	regFP = 10
)

// builder validates raw slots and lowers them. ops is indexed by raw slot
// while building (second halves of ld_imm64 stay kInvalid); jump and call
// targets are raw offsets until compact() renumbers them.
type builder struct {
	raw    []rawInsn
	opts   *Options
	as     *AddressSpace
	ops    []op
	second []bool // slot is the second half of an ld_imm64
	target []bool // slot has a jump/call target in ops[i].off
	starts []int  // subprogram entries
	funcs  map[int32]int32
}

func build(raw []rawInsn, opts Options) (*Program, error) {
	if len(raw) == 0 {
		return nil, invalid(0, 0, syscall.EINVAL, "empty program")
	}
	if len(raw) > MaxInsns {
		return nil, invalid(MaxInsns, raw[MaxInsns].index, syscall.E2BIG, "program has %d instructions, limit %d", len(raw), MaxInsns)
	}
	as := opts.AddressSpace
	if as == nil {
		as = NewAddressSpace()
	}
	b := &builder{
		raw:    raw,
		opts:   &opts,
		as:     as,
		ops:    make([]op, len(raw)),
		second: make([]bool, len(raw)),
		target: make([]bool, len(raw)),
		starts: []int{0},
		funcs:  make(map[int32]int32),
	}
	for i := 0; i < len(raw); i++ {
		if err := b.insn(i); err != nil {
			return nil, err
		}
		if i+1 < len(raw) && b.second[i+1] {
			i++
		}
	}
	if err := b.subprograms(); err != nil {
		return nil, err
	}
	return b.compact(), nil
}

func (b *builder) fail(i int, errno syscall.Errno, format string, args ...any) error {
	return invalid(i, b.raw[i].index, errno, format, args...)
}

// reg checks that r names r0-r10 and, for a written register, is not r10.
func (b *builder) reg(i int, r uint8, written bool) error {
	if r > regFP {
		return b.fail(i, syscall.EINVAL, "R%d is invalid", r)
	}
	if written && r == regFP {
		return b.fail(i, syscall.EACCES, "frame pointer is read only")
	}
	return nil
}

// regs checks dst (written or not) and src.
func (b *builder) regs(i int, ins rawInsn, dstWritten bool) error {
	if err := b.reg(i, ins.dst, dstWritten); err != nil {
		return err
	}
	return b.reg(i, ins.src, false)
}

func (b *builder) unknown(i int) error {
	return b.fail(i, syscall.EINVAL, "unknown opcode %#02x", b.raw[i].code)
}

func (b *builder) reserved(i int) error {
	return b.fail(i, syscall.EINVAL, "opcode %#02x uses reserved fields", b.raw[i].code)
}

// jumpTo records a jump or call target relative to slot i.
func (b *builder) jumpTo(i int, delta int64) {
	b.ops[i].off = int32(int64(i) + 1 + delta)
	b.target[i] = true
}

// insn validates and lowers slot i.
func (b *builder) insn(i int) error {
	ins := b.raw[i]
	switch ins.code & 7 {
	case clsALU, clsALU64:
		return b.alu(i, ins)
	case clsJMP, clsJMP32:
		return b.jmp(i, ins)
	case clsLD:
		return b.ld(i, ins)
	default:
		return b.mem(i, ins)
	}
}

func (b *builder) ld(i int, ins rawInsn) error {
	if ins.code == clsLD|modeIMM|sizeDW {
		return b.ldImm64(i, ins)
	}
	mode, size := ins.code&0xe0, ins.code&0x18
	if (mode != modeABS && mode != modeIND) || size == sizeDW {
		return b.unknown(i)
	}
	if ins.dst != 0 || ins.off != 0 || (mode == modeABS && ins.src != 0) {
		return b.fail(i, syscall.EINVAL, "BPF_LD_[ABS|IND] uses reserved fields")
	}
	if err := b.reg(i, ins.src, false); err != nil {
		return err
	}
	kind := map[uint8]uint8{sizeB: kLdAbsB, sizeH: kLdAbsH, sizeW: kLdAbsW}[size]
	if mode == modeIND {
		kind += kLdIndB - kLdAbsB
	}
	b.ops[i] = op{kind: kind, src: ins.src, off: ins.imm}
	return nil
}

func (b *builder) ldImm64(i int, ins rawInsn) error {
	if i+1 >= len(b.raw) {
		return b.fail(i, syscall.EINVAL, "invalid bpf_ld_imm64 insn: missing second half")
	}
	hi := b.raw[i+1]
	if hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0 {
		return b.fail(i, syscall.EINVAL, "invalid bpf_ld_imm64 insn: second half has non-zero fields")
	}
	if ins.off != 0 {
		return b.reserved(i)
	}
	if err := b.reg(i, ins.dst, true); err != nil {
		return err
	}
	b.second[i+1] = true
	var v uint64
	switch ins.src {
	case 0:
		v = uint64(uint32(ins.imm)) | uint64(uint32(hi.imm))<<32
	case pseudoMapFD, pseudoMapIdx, pseudoMapValue, pseudoMapIdxValue:
		ref := MapRef{Insn: i, Name: ins.ref, Pseudo: ins.src, ID: ins.imm}
		if ref.Value() {
			ref.Offset = uint32(hi.imm)
		} else if hi.imm != 0 {
			return b.fail(i, syscall.EINVAL, "unrecognized bpf_ld_imm64 insn: map reference with high immediate %d", hi.imm)
		}
		var err error
		if v, err = b.resolveMap(i, ref); err != nil {
			return err
		}
	case pseudoFunc:
		if hi.imm != 0 {
			return b.fail(i, syscall.EINVAL, "invalid bpf_ld_imm64 insn: function pointer with high immediate %d", hi.imm)
		}
		t := int64(i) + 1 + int64(ins.imm)
		if err := b.entry(i, t); err != nil {
			return err
		}
		v = FuncAddr(int(t))
		b.funcs[int32(t)] = int32(t) // renumbered by compact
	case pseudoBTFID:
		return b.fail(i, syscall.EINVAL, "ld_imm64 of a kernel symbol (src 3) is not supported")
	default:
		return b.fail(i, syscall.EINVAL, "invalid bpf_ld_imm64 src %d", ins.src)
	}
	b.ops[i] = op{kind: kMov64Imm, dst: ins.dst, imm: v}
	return nil
}

func (b *builder) resolveMap(i int, ref MapRef) (uint64, error) {
	if b.opts.Maps == nil {
		return 0, b.fail(i, syscall.EBADF, "map reference %s (pseudo %d, id %d) without a map resolver", ref.Name, ref.Pseudo, ref.ID)
	}
	v, err := b.opts.Maps(ref)
	if err != nil {
		errno := syscall.EBADF
		errors.As(err, &errno)
		return 0, b.fail(i, errno, "bad map reference %q (pseudo %d, id %d): %v", ref.Name, ref.Pseudo, ref.ID, err)
	}
	if ref.Value() {
		r, ok := b.as.lookup(v)
		if !ok || uint32(v) >= r.hi {
			return 0, b.fail(i, syscall.EINVAL, "map value reference %q resolves to %#x, which is not mapped", ref.Name, v)
		}
	}
	return v, nil
}

// entry checks that t can start a subprogram and records it.
func (b *builder) entry(i int, t int64) error {
	if t < 0 || t >= int64(len(b.raw)) {
		return b.fail(i, syscall.EINVAL, "call or function pointer out of range to %d", t)
	}
	if !slices.Contains(b.starts, int(t)) {
		b.starts = append(b.starts, int(t))
	}
	return nil
}

var (
	aluImm64 = [16]uint8{kAdd64Imm, kSub64Imm, kMul64Imm, kDiv64Imm, kOr64Imm, kAnd64Imm, kLsh64Imm, kRsh64Imm,
		0, kMod64Imm, kXor64Imm, kMov64Imm, kArsh64Imm}
	aluReg64 = [16]uint8{kAdd64Reg, kSub64Reg, kMul64Reg, kDiv64Reg, kOr64Reg, kAnd64Reg, kLsh64Reg, kRsh64Reg,
		0, kMod64Reg, kXor64Reg, kMov64Reg, kArsh64Reg}
	aluImm32 = [16]uint8{kAdd32Imm, kSub32Imm, kMul32Imm, kDiv32Imm, kOr32Imm, kAnd32Imm, kLsh32Imm, kRsh32Imm,
		0, kMod32Imm, kXor32Imm, kMov32Imm, kArsh32Imm}
	aluReg32 = [16]uint8{kAdd32Reg, kSub32Reg, kMul32Reg, kDiv32Reg, kOr32Reg, kAnd32Reg, kLsh32Reg, kRsh32Reg,
		0, kMod32Reg, kXor32Reg, kMov32Reg, kArsh32Reg}
)

func (b *builder) alu(i int, ins rawInsn) error {
	is64 := ins.code&7 == clsALU64
	opc := ins.code & 0xf0
	x := ins.code&srcX != 0
	switch {
	case opc > aluEND:
		return b.unknown(i)
	case opc == aluNEG:
		if x || ins.src != 0 || ins.off != 0 || ins.imm != 0 {
			return b.fail(i, syscall.EINVAL, "BPF_NEG uses reserved fields")
		}
	case opc == aluEND:
		if ins.src != 0 || ins.off != 0 || (ins.imm != 16 && ins.imm != 32 && ins.imm != 64) || (is64 && x) {
			return b.fail(i, syscall.EINVAL, "BPF_END uses reserved fields")
		}
	case opc == aluMOV && x:
		if ins.imm != 0 || !(ins.off == 0 || ins.off == 8 || ins.off == 16 || (is64 && ins.off == 32)) {
			return b.fail(i, syscall.EINVAL, "BPF_MOV uses reserved fields")
		}
	case opc == aluMOV:
		if ins.src != 0 || ins.off != 0 {
			return b.fail(i, syscall.EINVAL, "BPF_MOV uses reserved fields")
		}
	default:
		if (x && ins.imm != 0) || (!x && ins.src != 0) ||
			(ins.off != 0 && (ins.off != 1 || (opc != aluDIV && opc != aluMOD))) {
			return b.fail(i, syscall.EINVAL, "BPF_ALU uses reserved fields")
		}
	}
	if err := b.regs(i, ins, true); err != nil {
		return err
	}
	o := op{dst: ins.dst, src: ins.src}
	o.kind, o.imm = lowerALU(is64, opc, x, ins)
	if o.kind == kMov32Reg && !x {
		o.src = o.dst // mod32 by constant zero: zero-extend dst in place
	}
	b.ops[i] = o
	return nil
}

// lowerALU picks the specialised kind for a validated ALU instruction and
// pre-computes its immediate.
func lowerALU(is64 bool, opc uint8, x bool, ins rawInsn) (uint8, uint64) {
	imm64, imm32 := uint64(int64(ins.imm)), uint64(uint32(ins.imm))
	signed := ins.off == 1
	switch opc {
	case aluNEG:
		return pick(is64, kNeg64, kNeg32), 0
	case aluEND:
		switch {
		case is64 || ins.code&srcX != 0: // bswap, or to big endian
			return map[int32]uint8{16: kSwap16, 32: kSwap32, 64: kSwap64}[ins.imm], 0
		default: // to little endian on a little-endian machine: truncate
			return map[int32]uint8{16: kZext16, 32: kZext32, 64: kNop}[ins.imm], 0
		}
	}
	if x {
		if opc == aluMOV && ins.off != 0 {
			if is64 {
				return map[int16]uint8{8: kMovSX8To64, 16: kMovSX16To64, 32: kMovSX32To64}[ins.off], 0
			}
			return map[int16]uint8{8: kMovSX8To32, 16: kMovSX16To32}[ins.off], 0
		}
		k := pick(is64, aluReg64[opc>>4], aluReg32[opc>>4])
		if signed {
			k++ // kSDiv*/kSMod* follow kDiv*/kMod*
		}
		return k, 0
	}
	// Division by a constant zero has a fixed result (RFC 9669, the
	// kernel's fixups): div gives 0, mod leaves dst (zero-extended for ALU32).
	if ins.imm == 0 && (opc == aluDIV || opc == aluMOD) {
		switch {
		case opc == aluDIV:
			return pick(is64, kMov64Imm, kMov32Imm), 0
		case is64:
			return kNop, 0
		default:
			return kMov32Reg, 0 // src = dst: zero-extends
		}
	}
	k := pick(is64, aluImm64[opc>>4], aluImm32[opc>>4])
	if signed {
		k++
	}
	switch {
	case opc == 0x60 || opc == 0x70 || opc == 0xc0: // shifts: mask the amount
		return k, pickU(is64, imm64&63, imm32&31)
	case is64:
		return k, imm64
	default:
		return k, imm32
	}
}

func pick(is64 bool, a, b uint8) uint8 {
	if is64 {
		return a
	}
	return b
}

func pickU(is64 bool, a, b uint64) uint64 {
	if is64 {
		return a
	}
	return b
}

var (
	jmpImm = [16]uint8{0, kJeqImm, kJgtImm, kJgeImm, kJsetImm, kJneImm, kJsgtImm, kJsgeImm, 0, 0, kJltImm, kJleImm, kJsltImm, kJsleImm}
	jmpReg = [16]uint8{0, kJeqReg, kJgtReg, kJgeReg, kJsetReg, kJneReg, kJsgtReg, kJsgeReg, 0, 0, kJltReg, kJleReg, kJsltReg, kJsleReg}
	j32Imm = [16]uint8{0, kJeq32Imm, kJgt32Imm, kJge32Imm, kJset32Imm, kJne32Imm, kJsgt32Imm, kJsge32Imm, 0, 0, kJlt32Imm, kJle32Imm, kJslt32Imm, kJsle32Imm}
	j32Reg = [16]uint8{0, kJeq32Reg, kJgt32Reg, kJge32Reg, kJset32Reg, kJne32Reg, kJsgt32Reg, kJsge32Reg, 0, 0, kJlt32Reg, kJle32Reg, kJslt32Reg, kJsle32Reg}
)

func (b *builder) jmp(i int, ins rawInsn) error {
	is32 := ins.code&7 == clsJMP32
	opc := ins.code & 0xf0
	x := ins.code&srcX != 0
	switch opc {
	case opJA:
		if x || ins.src != 0 || ins.dst != 0 || (!is32 && ins.imm != 0) || (is32 && ins.off != 0) {
			return b.fail(i, syscall.EINVAL, "BPF_JA uses reserved fields")
		}
		b.ops[i] = op{kind: kJa}
		if is32 {
			b.jumpTo(i, int64(ins.imm))
		} else {
			b.jumpTo(i, int64(ins.off))
		}
		return nil
	case opCALL:
		if is32 {
			return b.unknown(i)
		}
		return b.call(i, ins, x)
	case opEXIT:
		if is32 || x || ins.imm != 0 || ins.src != 0 || ins.dst != 0 {
			return b.fail(i, syscall.EINVAL, "BPF_EXIT uses reserved fields")
		}
		b.ops[i] = op{kind: kExit}
		return nil
	case opJCOND:
		if is32 || x || ins.src != 0 || ins.dst != 0 || ins.imm != 0 {
			return b.fail(i, syscall.EINVAL, "invalid may_goto")
		}
		b.ops[i] = op{kind: kMayGoto}
		b.jumpTo(i, int64(ins.off))
		return nil
	}
	var kind uint8
	switch {
	case is32 && x:
		kind = j32Reg[opc>>4]
	case is32:
		kind = j32Imm[opc>>4]
	case x:
		kind = jmpReg[opc>>4]
	default:
		kind = jmpImm[opc>>4]
	}
	if kind == 0 {
		return b.unknown(i)
	}
	if (x && ins.imm != 0) || (!x && ins.src != 0) {
		return b.fail(i, syscall.EINVAL, "BPF_JMP/JMP32 uses reserved fields")
	}
	if err := b.regs(i, ins, false); err != nil {
		return err
	}
	imm := uint64(int64(ins.imm))
	if is32 {
		imm = uint64(uint32(ins.imm))
	}
	b.ops[i] = op{kind: kind, dst: ins.dst, src: ins.src, imm: imm}
	b.jumpTo(i, int64(ins.off))
	return nil
}

func (b *builder) call(i int, ins rawInsn, x bool) error {
	if x {
		if !b.opts.AllowCallx {
			return b.fail(i, syscall.EINVAL, "call through a register (callx) is not supported")
		}
		if ins.src != 0 || ins.off != 0 || ins.imm != 0 {
			return b.fail(i, syscall.EINVAL, "BPF_CALL uses reserved fields")
		}
		if err := b.reg(i, ins.dst, false); err != nil {
			return err
		}
		b.ops[i] = op{kind: kCallx, dst: ins.dst}
		return nil
	}
	if ins.dst != 0 || (ins.src != pseudoKfuncCall && ins.off != 0) {
		return b.fail(i, syscall.EINVAL, "BPF_CALL uses reserved fields")
	}
	switch ins.src {
	case 0:
		id := ins.imm
		if id == CorePoisonedCall {
			b.ops[i] = op{kind: kPoisoned}
			return nil
		}
		if id < 0 || int(id) >= len(b.opts.Helpers) || b.opts.Helpers[id] == nil {
			return b.fail(i, syscall.EINVAL, "unknown helper %s (%d)", asm.BuiltinFunc(uint32(id)), id)
		}
		b.ops[i] = op{kind: kCallHelper, off: id}
	case pseudoCall:
		b.ops[i] = op{kind: kCall}
		b.jumpTo(i, int64(ins.imm))
		if err := b.entry(i, int64(b.ops[i].off)); err != nil {
			return err
		}
	case pseudoKfuncCall:
		return b.fail(i, syscall.EINVAL, "kfunc calls are not supported")
	default:
		return b.fail(i, syscall.EINVAL, "BPF_CALL uses reserved fields")
	}
	return nil
}

var (
	ldxKinds = map[uint8]uint8{sizeB: kLdxB, sizeH: kLdxH, sizeW: kLdxW, sizeDW: kLdxDW}
	ldsKinds = map[uint8]uint8{sizeB: kLdxSB, sizeH: kLdxSH, sizeW: kLdxSW}
	stKinds  = map[uint8]uint8{sizeB: kStB, sizeH: kStH, sizeW: kStW, sizeDW: kStDW}
	stxKinds = map[uint8]uint8{sizeB: kStxB, sizeH: kStxH, sizeW: kStxW, sizeDW: kStxDW}
)

// mem validates and lowers LDX, ST and STX (including atomics).
func (b *builder) mem(i int, ins rawInsn) error {
	cls, mode, size := ins.code&7, ins.code&0xe0, ins.code&0x18
	o := op{dst: ins.dst, src: ins.src, off: int32(ins.off)}
	switch {
	case cls == clsLDX && (mode == modeMEM || (mode == modeMEMSX && size != sizeDW)):
		if ins.imm != 0 {
			return b.fail(i, syscall.EINVAL, "BPF_LDX uses reserved fields")
		}
		if err := b.regs(i, ins, true); err != nil {
			return err
		}
		o.kind = ldxKinds[size]
		if mode == modeMEMSX {
			o.kind = ldsKinds[size]
		}
	case cls == clsST && mode == modeMEM:
		if ins.src != 0 {
			return b.fail(i, syscall.EINVAL, "BPF_ST uses reserved fields")
		}
		if err := b.reg(i, ins.dst, false); err != nil {
			return err
		}
		o.kind, o.imm = stKinds[size], uint64(int64(ins.imm))
	case cls == clsSTX && mode == modeMEM:
		if ins.imm != 0 {
			return b.fail(i, syscall.EINVAL, "BPF_STX uses reserved fields")
		}
		if err := b.regs(i, ins, false); err != nil {
			return err
		}
		o.kind = stxKinds[size]
	case cls == clsSTX && mode == modeATOMIC:
		return b.atomic(i, ins, size, o)
	default:
		return b.unknown(i)
	}
	b.ops[i] = o
	return nil
}

func (b *builder) atomic(i int, ins rawInsn, size uint8, o op) error {
	switch a := ins.imm; {
	case a == loadAcquire: // dst = *(src + off), acquire: plain loads are, here
		if err := b.regs(i, ins, true); err != nil {
			return err
		}
		o.kind = ldxKinds[size]
	case a == storeRelease: // *(dst + off) = src
		if err := b.regs(i, ins, false); err != nil {
			return err
		}
		o.kind = stxKinds[size]
	case size != sizeW && size != sizeDW:
		return b.fail(i, syscall.EINVAL, "invalid atomic operand size")
	case a == 0x00 || a == 0x40 || a == 0x50 || a == 0xa0 ||
		a == 0x01 || a == 0x41 || a == 0x51 || a == 0xa1 || a == atomicXchg || a == atomicCmpxchg:
		if err := b.regs(i, ins, false); err != nil {
			return err
		}
		if a&atomicFetch != 0 && a != atomicCmpxchg {
			if err := b.reg(i, ins.src, true); err != nil {
				return err
			}
		}
		o.kind, o.imm = pick(size == sizeDW, kAtomic64, kAtomic32), uint64(a)
	default:
		return b.fail(i, syscall.EINVAL, "BPF_ATOMIC uses invalid atomic opcode %#02x", a)
	}
	b.ops[i] = o
	return nil
}
