package maps_test

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/maps"
)

func TestMapOfMaps(t *testing.T) {
	innerSpec := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2}
	for _, typ := range []ebpf.MapType{ebpf.ArrayOfMaps, ebpf.HashOfMaps} {
		m, err := maps.New(&ebpf.MapSpec{Name: "outer", Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: 4, InnerMap: innerSpec}, maps.Options{NumCPU: 1})
		if err != nil {
			t.Fatal(err)
		}
		o := m.(*maps.MapOfMaps)
		a, _ := maps.New(innerSpec, maps.Options{NumCPU: 1})
		b, _ := maps.New(innerSpec, maps.Options{NumCPU: 1})
		other, _ := maps.New(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 2}, maps.Options{NumCPU: 1})
		k := func(i uint32) []byte { return binary.LittleEndian.AppendUint32(nil, i) }
		if err := o.Set(k(1), a, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
		if err := o.Set(k(2), b, maps.UpdateAny); err != nil {
			t.Fatal(err)
		}
		if err := o.Set(k(3), other, maps.UpdateAny); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: inner map unlike the template: %v", typ, err)
		}
		if err := o.Update(k(0), k(5), maps.UpdateAny); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: raw update: %v", typ, err)
		}
		if got, ok := o.Get(k(2)); !ok || got != b {
			t.Errorf("%s: Get(2) = %v, %v", typ, got, ok)
		}
		if got, ok := o.Get(k(0)); typ == ebpf.HashOfMaps && ok || typ == ebpf.ArrayOfMaps && (!ok || got != nil) {
			t.Errorf("%s: Get(0) = %v, %v", typ, got, ok)
		}
		id := make([]byte, 4)
		if err := o.Lookup(k(1), id); err != nil || binary.LittleEndian.Uint32(id) == 0 {
			t.Errorf("%s: Lookup(1) = % x, %v", typ, id, err)
		}
	}
}
