package vm_test

import (
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// TestSlots_RepeatedAccess runs accesses through one map value after
// another (compiled code remembers the slot it translated last, see
// jitc.slotMemo): inside the slot they land where the first did, past the
// slot's accessible bytes they fault at their own instruction, a slot
// read from a read-only map does not become writable, and the next slot
// is its own.
func TestSlots_RepeatedAccess(t *testing.T) {
	as := vm.NewAddressSpace()
	rw := make([]byte, 3*16)
	ro := make([]byte, 2*16)
	ro[3] = 9
	rwAddr, err := as.Map(vm.Region{Data: rw, Stride: 16, SlotSize: 12})
	if err != nil {
		t.Fatal(err)
	}
	roAddr, err := as.Map(vm.Region{Data: ro, Stride: 16, SlotSize: 12, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := vm.Options{AddressSpace: as}
	for _, c := range []struct {
		name  string
		insns asm.Instructions
		r0    uint64
		fault vm.FaultKind
		pc    int
	}{
		{"inside one slot", asm.Instructions{
			imm64(asm.R1, rwAddr+16),
			asm.StoreImm(asm.R1, 0, 7, asm.Word),
			asm.StoreImm(asm.R1, 8, 5, asm.Word),
			asm.LoadMem(asm.R0, asm.R1, 0, asm.Word),
			asm.LoadMem(asm.R2, asm.R1, 8, asm.Word),
			asm.Add.Reg(asm.R0, asm.R2),
			asm.LoadMem(asm.R2, asm.R1, 4, asm.DWord), // bytes 4-11 of the slot
			asm.Add.Reg(asm.R0, asm.R2),
		}, 7 + 5 + 5<<32, 0, 0},
		{"past the slot after a hit", asm.Instructions{
			imm64(asm.R1, rwAddr),
			asm.StoreImm(asm.R1, 0, 1, asm.Word),
			asm.LoadMem(asm.R0, asm.R1, 8, asm.Word),
			asm.LoadMem(asm.R0, asm.R1, 9, asm.Word), // 9+4 > 12
		}, 0, vm.FaultSlot, 4},
		{"a wide access at the slot's end", asm.Instructions{
			imm64(asm.R1, rwAddr),
			asm.LoadMem(asm.R0, asm.R1, 8, asm.Word),
			asm.StoreMem(asm.R1, 6, asm.R0, asm.DWord), // 6+8 > 12
		}, 0, vm.FaultSlot, 3},
		{"a read-only slot read, then written", asm.Instructions{
			imm64(asm.R1, roAddr),
			asm.LoadMem(asm.R0, asm.R1, 0, asm.Word),
			asm.StoreImm(asm.R1, 4, 1, asm.Word),
		}, 0, vm.FaultReadOnly, 3},
		{"the next slot", asm.Instructions{
			imm64(asm.R1, rwAddr+32),
			asm.StoreImm(asm.R1, 0, 3, asm.Word),
			asm.LoadMem(asm.R0, asm.R1, -16, asm.Word), // slot 1, written above
			asm.LoadMem(asm.R2, asm.R1, -32, asm.Word), // slot 0
			asm.LSh.Imm(asm.R0, 8),
			asm.Add.Reg(asm.R0, asm.R2),
			asm.LoadMem(asm.R2, asm.R1, -20, asm.Word), // slot 0's padding
		}, 0, vm.FaultSlot, 7},
		{"atomics after a store", asm.Instructions{
			imm64(asm.R1, rwAddr+16),
			asm.StoreImm(asm.R1, 4, 1, asm.Word),
			asm.Mov.Imm(asm.R2, 5),
			asm.StoreXAdd(asm.R1, asm.R2, asm.Word),
			asm.LoadMem(asm.R0, asm.R1, 0, asm.Word),
			asm.StoreXAdd(asm.R1, asm.R2, asm.DWord), // bytes 0-7
			asm.LoadMem(asm.R0, asm.R1, 0, asm.DWord),
		}, 1<<32 | (7 + 5 + 5), 0, 0},
		{"a misaligned atomic inside the slot", asm.Instructions{
			imm64(asm.R1, rwAddr),
			asm.StoreImm(asm.R1, 4, 1, asm.Word),
			asm.Mov.Imm(asm.R2, 5),
			asm.StoreXAdd(asm.R1, asm.R2, asm.Word),
			asm.Instruction{OpCode: asm.OpCode(asm.StXClass).SetMode(asm.AtomicMode).SetSize(asm.DWord), Dst: asm.R1, Src: asm.R2, Offset: 4},
		}, 0, vm.FaultMisaligned, 5},
		{"an atomic past the slot", asm.Instructions{
			imm64(asm.R1, rwAddr),
			asm.Mov.Imm(asm.R2, 5),
			asm.StoreXAdd(asm.R1, asm.R2, asm.Word),
			asm.Instruction{OpCode: asm.OpCode(asm.StXClass).SetMode(asm.AtomicMode).SetSize(asm.DWord), Dst: asm.R1, Src: asm.R2, Offset: 8},
		}, 0, vm.FaultSlot, 4},
		{"a read-only slot read, then an atomic", asm.Instructions{
			imm64(asm.R1, roAddr),
			asm.LoadMem(asm.R0, asm.R1, 0, asm.Word),
			asm.Mov.Imm(asm.R2, 5),
			asm.StoreXAdd(asm.R1, asm.R2, asm.Word),
		}, 0, vm.FaultReadOnly, 4},
		{"writes went to the right bytes", asm.Instructions{
			imm64(asm.R1, rwAddr),
			asm.LoadMem(asm.R0, asm.R1, 32, asm.Byte),
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Byte),
			asm.LSh.Imm(asm.R0, 8),
			asm.Add.Reg(asm.R0, asm.R2),
			imm64(asm.R1, roAddr),
			asm.LoadMem(asm.R2, asm.R1, 3, asm.Byte),
			asm.LSh.Imm(asm.R0, 8),
			asm.Add.Reg(asm.R0, asm.R2),
		}, 3<<16 | 17<<8 | 9, 0, 0},
		// Through the stack, which the analysis does not follow: the
		// translation's slot memos, filled by a read for the store too
		// where the region would translate a store the same way.
		{"a read-only slot read through an unknown pointer, then written", asm.Instructions{
			imm64(asm.R1, roAddr),
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
			asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
			asm.LoadMem(asm.R0, asm.R3, 0, asm.Word),
			asm.StoreImm(asm.R3, 4, 1, asm.Word),
		}, 0, vm.FaultReadOnly, 5},
		{"a slot read through an unknown pointer, then written past it", asm.Instructions{
			imm64(asm.R1, rwAddr+32),
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
			asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
			asm.LoadMem(asm.R0, asm.R3, 0, asm.Word),
			asm.StoreImm(asm.R3, 10, 1, asm.Word), // 10+4 > 12
		}, 0, vm.FaultSlot, 5},
		{"a slot read through an unknown pointer, then written", asm.Instructions{
			imm64(asm.R1, rwAddr+32),
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
			asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
			asm.LoadMem(asm.R0, asm.R3, 8, asm.Word),
			asm.Add.Imm(asm.R0, 40),
			asm.StoreMem(asm.R3, 8, asm.R0, asm.Word),
			asm.Add.Imm(asm.R0, 2),
			asm.StoreMem(asm.R3, 8, asm.R0, asm.Word),
			asm.LoadMem(asm.R0, asm.R3, 8, asm.Word),
			asm.LoadMem(asm.R2, asm.R1, 8, asm.Word), // the constant path sees it too
			asm.Add.Reg(asm.R0, asm.R2),
		}, 84, 0, 0},
	} {
		p := load(t, append(c.insns, asm.Return()), opts)
		r0, err := vm.NewMachine().Run(p)
		var f *vm.Fault
		switch {
		case c.fault == 0 && (err != nil || r0 != c.r0):
			t.Errorf("%s: r0 = %#x, %v; want %#x", c.name, r0, err, c.r0)
		case c.fault != 0 && (!errorsAs(err, &f) || f.Kind != c.fault || f.PC != c.pc):
			t.Errorf("%s: err = %v; want %v at insn %d", c.name, err, c.fault, c.pc)
		}
	}
}

// TestSlots_MemoAcrossRuns runs a program reading and writing a map value
// through a pointer the analysis does not follow, on one Machine, before
// and after the value's region is unmapped and another mapped in its
// place (the same address: region ids are reused): compiled code keeps
// the slot it translated from one run to the next, and must forget it
// when the address space changes, or it would reach the old buffer.
func TestSlots_MemoAcrossRuns(t *testing.T) {
	as := vm.NewAddressSpace()
	first := make([]byte, 16)
	addr, err := as.Map(vm.Region{Data: first, Stride: 16, SlotSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, asm.Instructions{
		imm64(asm.R1, addr),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
		asm.LoadMem(asm.R0, asm.R3, 0, asm.Word),
		asm.Add.Imm(asm.R0, 1),
		asm.StoreMem(asm.R3, 0, asm.R0, asm.Word),
		asm.Return(),
	}, vm.Options{AddressSpace: as})
	m := vm.NewMachine()
	for want := uint64(1); want <= 3; want++ {
		if r0, err := m.Run(p); err != nil || r0 != want {
			t.Fatalf("run %d: r0 = %d, %v; want %d", want, r0, err, want)
		}
	}
	if err := as.Unmap(addr); err != nil {
		t.Fatal(err)
	}
	second := make([]byte, 16)
	second[0] = 40
	again, err := as.Map(vm.Region{Data: second, Stride: 16, SlotSize: 8})
	if err != nil || again != addr {
		t.Fatalf("remap: %#x, %v; want the same address %#x", again, err, addr)
	}
	if r0, err := m.Run(p); err != nil || r0 != 41 || second[0] != 41 || first[0] != 3 {
		t.Fatalf("after the remap: r0 = %d, %v, new buffer %d, old %d; want 41, 41 and 3", r0, err, second[0], first[0])
	}
	if err := as.Unmap(addr); err != nil {
		t.Fatal(err)
	}
	if _, err := as.Map(vm.Region{Data: make([]byte, 16), Stride: 16, SlotSize: 8, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	var f *vm.Fault
	if _, err := m.Run(p); !errorsAs(err, &f) || f.Kind != vm.FaultReadOnly || f.PC != 6 {
		t.Fatalf("after a read-only remap: %v; want read-only memory at insn 6", err)
	}
}

// TestSlots_MemoWays runs a program that increments counters in four map
// values, of two regions, through pointers the analysis does not follow,
// run after run on one Machine (compiled code keeps the slots it
// translated in a memo and its ways, jitState.ways), then remaps one of
// the regions at the same address: every counter must count in its own
// buffer throughout, and the remapped one in the new buffer.
func TestSlots_MemoWays(t *testing.T) {
	as := vm.NewAddressSpace()
	a, b := make([]byte, 32), make([]byte, 32)
	aAddr := mapRegion(t, as, vm.Region{Data: a, Stride: 16, SlotSize: 8})
	bAddr := mapRegion(t, as, vm.Region{Data: b, Stride: 16, SlotSize: 8})
	var insns asm.Instructions
	for i, addr := range []uint64{aAddr, bAddr, aAddr + 16, bAddr + 16} {
		insns = append(insns,
			imm64(asm.R1, addr),
			asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
			asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
			asm.LoadMem(asm.R2, asm.R3, 0, asm.Word),
			asm.Add.Imm(asm.R2, int32(1+i)),
			asm.StoreMem(asm.R3, 0, asm.R2, asm.Word),
		)
	}
	p := load(t, append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return()), vm.Options{AddressSpace: as})
	m := vm.NewMachine()
	counts := func(buf []byte) [2]byte { return [2]byte{buf[0], buf[16]} }
	for run := 1; run <= 4; run++ {
		if _, err := m.Run(p); err != nil {
			t.Fatal(err)
		}
		if ga, gb := counts(a), counts(b); ga != [2]byte{byte(run), byte(3 * run)} || gb != [2]byte{byte(2 * run), byte(4 * run)} {
			t.Fatalf("run %d: counters %v %v; want [%d %d] [%d %d]", run, ga, gb, run, 3*run, 2*run, 4*run)
		}
	}
	if err := as.Unmap(aAddr); err != nil {
		t.Fatal(err)
	}
	fresh := make([]byte, 32)
	if again, err := as.Map(vm.Region{Data: fresh, Stride: 16, SlotSize: 8}); err != nil || again != aAddr {
		t.Fatalf("remap: %#x, %v; want %#x", again, err, aAddr)
	}
	if _, err := m.Run(p); err != nil {
		t.Fatal(err)
	}
	if got, old := counts(fresh), counts(a); got != [2]byte{1, 3} || old != [2]byte{4, 12} {
		t.Fatalf("after the remap: new buffer %v, old %v; want [1 3] and [4 12] untouched", got, old)
	}
}

// TestSlots_SiteMemo runs a program that increments a counter in one of
// two map values through a pointer the analysis knows only as one of two
// globals (a join: compiled code keeps a slot memo for each such access
// site, jit_sitememo), alternating between them run after run on one
// Machine, then with the same value on both sides of a remap of its
// region at the same address, first writable, then read-only: each
// counter counts in its own buffer, the remapped one in the new buffer,
// and the store into the read-only one faults.
func TestSlots_SiteMemo(t *testing.T) {
	as := vm.NewAddressSpace()
	sel, a, b := make([]byte, 8), make([]byte, 16), make([]byte, 16)
	selAddr := mapRegion(t, as, vm.Region{Data: sel, Stride: 8, SlotSize: 8})
	aAddr := mapRegion(t, as, vm.Region{Data: a, Stride: 16, SlotSize: 8})
	bAddr := mapRegion(t, as, vm.Region{Data: b, Stride: 16, SlotSize: 8})
	p := load(t, asm.Instructions{
		imm64(asm.R1, selAddr),
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		imm64(asm.R3, aAddr+4),
		asm.JEq.Imm(asm.R2, 0, "l"),
		imm64(asm.R3, bAddr+4),
		asm.LoadMem(asm.R0, asm.R3, -4, asm.Word).WithSymbol("l"),
		asm.Add.Imm(asm.R0, 1),
		asm.StoreMem(asm.R3, -4, asm.R0, asm.Word), // insn 10
		asm.Return(),
	}, vm.Options{AddressSpace: as})
	m := vm.NewMachine()
	run := func(slots ...byte) {
		t.Helper()
		for _, s := range slots {
			sel[0] = s
			if _, err := m.Run(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(0, 1, 0, 1, 0, 1, 0)
	if a[0] != 4 || b[0] != 3 {
		t.Fatalf("counters %d %d; want 4 3", a[0], b[0])
	}
	remap := func(ro bool) []byte {
		t.Helper()
		if err := as.Unmap(aAddr); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		if again, err := as.Map(vm.Region{Data: buf, Stride: 16, SlotSize: 8, ReadOnly: ro}); err != nil || again != aAddr {
			t.Fatalf("remap: %#x, %v; want %#x", again, err, aAddr)
		}
		return buf
	}
	c := remap(false)
	run(0, 1, 0) // a's was the last before the remap
	if c[0] != 2 || a[0] != 4 || b[0] != 4 {
		t.Fatalf("after the remap: new buffer %d, old %d, other %d; want 2, 4 and 4", c[0], a[0], b[0])
	}
	remap(true)
	sel[0] = 0
	var f *vm.Fault
	if _, err := m.Run(p); !errorsAs(err, &f) || f.Kind != vm.FaultReadOnly || f.PC != 10 {
		t.Fatalf("after a read-only remap: %v; want read-only memory at insn 10", err)
	}
	run(1)
	if c[0] != 2 || b[0] != 5 {
		t.Fatalf("after the read-only remap: writable buffer %d, other %d; want 2 and 5", c[0], b[0])
	}
}

// mapRegion maps r into as.
func mapRegion(t *testing.T, as *vm.AddressSpace, r vm.Region) uint64 {
	t.Helper()
	addr, err := as.Map(r)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestSlots_SiteEntryKeepsDirection runs a load and a store through a
// pointer hinted as a map value, once into a writable value and, after a
// remap of the same address read-only, again: the store must fault
// although the load just translated the read-only slot, so a store's
// site entry may name only a memo of a slot translated for writing.
func TestSlots_SiteEntryKeepsDirection(t *testing.T) {
	as := vm.NewAddressSpace()
	sel, a := make([]byte, 8), make([]byte, 16)
	selAddr := mapRegion(t, as, vm.Region{Data: sel, Stride: 8, SlotSize: 8})
	aAddr := mapRegion(t, as, vm.Region{Data: a, Stride: 16, SlotSize: 8})
	p := load(t, asm.Instructions{
		imm64(asm.R1, selAddr),
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		imm64(asm.R3, aAddr),
		asm.JEq.Imm(asm.R2, 0, "l"),
		imm64(asm.R3, aAddr+8), // the other slot: the pointer is one of two
		asm.LoadMem(asm.R0, asm.R3, 0, asm.Word).WithSymbol("l"),
		asm.Add.Imm(asm.R0, 1),
		asm.StoreMem(asm.R3, 0, asm.R0, asm.Word), // insn 10
		asm.Return(),
	}, vm.Options{AddressSpace: as})
	m := vm.NewMachine()
	if _, err := m.Run(p); err != nil || a[0] != 1 {
		t.Fatalf("writable: %v, counter %d; want nil and 1", err, a[0])
	}
	if err := as.Unmap(aAddr); err != nil {
		t.Fatal(err)
	}
	ro := make([]byte, 16)
	if again, err := as.Map(vm.Region{Data: ro, Stride: 16, SlotSize: 8, ReadOnly: true}); err != nil || again != aAddr {
		t.Fatalf("remap: %#x, %v; want %#x", again, err, aAddr)
	}
	var f *vm.Fault
	if _, err := m.Run(p); !errorsAs(err, &f) || f.Kind != vm.FaultReadOnly || f.PC != 10 {
		t.Fatalf("read-only: %v; want read-only memory at insn 10", err)
	}
	if ro[0] != 0 {
		t.Fatalf("the read-only value changed to %d", ro[0])
	}
}
