package maps

import (
	"errors"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

type fakeProg struct{ id uint32 }

func (p *fakeProg) ID() uint32 { return p.id }

func TestProgramArray_SetGetDelete(t *testing.T) {
	progs := map[uint32]*fakeProg{3: {id: 30}}
	m, err := New(&ebpf.MapSpec{Name: "jmp", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4,
		Contents: []ebpf.MapKV{{Key: uint32(0), Value: "tail_prog"}}},
		Options{ResolveProgram: func(fd uint32) (any, error) {
			if p, ok := progs[fd]; ok {
				return p, nil
			}
			return nil, syscall.EBADF
		}})
	if err != nil {
		t.Fatal(err)
	}
	pa := m.(*ProgramArray)
	if pa.Get(0) != nil {
		t.Error("contents (program names) were stored; the loader resolves them")
	}
	a := &fakeProg{id: 7}
	if err := pa.Set(1, a); err != nil {
		t.Fatal(err)
	}
	if pa.Get(1) != a || pa.Get(2) != nil || pa.Get(4) != nil || pa.Get(1<<31) != nil {
		t.Error("Get does not return what Set stored")
	}
	wantErrno(t, "Set out of range", pa.Set(4, a), syscall.E2BIG)
	wantErrno(t, "Set nil", pa.Set(2, nil), syscall.EINVAL)
	out := make([]byte, 4)
	if err := pa.Lookup(u32b(1), out); err != nil || u32b(7)[0] != out[0] {
		t.Errorf("Lookup = %x, %v; want the program ID 7", out, err)
	}
	if err := pa.Update(u32b(2), u32b(3), UpdateAny); err != nil {
		t.Fatal(err)
	}
	if pa.Get(2) != progs[3] {
		t.Error("Update did not store the resolved program")
	}
	if err := pa.Update(u32b(2), u32b(9), UpdateAny); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Update with an unknown handle: %v", err)
	}
	if err := pa.Set(3, "no id"); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "Lookup of a program without ID", pa.Lookup(u32b(3), out), ENOTSUPP)
	if err := pa.Delete(u32b(1)); err != nil {
		t.Fatal(err)
	}
	if pa.Get(1) != nil {
		t.Error("Get after Delete")
	}
	wantErrno(t, "Remove twice", pa.Remove(1), syscall.ENOENT)
	if err := pa.Freeze(); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "Set on a frozen map", pa.Set(1, a), syscall.EPERM)
}
