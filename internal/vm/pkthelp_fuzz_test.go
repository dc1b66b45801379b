package vm_test

import (
	"encoding/binary"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// The fuzz environment's packet helpers (Options.PacketHelpers): each one
// of the operations, with a Go helper that does what vm.PacketOp's doc
// says (and something else, never done by compiled code, in the cases the
// description leaves to Go), on the environment's packet data, state byte
// and record word.
const (
	fuzzStore  = asm.FnSkbStoreBytes // PacketStore, flag 1 guarded
	fuzzL3     = asm.FnL3CsumReplace // PacketCsumReplace, no flags
	fuzzL4     = asm.FnL4CsumReplace // PacketCsumReplace, MANGLED_0 0x20, ENFORCE 0x40, guarded, Wide2
	fuzzRecord = asm.FnRedirect      // PacketRecord, flag 1 at bit 8
	fuzzLoad   = asm.FnSkbLoadBytes  // PacketLoad
)

const fuzzPlainStates = 1<<0 | 1<<1

var fuzzPacketHelpers = map[int32]vm.PacketHelper{
	int32(fuzzStore):  {Op: vm.PacketStore, Flags: 1, Guarded: 1, Plain: fuzzPlainStates},
	int32(fuzzL3):     {Op: vm.PacketCsumReplace},
	int32(fuzzL4):     {Op: vm.PacketCsumReplace, Flags: 0x10 | 0x20 | 0x40 | 0x80, GuardAll: true, Plain: fuzzPlainStates, Mangled0: 0x20, Enforce: 0x40, Wide2: true},
	int32(fuzzRecord): {Op: vm.PacketRecord, Flags: 1, Shift: 8, Tag: 1, Ret: 7},
	int32(fuzzLoad):   {Op: vm.PacketLoad},
}

// Ones' complement arithmetic as the kernel's include/net/checksum.h.
func fzAdd(a, b uint32) uint32 {
	r := a + b
	if r < b {
		r++
	}
	return r
}

func fzFold(x uint32) uint16 {
	x = x&0xffff + x>>16
	x = x&0xffff + x>>16
	return ^uint16(x)
}

func fzAdd16(a, b uint16) uint16 {
	r := a + b
	if r < b {
		r++
	}
	return r
}

func fzReplace4(sum uint16, from, to uint32) uint16 {
	return fzFold(fzAdd(fzAdd(^uint32(sum), ^from), to))
}

// addPacketHelpers puts the Go helpers in tbl.
func (e *fuzzEnv) addPacketHelpers(tbl []vm.HelperFunc) {
	data := func() []byte { return e.pkt[fuzzData:e.end] }
	plain := func() bool { return fuzzPlainStates&(1<<e.state) != 0 }
	csum := func(l4 bool) vm.HelperFunc {
		return func(_ *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
			d, off := data(), uint64(uint32(r2))
			allowed := uint64(0xf)
			if l4 {
				allowed |= 0xf0
			}
			switch {
			case r5&^allowed != 0:
				return ^uint64(21), nil
			case off > 0xffff || off&1 != 0 || off+2 > uint64(len(d)):
				return ^uint64(13), nil
			case l4 && !plain():
				return ^uint64(94), nil
			}
			sum := binary.LittleEndian.Uint16(d[off:])
			if l4 && r5&0x60 == 0x20 && sum == 0 {
				return 0, nil
			}
			switch r5 & 0xf {
			case 0:
				if r3 != 0 {
					return ^uint64(21), nil
				}
				sum = fzFold(fzAdd(uint32(r4), ^uint32(sum)))
			case 2:
				if l4 {
					sum = fzReplace4(sum, uint32(uint16(r3)), uint32(uint16(r4)))
				} else {
					sum = ^fzAdd16(fzAdd16(^sum, ^uint16(r3)), uint16(r4))
				}
			case 4:
				sum = fzReplace4(sum, uint32(r3), uint32(r4))
			default:
				return ^uint64(21), nil
			}
			if l4 && r5&0x20 != 0 && sum == 0 {
				sum = 0xffff
			}
			binary.LittleEndian.PutUint16(d[off:], sum)
			return 0, nil
		}
	}
	tbl[fuzzL3], tbl[fuzzL4] = csum(false), csum(true)
	cp := func(store bool) vm.HelperFunc {
		return func(m *vm.Machine, _, r2, r3, r4, r5 uint64) (uint64, error) {
			b, err := m.Mem(r3, uint64(uint32(r4)), !store)
			if err != nil {
				return 0, err
			}
			d, off := data(), uint64(uint32(r2))
			switch {
			case store && r5&^1 != 0:
				return ^uint64(21), nil
			case store && r5 != 0 && !plain():
				return ^uint64(94), nil
			case off > 1<<31-1 || off+uint64(len(b)) > uint64(len(d)):
				return ^uint64(13), nil
			case store:
				copy(d[off:], b)
			default:
				copy(b, d[off:])
			}
			return 0, nil
		}
	}
	tbl[fuzzStore], tbl[fuzzLoad] = cp(true), cp(false)
	tbl[fuzzRecord] = func(_ *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
		if r2&^1 != 0 {
			return 2, nil
		}
		e.record = 1 | r2<<8 | uint64(uint32(r1))<<32
		return 7, nil
	}
}

// packetHelperCall is the generator's call of a packet helper, its
// arguments from c: small offsets, sizes and flags, r3 somewhere.
func packetHelperCall(c []byte) asm.Instructions {
	fns := []asm.BuiltinFunc{fuzzStore, fuzzL3, fuzzL4, fuzzRecord, fuzzLoad}
	fn := fns[int(c[3])%len(fns)]
	in := asm.Instructions{asm.Mov.Imm(asm.R2, int32(c[4]%48))}
	switch fn {
	case fuzzStore, fuzzLoad:
		base := []asm.Register{asm.RFP, asm.R9, asm.R8, asm.R6}[c[5]%4]
		in = append(in, asm.Mov.Reg(asm.R3, base), asm.Add.Imm(asm.R3, -int32(c[5]>>2)), asm.Mov.Imm(asm.R4, int32(c[6]%24)))
		if c[7]&1 == 0 {
			in[len(in)-1] = asm.Mov.Reg(asm.R4, asm.R7) // a size not proven
		}
	case fuzzRecord:
		in[0] = asm.Mov.Imm(asm.R2, int32(c[4]%3))
	}
	if fn != fuzzRecord {
		in = append(in, asm.Mov.Imm(asm.R5, int32(c[7]>>1)))
	}
	return append(in, fn.Call())
}
