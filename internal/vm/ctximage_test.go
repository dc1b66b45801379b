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
	fresh, dirty := vm.CtxAllWords, uint64(0)
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
	if got := binary.LittleEndian.Uint32(img[12:]); got != 0x9abc || dirty != 1<<3 {
		t.Errorf("store: image %#x dirty %#x, want 0x9abc and word 3 dirty", got, dirty)
	}
	// Not fresh: the accessor (raw bytes here) answers, unmasked.
	fresh, dirty = 0, 0
	r0, err = m.Run(p)
	if err != nil {
		t.Fatal(err)
	}
	r2 := uint64(0xeeee1234)
	if want := ((r2<<16+0xeeee)<<8+0x12)<<16 + 0x1234; r0 != want {
		t.Errorf("not fresh: r0 = %#x, want %#x", r0, want)
	}
	if got := binary.LittleEndian.Uint32(img[12:]); got != 0x56789abc || dirty != 0 {
		t.Errorf("not fresh: store left %#x dirty %#x, want StoreCtx's 0x56789abc", got, dirty)
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
		fresh, dirty := vm.CtxAllWords, uint64(0)
		acc := &imgCtxImage{imgCtx: img, fresh: &fresh, dirty: &dirty, plain: plain}
		p := load(t, append(append(asm.Instructions{}, c.ins...), asm.Mov.Imm(asm.R0, 0), asm.Return()), vm.Options{})
		m := vm.NewMachine()
		m.SetContextAccessor(acc, 32)
		if _, err := m.Run(p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := binary.LittleEndian.Uint32(img[20:]); got != c.want || dirty != 1<<5 {
			t.Errorf("%s: image %#x dirty %#x, want %#x and word 5 dirty", c.name, got, dirty, c.want)
		}
	}
}

// TestContextImage_DirtyWords checks the dirty record of image stores on
// both engines (see TestMain): exactly the bits of the 4-byte words each
// store addressed (vm.CtxDirtyWords), whether compiled code knows the
// offset (r1) or not (an address through the stack), 8-byte and
// unaligned stores two words, loads none, and words from 63 on bit 63
// (a context past 64 words, which compiled code leaves to Go).
func TestContextImage_DirtyWords(t *testing.T) {
	for _, c := range []struct {
		size, off int
		width     asm.Size
		want      uint64
	}{
		{256, 8, asm.Word, 1 << 2},
		{256, 49, asm.Byte, 1 << 12},
		{256, 6, asm.Half, 1 << 1},
		{256, 6, asm.Word, 3 << 1}, // unaligned: two words
		{256, 48, asm.DWord, 3 << 12},
		{256, 152, asm.DWord, 3 << 38}, // past an immediate's 31 bits
		{256, 252, asm.Word, 1 << 63},
		{300, 248, asm.DWord, 3 << 62},
		{300, 296, asm.Word, 1 << 63}, // past 64 words: bit 63
	} {
		plain := vm.CtxImageFunc(c.size, func(off, size int, write bool) (int, int, uint64, bool) {
			return off, size, 0, true
		})
		ld := asm.LoadMem(asm.R0, asm.R1, 4, asm.Word) // a load marks nothing
		for _, path := range []struct {
			name string
			ins  asm.Instructions
		}{
			{"constant", asm.Instructions{ld, asm.Mov.Imm(asm.R2, 7), asm.StoreMem(asm.R1, int16(c.off), asm.R2, c.width)}},
			{"register", asm.Instructions{
				ld,
				asm.StoreMem(asm.RFP, -8, asm.R1, asm.DWord),
				asm.LoadMem(asm.R3, asm.RFP, -8, asm.DWord),
				asm.Mov.Imm(asm.R2, 7),
				asm.StoreMem(asm.R3, int16(c.off), asm.R2, c.width),
			}},
		} {
			img := make(imgCtx, c.size)
			fresh, dirty := vm.CtxAllWords, uint64(0)
			acc := &imgCtxImage{imgCtx: img, fresh: &fresh, dirty: &dirty, plain: plain}
			p := load(t, append(path.ins, asm.Mov.Imm(asm.R0, 0), asm.Return()), vm.Options{})
			m := vm.NewMachine()
			m.SetContextAccessor(acc, c.size)
			if _, err := m.Run(p); err != nil {
				t.Fatalf("%s store of %d at %d: %v", path.name, c.width.Sizeof(), c.off, err)
			}
			if dirty != c.want || img[c.off] != 7 {
				t.Errorf("%s store of %d at %d (context of %d): dirty %#x, byte %d; want %#x, 7",
					path.name, c.width.Sizeof(), c.off, c.size, dirty, img[c.off], c.want)
			}
			if want := vm.CtxDirtyWords(c.off, c.width.Sizeof()); want != c.want {
				t.Errorf("CtxDirtyWords(%d, %d) = %#x, want %#x", c.off, c.width.Sizeof(), want, c.want)
			}
		}
	}
}
