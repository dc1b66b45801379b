package vm_test

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// TestContextImage_Alias runs the image accesses CtxPolicy.AllowAlias
// describes (on both engines, see TestMain): a wide load of a narrow
// field reads the field from where it starts, masked; a store keeps its
// low bytes zero-extended and marks the image dirty; while the image is
// not fresh the same loads go to the accessor.
func TestContextImage_Alias(t *testing.T) {
	img := make(imgCtx, 32)
	// A 16-bit field at 16 whose upper bytes are not its own.
	binary.LittleEndian.PutUint32(img[16:], 0xeeee1234)
	binary.LittleEndian.PutUint32(img[12:], 0xffffffff)
	fresh, dirty := true, false
	acc := &imgCtxImage{imgCtx: img, fresh: &fresh, dirty: &dirty, plain: fuzzPlain()}
	p := load(t, asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 16, asm.Word), // 0x1234
		asm.LoadMem(asm.R3, asm.R1, 18, asm.Half), // 0x1234 again
		asm.LoadMem(asm.R4, asm.R1, 17, asm.Byte), // 0x12
		asm.LoadMem(asm.R5, asm.R1, 16, asm.Half), // 0x1234
		asm.Mov.Imm(asm.R0, 0),
		asm.Add.Reg(asm.R0, asm.R2),
		asm.LSh.Imm(asm.R0, 16),
		asm.Add.Reg(asm.R0, asm.R3),
		asm.LSh.Imm(asm.R0, 8),
		asm.Add.Reg(asm.R0, asm.R4),
		asm.LSh.Imm(asm.R0, 16),
		asm.Add.Reg(asm.R0, asm.R5),
		imm64(asm.R6, 0xabcd_5678_9abc),
		asm.StoreMem(asm.R1, 12, asm.R6, asm.Word), // 0x9abc, zero-extended
		asm.Return(),
	}, vm.Options{})
	m := vm.NewMachine()
	m.SetContextAccessor(acc, 32)
	r0, err := m.Run(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(0x1234_1234_12_1234); r0 != want {
		t.Errorf("r0 = %#x, want %#x", r0, want)
	}
	if got := binary.LittleEndian.Uint32(img[12:]); got != 0x9abc || !dirty {
		t.Errorf("store: image %#x dirty %v, want 0x9abc and dirty", got, dirty)
	}
	// Not fresh: the accessor (raw bytes here) answers, unmasked.
	fresh, dirty = false, false
	r0, err = m.Run(p)
	if err != nil {
		t.Fatal(err)
	}
	r2 := uint64(0xeeee1234)
	if want := ((r2<<16+0xeeee)<<8+0x12)<<16 + 0x1234; r0 != want {
		t.Errorf("not fresh: r0 = %#x, want %#x", r0, want)
	}
	if got := binary.LittleEndian.Uint32(img[12:]); got != 0x56789abc || dirty {
		t.Errorf("not fresh: store left %#x dirty %v, want StoreCtx's 0x56789abc", got, dirty)
	}
}

// TestContextImage_StoreBelow runs the conditional image store
// CtxPolicy.AllowStoreBelow describes (the kernel's queue_mapping store),
// on both engines: a register below the bound (unsigned) or an immediate
// below it (signed) is written, anything from the bound up (the upper
// register half included) leaves the image as it was; both mark it dirty.
func TestContextImage_StoreBelow(t *testing.T) {
	plain := vm.CtxImageFunc(32, func(off, size int, write bool) (int, int, uint64, bool) {
		if write && off == 20 && size == 4 {
			return 20, 4, 0xffff, true
		}
		return 0, 0, 0, false
	})
	for _, c := range []struct {
		name string
		ins  []asm.Instruction
		want uint32
	}{
		{"reg below", []asm.Instruction{asm.Mov.Imm(asm.R2, 0xfffe), asm.StoreMem(asm.R1, 20, asm.R2, asm.Word)}, 0xfffe},
		{"reg at bound", []asm.Instruction{asm.Mov.Imm(asm.R2, 0xffff), asm.StoreMem(asm.R1, 20, asm.R2, asm.Word)}, 0x5555},
		{"upper half", []asm.Instruction{imm64(asm.R2, 1<<32|7), asm.StoreMem(asm.R1, 20, asm.R2, asm.Word)}, 0x5555},
		{"imm below", []asm.Instruction{asm.StoreImm(asm.R1, 20, 3, asm.Word)}, 3},
		{"imm at bound", []asm.Instruction{asm.StoreImm(asm.R1, 20, 0xffff, asm.Word)}, 0x5555},
		// An immediate is compared as the signed number it is (BPF_ST):
		// -1 is below the bound and stored.
		{"imm negative", []asm.Instruction{asm.StoreImm(asm.R1, 20, -1, asm.Word)}, 0xffffffff},
		{"through a copy", []asm.Instruction{asm.Mov.Reg(asm.R3, asm.R1), asm.Mov.Imm(asm.R2, 9), asm.StoreMem(asm.R3, 20, asm.R2, asm.Word)}, 9},
	} {
		img := make(imgCtx, 32)
		binary.LittleEndian.PutUint32(img[20:], 0x5555)
		fresh, dirty := true, false
		acc := &imgCtxImage{imgCtx: img, fresh: &fresh, dirty: &dirty, plain: plain}
		p := load(t, append(append(asm.Instructions{}, c.ins...), asm.Mov.Imm(asm.R0, 0), asm.Return()), vm.Options{})
		m := vm.NewMachine()
		m.SetContextAccessor(acc, 32)
		if _, err := m.Run(p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := binary.LittleEndian.Uint32(img[20:]); got != c.want || !dirty {
			t.Errorf("%s: image %#x dirty %v, want %#x and dirty", c.name, got, dirty, c.want)
		}
	}
}
