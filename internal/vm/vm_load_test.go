package vm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

func TestMachine_Run_StackLoadStore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		insns []asm.Instruction
		want  uint64
	}{
		{"stxdw/ldxdw", []asm.Instruction{imm64(asm.R1, 0x1122334455667788), asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord), asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord)}, 0x1122334455667788},
		{"little-endian layout", []asm.Instruction{imm64(asm.R1, 0x1122334455667788), asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord), asm.LoadMem(asm.R0, asm.RFP, -7, asm.Byte)}, 0x77},
		{"ldxh zero-extends", []asm.Instruction{asm.StoreImm(asm.RFP, -2, -1, asm.Half), asm.LoadMem(asm.R0, asm.RFP, -2, asm.Half)}, 0xffff},
		{"ldxw zero-extends", []asm.Instruction{asm.StoreImm(asm.RFP, -4, -1, asm.Word), asm.LoadMem(asm.R0, asm.RFP, -4, asm.Word)}, 0xffff_ffff},
		{"ldxsb sign-extends", []asm.Instruction{asm.StoreImm(asm.RFP, -1, 0x80, asm.Byte), asm.LoadMemSX(asm.R0, asm.RFP, -1, asm.Byte)}, 0xffff_ffff_ffff_ff80},
		{"ldxsh sign-extends", []asm.Instruction{asm.StoreImm(asm.RFP, -2, 0x8001, asm.Half), asm.LoadMemSX(asm.R0, asm.RFP, -2, asm.Half)}, 0xffff_ffff_ffff_8001},
		{"ldxsw sign-extends", []asm.Instruction{asm.StoreImm(asm.RFP, -4, -2, asm.Word), asm.LoadMemSX(asm.R0, asm.RFP, -4, asm.Word)}, 0xffff_ffff_ffff_fffe},
		{"ldxsw positive", []asm.Instruction{asm.StoreImm(asm.RFP, -4, 0x7fff_ffff, asm.Word), asm.LoadMemSX(asm.R0, asm.RFP, -4, asm.Word)}, 0x7fff_ffff},
		{"stdw imm sign-extends", []asm.Instruction{stdw(asm.RFP, -8, -3), asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord)}, uint64(1<<64 - 3)},
		{"stb truncates", []asm.Instruction{stdw(asm.RFP, -8, 0), imm64(asm.R1, 0x1ff), asm.StoreMem(asm.RFP, -8, asm.R1, asm.Byte), asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord)}, 0xff},
		{"sth/stw", []asm.Instruction{asm.StoreImm(asm.RFP, -8, 0x1234, asm.Half), asm.StoreImm(asm.RFP, -6, 0x5678, asm.Half), asm.LoadMem(asm.R0, asm.RFP, -8, asm.Word)}, 0x5678_1234},
		{"pointer arithmetic", []asm.Instruction{asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, -16), asm.StoreImm(asm.R2, 3, 9, asm.Byte), asm.LoadMem(asm.R0, asm.RFP, -13, asm.Byte)}, 9},
		{"load-acquire/store-release", []asm.Instruction{asm.Mov.Imm(asm.R1, 42), asm.StoreRelease(asm.RFP, asm.R1, asm.Word, -4), asm.LoadAcquire(asm.R0, asm.RFP, asm.Word, -4)}, 42},
		{"stack starts zeroed", []asm.Instruction{asm.LoadMem(asm.R0, asm.RFP, -512, asm.DWord)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r0(t, tc.insns...); got != tc.want {
				t.Errorf("r0 = %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestMachine_Run_StackZeroedBetweenRuns(t *testing.T) {
	m := vm.NewMachine()
	write := load(t, asm.Instructions{stdw(asm.RFP, -8, 0x55), asm.Mov.Imm(asm.R0, 0), asm.Return()}, vm.Options{})
	read := load(t, asm.Instructions{asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord), asm.Return()}, vm.Options{})
	if _, err := m.Run(write); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Run(read); err != nil || v != 0 {
		t.Errorf("second run read %#x, %v: the stack leaked across runs", v, err)
	}
}

func TestMachine_Run_Packet(t *testing.T) {
	// meta [0,4) data [4,12) end 12; buffer has 4 bytes of tailroom.
	pkt := []byte{0xa0, 0xa1, 0xa2, 0xa3, 1, 2, 3, 4, 5, 6, 7, 8, 0xee, 0xee, 0xee, 0xee}
	m := vm.NewMachine()
	if err := m.SetPacket(pkt, 0, 4, 12); err != nil {
		t.Fatal(err)
	}
	p := load(t, asm.Instructions{
		asm.LoadMem(asm.R0, asm.R1, 0, asm.Word),  // data[0:4]
		asm.LoadMem(asm.R2, asm.R1, -4, asm.Byte), // meta
		asm.Add.Reg(asm.R0, asm.R2),
		asm.StoreImm(asm.R1, 7, 0x99, asm.Byte), // last byte of data
		asm.Return(),
	}, vm.Options{})
	v, err := m.Run(p, vm.PacketAddr(4))
	if err != nil || v != 0x04030201+0xa0 {
		t.Fatalf("r0 = %#x, %v", v, err)
	}
	if pkt[11] != 0x99 {
		t.Error("store to the packet did not land")
	}
	if err := m.SetPacket(pkt, 5, 4, 12); err == nil {
		t.Error("SetPacket accepted meta > data")
	}
	if err := m.SetPacket(pkt, 0, 4, 17); !errorsIs(err, syscall.EINVAL) {
		t.Errorf("SetPacket(end > len) = %v, want EINVAL", err)
	}
}

func TestMachine_Run_Context(t *testing.T) {
	pol := vm.NewCtxPolicy(16)
	pol.AllowField(0, 4, false, true) // readable u32, narrow loads allowed
	pol.AllowField(4, 4, true, false) // writable u32, full width only
	pol.AllowField(4, 4, false, false)
	pol.AllowField(8, 8, false, false) // readable u64
	ctx := make([]byte, 16)
	binary.LittleEndian.PutUint32(ctx[0:], 0xaabbccdd)
	binary.LittleEndian.PutUint64(ctx[8:], 0x0102030405060708)
	m := vm.NewMachine()
	m.SetContext(ctx)
	p := load(t, asm.Instructions{
		asm.LoadMem(asm.R0, asm.R1, 2, asm.Half), // narrow: 0xaabb
		asm.LoadMem(asm.R2, asm.R1, 8, asm.DWord),
		asm.Add.Reg(asm.R0, asm.R2),
		asm.StoreImm(asm.R1, 4, 77, asm.Word),
		asm.Return(),
	}, vm.Options{Ctx: pol})
	v, err := m.Run(p) // r1 = CtxAddr by default
	if err != nil || v != 0xaabb+0x0102030405060708 {
		t.Fatalf("r0 = %#x, %v", v, err)
	}
	if got := binary.LittleEndian.Uint32(ctx[4:]); got != 77 {
		t.Errorf("ctx[4:8] = %d after the store", got)
	}
	// Without a policy the whole context is plain memory.
	free := load(t, asm.Instructions{asm.LoadMem(asm.R0, asm.R1, 9, asm.Half), asm.Return()}, vm.Options{})
	if v, err := m.Run(free); err != nil || v != 0x0607 {
		t.Errorf("r0 = %#x, %v", v, err)
	}
}

func TestCtxPolicy_AllowField(t *testing.T) {
	p := vm.NewCtxPolicy(8)
	p.AllowField(0, 4, false, true)
	for _, tc := range []struct {
		off, size int
		write     bool
		want      bool
	}{
		{0, 4, false, true}, {0, 1, false, true}, {3, 1, false, true}, {2, 2, false, true},
		{1, 2, false, false}, {1, 4, false, false}, {0, 8, false, false}, {0, 4, true, false},
		{4, 4, false, false}, {0, 3, false, false}, {-1, 1, false, false}, {8, 1, false, false},
	} {
		if got := p.Allows(tc.off, tc.size, tc.write); got != tc.want {
			t.Errorf("Allows(%d, %d, %v) = %v, want %v", tc.off, tc.size, tc.write, got, tc.want)
		}
	}
}

func TestMachine_Run_MapValues(t *testing.T) {
	as := vm.NewAddressSpace()
	// Four 12-byte values padded to 16.
	vals := make([]byte, 4*16)
	base, err := as.Map(vm.Region{Data: vals, Stride: 16, SlotSize: 12})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := as.Map(vm.Region{Data: []byte("rodata!!"), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	type mapObj struct{ name string }
	obj := &mapObj{"counters"}
	handle := as.NewHandle(obj)
	resolve := func(ref vm.MapRef) (uint64, error) {
		switch {
		case ref.Name == "vals" && ref.Value():
			return base + uint64(ref.Offset), nil
		case ref.Name == "vals":
			return handle, nil
		case ref.Name == "rodata" && ref.Value():
			return ro + uint64(ref.Offset), nil
		}
		return 0, fmt.Errorf("no map %q", ref.Name)
	}
	var seen any
	lookup := func(m *vm.Machine, r1, r2, _, _, _ uint64) (uint64, error) {
		seen, _ = m.AddressSpace().Object(r1)
		return base + 16*r2, nil // value r2
	}
	opts := vm.Options{
		AddressSpace: as,
		Maps:         resolve,
		Helpers:      helperTable(map[asm.BuiltinFunc]vm.HelperFunc{asm.FnMapLookupElem: lookup}),
	}
	p := load(t, asm.Instructions{
		asm.LoadMapValue(asm.R6, 0, 20).WithReference("vals"), // value 1, byte 4
		asm.StoreImm(asm.R6, 0, 0x1234, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("vals"),
		asm.Mov.Imm(asm.R2, 3),
		asm.FnMapLookupElem.Call(),
		asm.StoreImm(asm.R0, 8, 0x55, asm.Word), // value 3, last 4 bytes of 12
		asm.LoadMapValue(asm.R7, 0, 2).WithReference("rodata"),
		asm.LoadMem(asm.R0, asm.R7, 0, asm.Half),
		asm.Return(),
	}, opts)
	v, err := vm.NewMachine().Run(p)
	if err != nil || v != uint64(binary.LittleEndian.Uint16([]byte("da"))) {
		t.Fatalf("r0 = %#x, %v", v, err)
	}
	if seen != obj {
		t.Errorf("helper saw handle object %v, want %v", seen, obj)
	}
	want := make([]byte, 64)
	binary.LittleEndian.PutUint32(want[20:], 0x1234)
	binary.LittleEndian.PutUint32(want[56:], 0x55)
	if !bytes.Equal(vals, want) {
		t.Errorf("map values\n%x\nwant\n%x", vals, want)
	}
}

func TestMachine_Run_LdAbs(t *testing.T) {
	pkt := []byte{0xff, 0xff, 0x11, 0x22, 0x33, 0x44, 0x55}
	for _, tc := range []struct {
		name  string
		insns asm.Instructions
		want  uint64
	}{
		{"abs byte", asm.Instructions{asm.LoadAbs(0, asm.Byte)}, 0x11},
		{"abs half big-endian", asm.Instructions{asm.LoadAbs(1, asm.Half)}, 0x2233},
		{"abs word big-endian", asm.Instructions{asm.LoadAbs(1, asm.Word)}, 0x22334455},
		{"abs last byte", asm.Instructions{asm.LoadAbs(4, asm.Byte)}, 0x55},
		{"ind", asm.Instructions{asm.Mov.Imm(asm.R3, 2), asm.LoadInd(asm.R0, asm.R3, 1, asm.Half)}, 0x4455},
		{"ind negative register", asm.Instructions{asm.Mov.Imm(asm.R3, -1), asm.LoadInd(asm.R0, asm.R3, 2, asm.Byte)}, 0x22},
		{"SKF_LL_OFF is the MAC header", asm.Instructions{asm.LoadAbs(-0x200000+3, asm.Byte)}, 0x44},
		{"ind uses the register's low 32 bits", asm.Instructions{imm64(asm.R3, 1<<32|3), asm.LoadInd(asm.R0, asm.R3, 0, asm.Half)}, 0x4455},
		{"ind word", asm.Instructions{asm.Mov.Imm(asm.R3, 0), asm.LoadInd(asm.R0, asm.R3, 1, asm.Word)}, 0x22334455},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := vm.NewMachine()
			if err := m.SetPacket(pkt, 0, 2, len(pkt)); err != nil {
				t.Fatal(err)
			}
			v, err := m.Run(load(t, append(tc.insns, asm.Return()), vm.Options{}))
			if err != nil || v != tc.want {
				t.Errorf("r0 = %#x, %v; want %#x", v, err, tc.want)
			}
		})
	}
	// Out of bounds: the program ends at once with r0 = 0, no fault.
	for _, tc := range []struct {
		name string
		ld   asm.Instruction
	}{
		{"abs past end", asm.LoadAbs(4, asm.Half)},
		{"abs word past end", asm.LoadAbs(2, asm.Word)},
		{"abs negative (headroom)", asm.LoadAbs(-1, asm.Byte)},
		{"ind wraps negative", asm.LoadInd(asm.R0, asm.R6, -1, asm.Byte)},
		{"SKF_NET_OFF", asm.LoadAbs(-0x100000, asm.Byte)},
		{"ind offset wraps to negative", asm.LoadInd(asm.R0, asm.R7, 1, asm.Byte)},
		{"ind far past the end", asm.LoadInd(asm.R0, asm.R8, 0, asm.Byte)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := vm.NewMachine()
			if err := m.SetPacket(pkt, 0, 2, len(pkt)); err != nil {
				t.Fatal(err)
			}
			p := load(t, asm.Instructions{asm.Mov.Imm(asm.R0, 7), asm.Mov.Imm(asm.R6, 0), asm.Mov.Imm(asm.R7, 0x7fffffff),
				asm.Mov.Imm(asm.R8, 0x7ffffff0), tc.ld, asm.Mov.Imm(asm.R0, 9), asm.Return()}, vm.Options{})
			v, err := m.Run(p)
			if err != nil || v != 0 {
				t.Errorf("r0 = %d, %v; want 0 and no error", v, err)
			}
			if p.Faults() != 0 {
				t.Errorf("a failed LD_ABS counted %d faults", p.Faults())
			}
		})
	}
}

// convCtx is a context with kernel-style conversions: field 0 is a 16-bit
// value behind a 32-bit slot (stores keep 16 bits, any load of the slot
// returns the field), field 4 drops stores of 0xffff or more.
type convCtx struct {
	f0, f4 uint64
	loads  []int
}

func (c *convCtx) LoadCtx(off, size int) (uint64, bool) {
	c.loads = append(c.loads, off)
	switch {
	case off >= 0 && off < 4:
		return c.f0, true
	case off == 4 && size == 4:
		return c.f4, true
	}
	return 0, false
}

func (c *convCtx) StoreCtx(off, size int, v uint64) bool {
	switch {
	case off == 0 && size == 4:
		c.f0 = v & 0xffff
	case off == 4 && size == 4:
		if v < 0xffff {
			c.f4 = v
		}
	default:
		return false
	}
	return true
}

func TestMachine_SetContextAccessor(t *testing.T) {
	c := &convCtx{f4: 9}
	m := vm.NewMachine()
	m.SetContextAccessor(c, 8)
	p := load(t, asm.Instructions{
		asm.StoreImm(asm.R1, 0, 0x12345, asm.Word),
		asm.LoadMem(asm.R0, asm.R1, 2, asm.Half), // narrow load of the upper half: the field
		imm64(asm.R2, 0x1_0000_0005),
		asm.StoreMem(asm.R1, 4, asm.R2, asm.Word), // dropped: the full register is >= 0xffff
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mul.Imm(asm.R0, 100),
		asm.Add.Reg(asm.R0, asm.R3),
		asm.Return(),
	}, vm.Options{})
	v, err := m.Run(p)
	if err != nil || v != 0x2345*100+9 {
		t.Errorf("r0 = %#x, %v; want %#x", v, err, 0x2345*100+9)
	}
	// The accessor refusing, a policy refusing, atomics, out of bounds and
	// helper Mem all fault with FaultCtxAccess (or out of bounds).
	pol := vm.NewCtxPolicy(8)
	pol.AllowField(0, 4, false, false)
	memHelper := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{1: func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
		_, err := m.Mem(r1, 4, false)
		return 0, err
	}})
	for _, tc := range []struct {
		name string
		ins  asm.Instruction
		opts vm.Options
		kind vm.FaultKind
	}{
		{"accessor refuses", asm.LoadMem(asm.R0, asm.R1, 5, asm.Byte), vm.Options{}, vm.FaultCtxAccess},
		{"policy refuses before the accessor", asm.LoadMem(asm.R0, asm.R1, 2, asm.Half), vm.Options{Ctx: pol}, vm.FaultCtxAccess},
		{"atomic", asm.AddAtomic.Mem(asm.R1, asm.R1, asm.Word, 0), vm.Options{}, vm.FaultNoAtomic},
		{"beyond size", asm.LoadMem(asm.R0, asm.R1, 8, asm.Word), vm.Options{}, vm.FaultOutOfBounds},
		{"helper Mem", asm.BuiltinFunc(1).Call(), vm.Options{Helpers: memHelper}, vm.FaultCtxAccess},
	} {
		c.loads = nil
		_, err := m.Run(load(t, asm.Instructions{tc.ins, asm.Return()}, tc.opts))
		var f *vm.Fault
		if !errors.As(err, &f) || f.Kind != tc.kind {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.kind)
		}
		if tc.name == "policy refuses before the accessor" && len(c.loads) != 0 {
			t.Errorf("accessor called despite the policy")
		}
	}
}

