package engine_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/tcxgo/tcx/engine"
	"github.com/tcxgo/tcx/maps"
)

// Two collections given the same map share it: a count one program makes
// is visible through the other, as with maps pinned by name.
func TestMapReplacements_Shared(t *testing.T) {
	first, err := engine.LoadCollection("../testdata/progs/dp_acl.o", engine.Options{NumCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	shared := first.Maps["dp_acl_hits"]
	spec, err := engine.LoadCollectionSpec("../testdata/progs/dp_acl.o")
	if err != nil {
		t.Fatal(err)
	}
	second, err := engine.NewCollection(spec, engine.Options{NumCPU: 1, MapReplacements: map[string]maps.Map{"dp_acl_hits": shared}})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.Maps["dp_acl_hits"] != shared {
		t.Fatal("replacement not used")
	}
	key, val := make([]byte, 4), []byte{7, 0, 0, 0, 0, 0, 0, 0}
	if err := second.Maps["dp_acl_hits"].Update(key, val, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if err := shared.Lookup(key, got); err != nil || got[0] != 7 {
		t.Fatalf("shared value %v, %v", got, err)
	}

	// An incompatible map is refused with EINVAL.
	_, err = engine.NewCollection(spec, engine.Options{NumCPU: 1, MapReplacements: map[string]maps.Map{"dp_acl_hits": first.Maps[".rodata"]}})
	if !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("incompatible replacement: %v, want EINVAL", err)
	}
}
