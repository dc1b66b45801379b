package vm

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/cilium/ebpf/asm"
)

// exec interprets p from op pc until an exit at frame depth base, and
// returns r0. It is the only dispatch loop: one switch over dense op kinds,
// operands pre-decoded, registers indexed by uint8 (no bounds checks).
//
// Instruction counting costs one add per taken jump: steps executed so far
// is always acc+pc, because a straight-line stretch advances pc by one per
// instruction and every jump from pc to t adds pc-t to acc.
func (m *Machine) exec(p *Program, pc int, base int) (uint64, error) {
	// The current program lives in m.prog only (it changes at tail calls
	// and returns), so the fast path carries just code, pc and acc.
	m.prog = p
	code := p.code
	regs := &m.regs
	limit := math.MaxInt
	if m.limit != 0 && m.limit < math.MaxInt {
		limit = int(m.limit)
	}
	acc := m.steps - pc
	for {
		o := &code[pc]
		pc++
		switch o.kind {
		case kAdd64Imm:
			regs[o.dst] += o.imm
		case kAdd64Reg:
			regs[o.dst] += regs[o.src]
		case kAdd32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) + uint32(o.imm))
		case kAdd32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) + uint32(regs[o.src]))
		case kSub64Imm:
			regs[o.dst] -= o.imm
		case kSub64Reg:
			regs[o.dst] -= regs[o.src]
		case kSub32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) - uint32(o.imm))
		case kSub32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) - uint32(regs[o.src]))
		case kMul64Imm:
			regs[o.dst] *= o.imm
		case kMul64Reg:
			regs[o.dst] *= regs[o.src]
		case kMul32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) * uint32(o.imm))
		case kMul32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) * uint32(regs[o.src]))
		case kOr64Imm:
			regs[o.dst] |= o.imm
		case kOr64Reg:
			regs[o.dst] |= regs[o.src]
		case kOr32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) | uint32(o.imm))
		case kOr32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) | uint32(regs[o.src]))
		case kAnd64Imm:
			regs[o.dst] &= o.imm
		case kAnd64Reg:
			regs[o.dst] &= regs[o.src]
		case kAnd32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) & uint32(o.imm))
		case kAnd32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) & uint32(regs[o.src]))
		case kXor64Imm:
			regs[o.dst] ^= o.imm
		case kXor64Reg:
			regs[o.dst] ^= regs[o.src]
		case kXor32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) ^ uint32(o.imm))
		case kXor32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) ^ uint32(regs[o.src]))
		case kMov64Imm, kMov32Imm:
			regs[o.dst] = o.imm
		case kMov64Reg:
			regs[o.dst] = regs[o.src]
		case kMov32Reg:
			regs[o.dst] = uint64(uint32(regs[o.src]))
		case kLsh64Imm:
			regs[o.dst] <<= o.imm
		case kLsh64Reg:
			regs[o.dst] <<= regs[o.src] & 63
		case kRsh64Imm:
			regs[o.dst] >>= o.imm
		case kRsh64Reg:
			regs[o.dst] >>= regs[o.src] & 63
		case kArsh64Imm:
			regs[o.dst] = uint64(int64(regs[o.dst]) >> o.imm)
		case kArsh64Reg:
			regs[o.dst] = uint64(int64(regs[o.dst]) >> (regs[o.src] & 63))
		case kLsh32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) << o.imm)
		case kLsh32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) << (regs[o.src] & 31))
		case kRsh32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) >> o.imm)
		case kRsh32Reg:
			regs[o.dst] = uint64(uint32(regs[o.dst]) >> (regs[o.src] & 31))
		case kArsh32Imm:
			regs[o.dst] = uint64(uint32(int32(regs[o.dst]) >> o.imm))
		case kArsh32Reg:
			regs[o.dst] = uint64(uint32(int32(regs[o.dst]) >> (regs[o.src] & 31)))
		case kNeg64:
			regs[o.dst] = -regs[o.dst]
		case kNeg32:
			regs[o.dst] = uint64(-uint32(regs[o.dst]))

		// Division: by zero gives 0, modulo by zero leaves dst (ALU32:
		// zero-extended); Go's signed division already gives INT_MIN/-1 =
		// INT_MIN and INT_MIN%-1 = 0, as the kernel does.
		case kDiv64Imm:
			regs[o.dst] /= o.imm
		case kSDiv64Imm:
			regs[o.dst] = uint64(int64(regs[o.dst]) / int64(o.imm))
		case kMod64Imm:
			regs[o.dst] %= o.imm
		case kSMod64Imm:
			regs[o.dst] = uint64(int64(regs[o.dst]) % int64(o.imm))
		case kDiv32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) / uint32(o.imm))
		case kSDiv32Imm:
			regs[o.dst] = uint64(uint32(int32(regs[o.dst]) / int32(o.imm)))
		case kMod32Imm:
			regs[o.dst] = uint64(uint32(regs[o.dst]) % uint32(o.imm))
		case kSMod32Imm:
			regs[o.dst] = uint64(uint32(int32(regs[o.dst]) % int32(o.imm)))
		case kDiv64Reg:
			if s := regs[o.src]; s != 0 {
				regs[o.dst] /= s
			} else {
				regs[o.dst] = 0
			}
		case kSDiv64Reg:
			if s := int64(regs[o.src]); s != 0 {
				regs[o.dst] = uint64(int64(regs[o.dst]) / s)
			} else {
				regs[o.dst] = 0
			}
		case kMod64Reg:
			if s := regs[o.src]; s != 0 {
				regs[o.dst] %= s
			}
		case kSMod64Reg:
			if s := int64(regs[o.src]); s != 0 {
				regs[o.dst] = uint64(int64(regs[o.dst]) % s)
			}
		case kDiv32Reg:
			if s := uint32(regs[o.src]); s != 0 {
				regs[o.dst] = uint64(uint32(regs[o.dst]) / s)
			} else {
				regs[o.dst] = 0
			}
		case kSDiv32Reg:
			if s := int32(regs[o.src]); s != 0 {
				regs[o.dst] = uint64(uint32(int32(regs[o.dst]) / s))
			} else {
				regs[o.dst] = 0
			}
		case kMod32Reg:
			if s := uint32(regs[o.src]); s != 0 {
				regs[o.dst] = uint64(uint32(regs[o.dst]) % s)
			} else {
				regs[o.dst] = uint64(uint32(regs[o.dst]))
			}
		case kSMod32Reg:
			if s := int32(regs[o.src]); s != 0 {
				regs[o.dst] = uint64(uint32(int32(regs[o.dst]) % s))
			} else {
				regs[o.dst] = uint64(uint32(regs[o.dst]))
			}

		case kMovSX8To64:
			regs[o.dst] = uint64(int64(int8(regs[o.src])))
		case kMovSX16To64:
			regs[o.dst] = uint64(int64(int16(regs[o.src])))
		case kMovSX32To64:
			regs[o.dst] = uint64(int64(int32(regs[o.src])))
		case kMovSX8To32:
			regs[o.dst] = uint64(uint32(int32(int8(regs[o.src]))))
		case kMovSX16To32:
			regs[o.dst] = uint64(uint32(int32(int16(regs[o.src]))))

		case kZext16:
			regs[o.dst] = uint64(uint16(regs[o.dst]))
		case kZext32:
			regs[o.dst] = uint64(uint32(regs[o.dst]))
		case kSwap16:
			regs[o.dst] = uint64(bits.ReverseBytes16(uint16(regs[o.dst])))
		case kSwap32:
			regs[o.dst] = uint64(bits.ReverseBytes32(uint32(regs[o.dst])))
		case kSwap64:
			regs[o.dst] = bits.ReverseBytes64(regs[o.dst])
		case kNop:

		case kJa:
			goto jump
		case kJeqImm:
			if regs[o.dst] == o.imm {
				goto jump
			}
		case kJeqReg:
			if regs[o.dst] == regs[o.src] {
				goto jump
			}
		case kJeq32Imm:
			if uint32(regs[o.dst]) == uint32(o.imm) {
				goto jump
			}
		case kJeq32Reg:
			if uint32(regs[o.dst]) == uint32(regs[o.src]) {
				goto jump
			}
		case kJneImm:
			if regs[o.dst] != o.imm {
				goto jump
			}
		case kJneReg:
			if regs[o.dst] != regs[o.src] {
				goto jump
			}
		case kJne32Imm:
			if uint32(regs[o.dst]) != uint32(o.imm) {
				goto jump
			}
		case kJne32Reg:
			if uint32(regs[o.dst]) != uint32(regs[o.src]) {
				goto jump
			}
		case kJgtImm:
			if regs[o.dst] > o.imm {
				goto jump
			}
		case kJgtReg:
			if regs[o.dst] > regs[o.src] {
				goto jump
			}
		case kJgt32Imm:
			if uint32(regs[o.dst]) > uint32(o.imm) {
				goto jump
			}
		case kJgt32Reg:
			if uint32(regs[o.dst]) > uint32(regs[o.src]) {
				goto jump
			}
		case kJgeImm:
			if regs[o.dst] >= o.imm {
				goto jump
			}
		case kJgeReg:
			if regs[o.dst] >= regs[o.src] {
				goto jump
			}
		case kJge32Imm:
			if uint32(regs[o.dst]) >= uint32(o.imm) {
				goto jump
			}
		case kJge32Reg:
			if uint32(regs[o.dst]) >= uint32(regs[o.src]) {
				goto jump
			}
		case kJltImm:
			if regs[o.dst] < o.imm {
				goto jump
			}
		case kJltReg:
			if regs[o.dst] < regs[o.src] {
				goto jump
			}
		case kJlt32Imm:
			if uint32(regs[o.dst]) < uint32(o.imm) {
				goto jump
			}
		case kJlt32Reg:
			if uint32(regs[o.dst]) < uint32(regs[o.src]) {
				goto jump
			}
		case kJleImm:
			if regs[o.dst] <= o.imm {
				goto jump
			}
		case kJleReg:
			if regs[o.dst] <= regs[o.src] {
				goto jump
			}
		case kJle32Imm:
			if uint32(regs[o.dst]) <= uint32(o.imm) {
				goto jump
			}
		case kJle32Reg:
			if uint32(regs[o.dst]) <= uint32(regs[o.src]) {
				goto jump
			}
		case kJsgtImm:
			if int64(regs[o.dst]) > int64(o.imm) {
				goto jump
			}
		case kJsgtReg:
			if int64(regs[o.dst]) > int64(regs[o.src]) {
				goto jump
			}
		case kJsgt32Imm:
			if int32(regs[o.dst]) > int32(o.imm) {
				goto jump
			}
		case kJsgt32Reg:
			if int32(regs[o.dst]) > int32(regs[o.src]) {
				goto jump
			}
		case kJsgeImm:
			if int64(regs[o.dst]) >= int64(o.imm) {
				goto jump
			}
		case kJsgeReg:
			if int64(regs[o.dst]) >= int64(regs[o.src]) {
				goto jump
			}
		case kJsge32Imm:
			if int32(regs[o.dst]) >= int32(o.imm) {
				goto jump
			}
		case kJsge32Reg:
			if int32(regs[o.dst]) >= int32(regs[o.src]) {
				goto jump
			}
		case kJsltImm:
			if int64(regs[o.dst]) < int64(o.imm) {
				goto jump
			}
		case kJsltReg:
			if int64(regs[o.dst]) < int64(regs[o.src]) {
				goto jump
			}
		case kJslt32Imm:
			if int32(regs[o.dst]) < int32(o.imm) {
				goto jump
			}
		case kJslt32Reg:
			if int32(regs[o.dst]) < int32(regs[o.src]) {
				goto jump
			}
		case kJsleImm:
			if int64(regs[o.dst]) <= int64(o.imm) {
				goto jump
			}
		case kJsleReg:
			if int64(regs[o.dst]) <= int64(regs[o.src]) {
				goto jump
			}
		case kJsle32Imm:
			if int32(regs[o.dst]) <= int32(o.imm) {
				goto jump
			}
		case kJsle32Reg:
			if int32(regs[o.dst]) <= int32(regs[o.src]) {
				goto jump
			}
		case kJsetImm:
			if regs[o.dst]&o.imm != 0 {
				goto jump
			}
		case kJset32Imm:
			if uint32(regs[o.dst])&uint32(o.imm) != 0 {
				goto jump
			}
		case kJsetReg:
			if regs[o.dst]&regs[o.src] != 0 {
				goto jump
			}
		case kJset32Reg:
			if uint32(regs[o.dst])&uint32(regs[o.src]) != 0 {
				goto jump
			}
		case kMayGoto:
			if m.mayGoto == 0 {
				goto jump
			}
			m.mayGoto--

		default:
			goto slow
		}
		continue
	jump:
		acc += pc - int(o.off)
		pc = int(o.off)
		if acc+pc <= limit {
			continue
		}
		m.steps = acc + pc
		return 0, &LimitError{PC: int(m.prog.insn[pc]), Limit: m.limit, Executed: uint64(acc + pc)}

		// Everything that may call a function lives below, in one block
		// that the fast cases never pass through: Go's register allocator
		// then spills the loop state here instead of on every instruction.
	slow:
		var err error
		switch o.kind {
		case kLdxB, kLdxSB:
			a := regs[o.src] + uint64(int64(o.off))
			var v uint64
			if b := m.access(a, 1, permRead); b != nil {
				v = uint64(b[0])
			} else if v, err = m.loadSlow(a, 1, pc-1); err != nil {
				return 0, err
			}
			if o.kind == kLdxSB {
				v = uint64(int64(int8(v)))
			}
			regs[o.dst] = v
		case kLdxH, kLdxSH:
			a := regs[o.src] + uint64(int64(o.off))
			var v uint64
			if b := m.access(a, 2, permRead); b != nil {
				v = uint64(binary.LittleEndian.Uint16(b))
			} else if v, err = m.loadSlow(a, 2, pc-1); err != nil {
				return 0, err
			}
			if o.kind == kLdxSH {
				v = uint64(int64(int16(v)))
			}
			regs[o.dst] = v
		case kLdxW, kLdxSW:
			a := regs[o.src] + uint64(int64(o.off))
			var v uint64
			if b := m.access(a, 4, permRead); b != nil {
				v = uint64(binary.LittleEndian.Uint32(b))
			} else if v, err = m.loadSlow(a, 4, pc-1); err != nil {
				return 0, err
			}
			if o.kind == kLdxSW {
				v = uint64(int64(int32(v)))
			}
			regs[o.dst] = v
		case kLdxDW:
			a := regs[o.src] + uint64(int64(o.off))
			var v uint64
			if b := m.access(a, 8, permRead); b != nil {
				v = binary.LittleEndian.Uint64(b)
			} else if v, err = m.loadSlow(a, 8, pc-1); err != nil {
				return 0, err
			}
			regs[o.dst] = v

		case kStB, kStxB:
			a := regs[o.dst] + uint64(int64(o.off))
			v := o.imm
			if o.kind == kStxB {
				v = regs[o.src]
			}
			if b := m.access(a, 1, permRead|permWrite); b != nil {
				b[0] = byte(v)
			} else if err = m.storeSlow(a, 1, v, pc-1); err != nil {
				return 0, err
			}
		case kStH, kStxH:
			a := regs[o.dst] + uint64(int64(o.off))
			v := o.imm
			if o.kind == kStxH {
				v = regs[o.src]
			}
			if b := m.access(a, 2, permRead|permWrite); b != nil {
				binary.LittleEndian.PutUint16(b, uint16(v))
			} else if err = m.storeSlow(a, 2, v, pc-1); err != nil {
				return 0, err
			}
		case kStW, kStxW:
			a := regs[o.dst] + uint64(int64(o.off))
			v := o.imm
			if o.kind == kStxW {
				v = regs[o.src]
			}
			if b := m.access(a, 4, permRead|permWrite); b != nil {
				binary.LittleEndian.PutUint32(b, uint32(v))
			} else if err = m.storeSlow(a, 4, v, pc-1); err != nil {
				return 0, err
			}
		case kStDW, kStxDW:
			a := regs[o.dst] + uint64(int64(o.off))
			v := o.imm
			if o.kind == kStxDW {
				v = regs[o.src]
			}
			if b := m.access(a, 8, permRead|permWrite); b != nil {
				binary.LittleEndian.PutUint64(b, v)
			} else if err = m.storeSlow(a, 8, v, pc-1); err != nil {
				return 0, err
			}

		case kAtomic32, kAtomic64:
			n := uint32(4)
			if o.kind == kAtomic64 {
				n = 8
			}
			const need = permRead | permWrite | permAtomic
			a := regs[o.dst] + uint64(int64(o.off))
			b := m.access(a, n, need)
			if b == nil {
				return 0, m.memFault(m.prog, pc-1, a, n, need)
			}
			if a&uint64(n-1) != 0 || !aligned(b, n) {
				return 0, m.fault(m.prog, pc-1, FaultMisaligned, a, n, need)
			}
			atomicOp(o, b, regs, n)

		case kLdAbsB, kLdAbsH, kLdAbsW, kLdIndB, kLdIndH, kLdIndW:
			off := int64(o.off)
			if o.kind >= kLdIndB {
				off = int64(int32(uint32(regs[o.src]) + uint32(o.off)))
			}
			size := int64(1) << ((o.kind - kLdAbsB) % 3)
			v, ok := m.ldAbs(off, size)
			if !ok { // the kernel's bpf_gen_ld_abs: end the program, r0 = 0
				m.steps = acc + pc
				m.exitR0 = 0
				m.pending |= pendExit | pendExitDone
				return 0, errExit
			}
			regs[0] = v

		case kCall:
			if m.depth+1-m.progBase >= MaxFrames || m.depth+1 >= len(m.frames) {
				return 0, m.fault(m.prog, pc-1, FaultCallDepth, uint64(o.off), 0, 0)
			}
			f := &m.frames[m.depth]
			f.ret, f.prog, f.progBase, f.retAddr = int32(pc), m.prog, m.progBase, 0
			f.saved = [4]uint64{regs[6], regs[7], regs[8], regs[9]}
			m.enterFrame(m.depth + 1)
			goto jump

		case kExit:
			if m.depth == base {
				m.steps = acc + pc
				return regs[0], nil
			}
			m.setFrame(m.depth - 1)
			f := &m.frames[m.depth]
			regs[6], regs[7], regs[8], regs[9] = f.saved[0], f.saved[1], f.saved[2], f.saved[3]
			acc += pc - int(f.ret)
			pc = int(f.ret)
			m.progBase = f.progBase
			if f.prog != m.prog {
				m.prog, code = f.prog, f.prog.code
				m.setPolicy(f.prog)
			}

		case kCallHelper, kCallx:
			id := int64(o.off)
			if o.kind == kCallx {
				if r := regs[o.dst]; r < uint64(len(m.prog.helpers)) && m.prog.helpers[r] != nil {
					id = int64(r)
				} else {
					return 0, m.fault(m.prog, pc-1, FaultBadCall, r, 0, 0)
				}
			}
			m.steps, m.pc = acc+pc, pc-1
			r0, err := m.prog.helpers[id](m, regs[1], regs[2], regs[3], regs[4], regs[5])
			acc = m.steps - pc
			if err != nil || m.pending != 0 {
				next, err := m.afterHelper(m.prog, pc-1, id, r0, err)
				if err != nil {
					return 0, err
				}
				if next != nil {
					acc += pc
					m.prog, code, pc = next, next.code, 0
					m.progBase = m.depth
					m.setPolicy(next)
					continue
				}
			}
			regs[0] = r0

		case kPoisoned:
			return 0, m.fault(m.prog, pc-1, FaultPoisoned, 0, 0, 0)

		default:
			panic("vm: invalid op kind")
		}
	}
}

// afterHelper handles what a helper asked for (or failed with): an abort,
// Exit, or a tail call, which it returns.
func (m *Machine) afterHelper(p *Program, pc int, id int64, r0 uint64, err error) (*Program, error) {
	if err == nil && m.pending&pendAbort != 0 {
		err = m.abort
	}
	if err != nil {
		switch err.(type) {
		case *Fault, *LimitError, *HelperError:
		default:
			if err != errExit {
				err = &HelperError{PC: int(p.insn[pc]), Helper: asm.BuiltinFunc(id), Err: err}
			}
		}
		if err != errExit && m.pending&pendExit == 0 {
			return nil, err
		}
	}
	if m.pending&pendExit != 0 {
		if m.pending&pendExitDone == 0 { // the innermost helper's result wins
			m.exitR0 = r0
			m.pending |= pendExitDone
		}
		return nil, errExit
	}
	m.pending &^= pendTail
	next := m.next
	m.next = nil
	return next, nil
}
