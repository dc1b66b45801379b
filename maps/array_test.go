package maps

import (
	"bytes"
	"encoding/binary"
	"syscall"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

func TestArray_NextKey_FullIteration(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Array, ebpf.PerCPUArray, ebpf.ProgramArray, ebpf.PerfEventArray} {
		t.Run(typ.String(), func(t *testing.T) {
			n := uint32(7)
			if typ == ebpf.PerfEventArray {
				n = 2 // clamped to the CPUs
			}
			m := mustNew(t, &ebpf.MapSpec{Name: "a", Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: n})
			var got []uint32
			for _, k := range iterate(t, m, int(n)) {
				got = append(got, binary.NativeEndian.Uint32(k))
			}
			if len(got) != int(n) {
				t.Fatalf("got %d keys %v, want %d", len(got), got, n)
			}
			for i, k := range got {
				if k != uint32(i) {
					t.Fatalf("keys %v are not 0..%d in order", got, n-1)
				}
			}
		})
	}
}

func TestArray_Slots_EngineAPI(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "a", Type: ebpf.Array, KeySize: 4, ValueSize: 12, MaxEntries: 3}).(*Array)
	if m.Stride() != 16 || m.ValueSize() != 12 || m.NumCPU() != 1 {
		t.Fatalf("stride %d value size %d cpus %d", m.Stride(), m.ValueSize(), m.NumCPU())
	}
	mem := m.Slots(0)
	if len(mem) != 3*16 || uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		t.Fatalf("slots: len %d, address %p not 8-byte aligned", len(mem), &mem[0])
	}
	v := []byte("hello world!")
	if ret := m.UpdateElem(u32b(2), v, UpdateAny, 0); ret != 0 {
		t.Fatalf("UpdateElem: %d", ret)
	}
	slot, ok := m.LookupSlot(u32b(2), 0)
	if !ok || slot != 2 {
		t.Fatalf("LookupSlot = %d, %v", slot, ok)
	}
	if got := mem[slot*16 : slot*16+12]; !bytes.Equal(got, v) {
		t.Fatalf("slot memory %q, want %q", got, v)
	}
	// A program's store through its pointer is what userspace reads.
	mem[slot*16] = 'J'
	out := make([]byte, 12)
	if err := m.Lookup(u32b(2), out); err != nil || string(out) != "Jello world!" {
		t.Fatalf("Lookup = %q, %v", out, err)
	}
	if _, ok := m.LookupSlot(u32b(3), 0); ok {
		t.Error("LookupSlot(3) found a slot beyond max_entries")
	}
	for _, tc := range []struct {
		key   uint32
		flags uint64
		want  int64
	}{
		{0, UpdateNoExist, -linuxerr.EEXIST},
		{3, UpdateAny, -linuxerr.E2BIG},
		{0, 3, -linuxerr.EINVAL},
		{0, UpdateExist, 0},
	} {
		if got := m.UpdateElem(u32b(tc.key), v, tc.flags, 0); got != tc.want {
			t.Errorf("UpdateElem(%d, flags %d) = %d, want %d", tc.key, tc.flags, got, tc.want)
		}
	}
	if got := m.DeleteElem(u32b(0), 0); got != -linuxerr.EINVAL {
		t.Errorf("DeleteElem = %d, want -EINVAL", got)
	}
	if got := m.UpdateElem(u32b(0), v[:3], UpdateAny, 0); got != -linuxerr.EINVAL {
		t.Errorf("UpdateElem with a short value = %d, want -EINVAL", got)
	}
}

func TestPerCPUArray_UpdateElem_TouchesOnlyItsCPU(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "a", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 2}).(*Array)
	if ret := m.UpdateElem(u32b(1), u32b(7), UpdateAny, 1); ret != 0 {
		t.Fatal(ret)
	}
	out := make([]byte, 16)
	if err := m.Lookup(u32b(1), out); err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, 8), u32b(7)...)
	want = append(want, 0, 0, 0, 0)
	if !bytes.Equal(out, want) {
		t.Fatalf("values %x, want %x", out, want)
	}
	if got := m.UpdateElem(u32b(1), u32b(7), UpdateAny, 2); got != -linuxerr.EINVAL {
		t.Errorf("UpdateElem on a CPU the map lacks = %d, want -EINVAL", got)
	}
	if m.Slots(2) != nil {
		t.Error("Slots of a missing CPU is not nil")
	}
}

func TestNew_GlobalData(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5}
	rodata := mustNew(t, &ebpf.MapSpec{Name: ".rodata", Type: ebpf.Array, KeySize: 4, ValueSize: 5, MaxEntries: 1,
		Flags: FlagRdonlyProg, Contents: []ebpf.MapKV{{Key: uint32(0), Value: data}}}).(*Array)
	if !rodata.Info().Frozen {
		t.Error(".rodata is not frozen")
	}
	if got := rodata.Slots(0)[:5]; !bytes.Equal(got, data) {
		t.Errorf(".rodata holds %x, want %x", got, data)
	}
	wantErrno(t, "update .rodata", rodata.Update(u32b(0), data, UpdateAny), syscall.EPERM)
	if got := rodata.UpdateElem(u32b(0), data, UpdateAny, 0); got != -linuxerr.EACCES {
		t.Errorf("program update of a BPF_F_RDONLY_PROG map = %d, want -EACCES", got)
	}

	bss := mustNew(t, &ebpf.MapSpec{Name: ".bss", Type: ebpf.Array, KeySize: 4, ValueSize: 5, MaxEntries: 1,
		Contents: []ebpf.MapKV{{Key: uint32(0), Value: make([]byte, 5)}}}).(*Array)
	if bss.Info().Frozen {
		t.Error(".bss is frozen")
	}
	if got := bss.UpdateElem(u32b(0), data, UpdateAny, 0); got != 0 {
		t.Errorf("program update of .bss = %d", got)
	}

	_, err := New(&ebpf.MapSpec{Name: ".data", Type: ebpf.Array, KeySize: 4, ValueSize: 5, MaxEntries: 1,
		Contents: []ebpf.MapKV{{Key: uint32(0), Value: []byte{1}}}}, Options{})
	wantErrno(t, "contents of the wrong size", err, syscall.EINVAL)
	_, err = New(&ebpf.MapSpec{Name: "h", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1,
		Contents: []ebpf.MapKV{{Key: uint16(1), Value: uint64(1)}}}, Options{})
	wantErrno(t, "contents key of the wrong size", err, syscall.EINVAL)

	h := mustNew(t, &ebpf.MapSpec{Name: "h", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 2,
		Contents: []ebpf.MapKV{{Key: uint32(7), Value: uint64(42)}}})
	out := make([]byte, 8)
	if err := h.Lookup(u32b(7), out); err != nil || binary.NativeEndian.Uint64(out) != 42 {
		t.Errorf("contents: Lookup = %x, %v", out, err)
	}
}