func TestCtxPolicyFunc_Allows(t *testing.T) {
	// Aligned 4-byte reads anywhere, writes only at 8.
	rule := func(off, size int, write bool) bool { return size == 4 && off%4 == 0 && (!write || off == 8) }
	p := vm.CtxPolicyFunc(16, rule)
	for off := -1; off <= 16; off++ {
		for _, size := range []int{1, 2, 3, 4, 8} {
			for _, write := range []bool{false, true} {
				want := off >= 0 && off+size <= 16 && rule(off, size, write)
				if got := p.Allows(off, size, write); got != want {
					t.Errorf("Allows(%d, %d, %v) = %v, want %v", off, size, write, got, want)
				}
			}
		}
	}
}

func TestMachine_Run_StackZeroedPerFrameAndRun(t *testing.T) {
	// f reads its slot (must be 0) and dirties it; main calls f twice.
	fill := helperTable(map[asm.BuiltinFunc]vm.HelperFunc{1: func(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
		b, err := m.Mem(r1, 16, true)
		for i := range b {
			b[i] = 0xee
		}
		return 0, err
	}})
	p := load(t, asm.Instructions{
		asm.LoadMem(asm.R6, asm.RFP, -16, asm.DWord), // dirtied by the helper last run?
		asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, -16),
		asm.BuiltinFunc(1).Call(),
		asm.Call.Label("f"), asm.Add.Reg(asm.R6, asm.R0),
		asm.Call.Label("f"), asm.Add.Reg(asm.R6, asm.R0),
		asm.Mov.Reg(asm.R0, asm.R6),
		asm.Return(),
		asm.LoadMem(asm.R0, asm.RFP, -8, asm.DWord).WithSymbol("f"),
		stdw(asm.RFP, -8, 0x77),
		asm.StoreImm(asm.RFP, -512, 0x55, asm.Byte),
		asm.Return(),
	}, vm.Options{Helpers: fill})
	m := vm.NewMachine()
	for run := range 3 {
		if v, err := m.Run(p); err != nil || v != 0 {
			t.Fatalf("run %d: r0 = %#x, %v; want 0 (fresh frames)", run, v, err)
		}
	}
}
