package vm

import (
	"errors"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// TestJIT_ConstantRegion loads from a constant region (Region.Constant:
// .rodata) at proven constant addresses, every size, signed and not,
// inside a slot, across its accessible end and past the region, on both
// engines: the same values and faults. Compiled code reads the value at
// compile time; a test may show it by breaking the promise (changing
// the bytes after Load), which a read-only region that is not constant
// must still see.
func TestJIT_ConstantRegion(t *testing.T) {
	as := NewAddressSpace()
	data := []byte{0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0, 0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0, 0}
	constant, err := as.Map(Region{Data: data, Stride: 8, SlotSize: 6, ReadOnly: true, Constant: true})
	if err != nil {
		t.Fatal(err)
	}
	roData := append([]byte(nil), data...)
	ro, err := as.Map(Region{Data: roData, Stride: 8, SlotSize: 6, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Map(Region{Data: data, Constant: true}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a writable constant region: %v, want EINVAL", err)
	}
	load := func(base uint64, off int16, size asm.Size, signed bool) asm.Instructions {
		l := asm.LoadMem(asm.R0, asm.R1, off, size)
		if signed {
			l = asm.LoadMemSX(asm.R0, asm.R1, off, size)
		}
		return asm.Instructions{asm.LoadImm(asm.R1, int64(base), asm.DWord), l, asm.Return()}
	}
	type access struct {
		off    int16
		size   asm.Size
		signed bool
	}
	cases := []access{
		{0, asm.Byte, false}, {0, asm.Byte, true}, {1, asm.Half, false}, {1, asm.Half, true},
		{2, asm.Word, false}, {2, asm.Word, true}, {8, asm.Word, true}, {9, asm.Half, true},
		{4, asm.Word, false},                         // past the slot's 6 bytes
		{0, asm.DWord, false},                        // likewise
		{14, asm.Half, false}, {16, asm.Byte, false}, // padding, past the end
	}
	run := func(insns asm.Instructions, e Engine) (uint64, string) {
		p, err := Load(insns, Options{Engine: e, AddressSpace: as})
		if err != nil {
			t.Fatal(err)
		}
		if e == EngineJIT {
			if ok, why := p.Compiled(); !ok {
				t.Skipf("not compiled: %s", why)
			}
		}
		r0, err := NewMachine().Run(p)
		return r0, errString(err)
	}
	for _, c := range cases {
		insns := load(constant, c.off, c.size, c.signed)
		i0, ie := run(insns, EngineInterp)
		j0, je := run(insns, EngineJIT)
		if i0 != j0 || ie != je {
			t.Errorf("%+v: interpreter %#x %q, jit %#x %q", c, i0, ie, j0, je)
		}
	}
	// Break the promise: compiled code keeps what it read when it was
	// compiled, from the constant region only.
	pc, err := Load(load(constant, 2, asm.Word, false), Options{Engine: EngineJIT, AddressSpace: as})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := Load(load(ro, 2, asm.Word, false), Options{Engine: EngineJIT, AddressSpace: as})
	if err != nil {
		t.Fatal(err)
	}
	data[2], roData[2] = 0, 0
	m := NewMachine()
	if r0, err := m.Run(pc); err != nil || r0 != 0x86858483 {
		t.Errorf("constant region changed after Load: %#x, %v; want the value at compile time, 0x86858483", r0, err)
	}
	if r0, err := m.Run(pr); err != nil || r0 != 0x86858400 {
		t.Errorf("read-only region changed: %#x, %v; want the new value 0x86858400", r0, err)
	}
}
