package vm_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

func TestAddressSpace_Map_Rejects(t *testing.T) {
	as := vm.NewAddressSpace()
	for name, r := range map[string]vm.Region{
		"negative stride":         {Data: make([]byte, 8), Stride: -1},
		"slot larger than stride": {Data: make([]byte, 16), Stride: 8, SlotSize: 9},
		"slot without stride":     {Data: make([]byte, 8), SlotSize: 4},
		"ragged slots":            {Data: make([]byte, 10), Stride: 4},
	} {
		if _, err := as.Map(r); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: err = %v, want EINVAL", name, err)
		}
	}
}

func TestAddressSpace_Unmap(t *testing.T) {
	as := vm.NewAddressSpace()
	a, err := as.Map(vm.Region{Data: []byte{7}})
	if err != nil {
		t.Fatal(err)
	}
	p := load(t, asm.Instructions{imm64(asm.R1, a), asm.LoadMem(asm.R0, asm.R1, 0, asm.Byte), asm.Return()}, vm.Options{AddressSpace: as})
	m := vm.NewMachine()
	if v, err := m.Run(p); err != nil || v != 7 {
		t.Fatalf("r0 = %d, %v", v, err)
	}
	if err := as.Unmap(a); err != nil {
		t.Fatal(err)
	}
	// The next run sees the region gone.
	var f *vm.Fault
	if _, err := m.Run(p); !errors.As(err, &f) || f.Kind != vm.FaultUnmapped {
		t.Errorf("after Unmap: err = %v", err)
	}
	if err := as.Unmap(a); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("second Unmap: %v, want ENOENT", err)
	}
	if err := as.Unmap(a + 4); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Unmap of an inner address: %v, want EINVAL", err)
	}
	if err := as.Unmap(vm.CtxAddr); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Unmap of the context: %v, want EINVAL", err)
	}
	// Unmapped ids are reused, with the new region's rules.
	b, err := as.Map(vm.Region{Data: []byte{9}, ReadOnly: true})
	if err != nil || b != a {
		t.Fatalf("Map after Unmap = %#x, %v; want the id %#x again", b, err, a)
	}
	if v, err := m.Run(p); err != nil || v != 9 {
		t.Errorf("r0 = %d, %v", v, err)
	}
}

func TestAddressSpace_Object(t *testing.T) {
	as := vm.NewAddressSpace()
	h := as.NewHandle(42)
	mem, _ := as.Map(vm.Region{Data: make([]byte, 8)})
	if obj, ok := as.Object(h); !ok || obj != 42 {
		t.Errorf("Object(handle) = %v, %v", obj, ok)
	}
	for _, addr := range []uint64{h + 1, mem, 0, vm.CtxAddr, h + 1<<40} {
		if obj, ok := as.Object(addr); ok {
			t.Errorf("Object(%#x) = %v, want nothing", addr, obj)
		}
	}
	if err := as.Unmap(h); err != nil {
		t.Fatal(err)
	}
	if _, ok := as.Object(h); ok {
		t.Error("Object of an unmapped handle")
	}
}

func TestErrors_Messages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&vm.Fault{PC: 3, Addr: 0x10, Size: 4, Kind: vm.FaultUnmapped}, "vm: insn 3: read of 4 bytes at NULL+16: unmapped address"},
		{&vm.Fault{PC: 1, Addr: 0x2_0000_0004, Size: 2, Write: true, Kind: vm.FaultCtxAccess}, "write of 2 bytes at 0x200000004: context access denied"},
		{&vm.Fault{PC: 2, Addr: 77, Kind: vm.FaultBadCall}, "vm: insn 2: bad call target (0x4d)"},
		{&vm.Fault{PC: 7, Size: 4, Space: vm.SpacePacket, Off: 60, Len: 60, Kind: vm.FaultOutOfBounds, Source: "nat.c:12 ip->ttl--"},
			"vm: insn 7 (nat.c:12 ip->ttl--): read of 4 bytes at packet offset 60 (the packet is 60 bytes): out of bounds"},
		{&vm.Fault{PC: 8, Size: 8, Write: true, Space: vm.SpaceMapValue, Map: "flows", Slot: 3, Off: 16, Len: 16, Kind: vm.FaultSlot},
			`write of 8 bytes at offset 16 of value 3 of map "flows" (values are 16 bytes): crosses map value slot`},
		{&vm.Fault{PC: -1, Kind: vm.FaultPanic, Panic: "boom"}, "internal panic: boom"},
		{&vm.LimitError{PC: 4, Limit: 10, Executed: 11}, "vm: insn 4: 11 instructions executed, limit 10"},
		{&vm.HelperError{PC: 5, Helper: asm.FnMapLookupElem, Err: errors.New("nope")}, "vm: insn 5: helper FnMapLookupElem: nope"},
		{&vm.ValidationError{Insn: 2, Index: 2, Reason: "r", Errno: syscall.EINVAL}, "load program: insn 2: r"},
	} {
		if got := tc.err.Error(); !strings.Contains(got, tc.want) {
			t.Errorf("%q does not contain %q", got, tc.want)
		}
	}
	for k := vm.FaultUnmapped; k <= vm.FaultPanic; k++ {
		if s := k.String(); strings.HasPrefix(s, "FaultKind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if !errors.Is(&vm.HelperError{Err: syscall.ENOMEM}, syscall.ENOMEM) {
		t.Error("HelperError does not unwrap")
	}
}
