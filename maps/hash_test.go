package maps

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

func newHashT(t testing.TB, typ ebpf.MapType, keySize, valueSize, max uint32) *Hash {
	t.Helper()
	return mustNew(t, &ebpf.MapSpec{Name: "h", Type: typ, KeySize: keySize, ValueSize: valueSize, MaxEntries: max}).(*Hash)
}

// TestHash_Model runs random operations against the map and a plain Go map
// and compares every result. Narrow hash masks force long sorted chains and
// full-hash collisions, so the key comparison order is exercised too.
func TestHash_Model(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keyS  uint32
		hmask uint64
		bmask uint64 // bucket mask override; ^0 keeps the default
	}{
		{"key3", 3, ^uint64(0), ^uint64(0)},
		{"key12", 12, ^uint64(0), ^uint64(0)},
		{"key12/one bucket", 12, ^uint64(0), 0},
		{"key3/colliding hashes", 3, 1, ^uint64(0)},
		{"key9/colliding hashes", 9, 3, ^uint64(0)},
		{"key16/colliding hashes one bucket", 16, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const max = 64
			h := newHashT(t, ebpf.Hash, tc.keyS, 6, max)
			h.ix.hmask = tc.hmask
			if tc.bmask != ^uint64(0) {
				h.ix.mask = tc.bmask
			}
			model := map[string][]byte{}
			rng := rand.New(rand.NewPCG(1, uint64(tc.keyS)))
			key := func() []byte {
				k := make([]byte, tc.keyS)
				// 100 candidate keys for 64 slots, differing in the first
				// and in the last (possibly partial) key word.
				k[0] = byte(rng.IntN(10))
				k[tc.keyS-1] ^= byte(rng.IntN(10)) << 4
				return k
			}
			for i := 0; i < 20000; i++ {
				k := key()
				old, exists := model[string(k)]
				switch op := rng.IntN(6); op {
				case 0, 1: // update, userspace or program
					v := make([]byte, 6)
					binary.NativeEndian.PutUint32(v, uint32(i))
					flags := uint64(rng.IntN(3))
					want := syscall.Errno(0)
					switch {
					case flags == UpdateNoExist && exists:
						want = syscall.EEXIST
					case flags == UpdateExist && !exists:
						want = syscall.ENOENT
					case !exists && len(model) == max:
						want = syscall.E2BIG
					}
					var err error
					if op == 0 {
						err = h.Update(k, v, flags)
					} else {
						err = errnoOf("update", h.UpdateElem(k, v, flags, 0))
					}
					wantErrno(t, fmt.Sprintf("op %d update %x flags %d", i, k, flags), err, want)
					if want == 0 {
						model[string(k)] = v
					}
				case 2: // delete
					want := syscall.Errno(0)
					if !exists {
						want = syscall.ENOENT
					}
					wantErrno(t, fmt.Sprintf("op %d delete %x", i, k), h.Delete(k), want)
					delete(model, string(k))
				case 3: // lookup, both ways
					out := make([]byte, 6)
					err := h.Lookup(k, out)
					slot, ok := h.LookupSlot(k, 0)
					if exists != (err == nil) || exists != ok {
						t.Fatalf("op %d lookup %x: exists %v, Lookup err %v, LookupSlot %v", i, k, exists, err, ok)
					}
					if exists && (!bytes.Equal(out, old) || !bytes.Equal(h.Slots(0)[slot*8:slot*8+6], old)) {
						t.Fatalf("op %d lookup %x: got %x / %x, want %x", i, k, out, h.Slots(0)[slot*8:slot*8+6], old)
					}
				case 4: // lookup and delete
					out := make([]byte, 6)
					err := h.LookupAndDelete(k, out)
					if exists != (err == nil) || (exists && !bytes.Equal(out, old)) {
						t.Fatalf("op %d lookup-and-delete %x: err %v value %x, model %v %x", i, k, err, out, exists, old)
					}
					delete(model, string(k))
				case 5:
					if i%50 == 0 {
						checkIteration(t, h, model)
					}
				}
				if h.Len() != len(model) {
					t.Fatalf("op %d: Len %d, model has %d", i, h.Len(), len(model))
				}
			}
			checkIteration(t, h, model)
		})
	}
}

// checkIteration walks NextKey from nil and wants every key exactly once.
func checkIteration(t *testing.T, m Map, model map[string][]byte) {
	t.Helper()
	seen := map[string]bool{}
	for _, next := range iterate(t, m, len(model)+1) {
		if seen[string(next)] {
			t.Fatalf("NextKey returned %x twice", next)
		}
		seen[string(next)] = true
		if _, ok := model[string(next)]; !ok {
			t.Fatalf("NextKey returned %x, which is not in the map", next)
		}
	}
	if len(seen) != len(model) {
		t.Fatalf("iteration saw %d keys, map has %d", len(seen), len(model))
	}
}

func TestHash_NextKey_FullMap(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			const max = 1000
			h := newHashT(t, typ, 8, 8, max)
			model := map[string][]byte{}
			v := make([]byte, h.userValueSize())
			for i := uint64(0); i < max; i++ {
				k := u64b(i * 7919)
				if err := h.Update(k, v, UpdateNoExist); err != nil {
					t.Fatalf("update %d: %v", i, err)
				}
				model[string(k)] = v
			}
			checkIteration(t, h, model)
			// A missing key restarts at the first key.
			first, again := make([]byte, 8), make([]byte, 8)
			if err := h.NextKey(nil, first); err != nil {
				t.Fatal(err)
			}
			if err := h.NextKey(u64b(3), again); err != nil || !bytes.Equal(first, again) {
				t.Fatalf("NextKey(missing) = %x, %v; want the first key %x", again, err, first)
			}
		})
	}
}

func TestPerCPUHash_UpdateElem(t *testing.T) {
	h := newHashT(t, ebpf.PerCPUHash, 4, 4, 4)
	if ret := h.UpdateElem(u32b(1), u32b(0xaa), UpdateAny, 1); ret != 0 {
		t.Fatal(ret)
	}
	out := make([]byte, 16)
	if err := h.Lookup(u32b(1), out); err != nil {
		t.Fatal(err)
	}
	// A new element is zero on the other CPUs.
	if want := append(make([]byte, 8), append(u32b(0xaa), 0, 0, 0, 0)...); !bytes.Equal(out, want) {
		t.Fatalf("values %x, want %x", out, want)
	}
	// Updating an existing element changes only this CPU's copy.
	if err := h.Update(u32b(1), bytes.Repeat([]byte{1}, 16), UpdateAny); err != nil {
		t.Fatal(err)
	}
	if ret := h.UpdateElem(u32b(1), u32b(0xbb), UpdateExist, 0); ret != 0 {
		t.Fatal(ret)
	}
	slot, ok := h.LookupSlot(u32b(1), 0)
	if !ok {
		t.Fatal("LookupSlot: not found")
	}
	if got := binary.NativeEndian.Uint32(h.Slots(0)[slot*8:]); got != 0xbb {
		t.Errorf("cpu 0 value %#x, want 0xbb", got)
	}
	if got := binary.NativeEndian.Uint32(h.Slots(1)[slot*8:]); got != 0x01010101 {
		t.Errorf("cpu 1 value %#x, want 0x01010101", got)
	}
	if ret := h.UpdateElem(u32b(2), u32b(1), UpdateAny, 2); ret != -linuxerr.EINVAL {
		t.Errorf("UpdateElem on a missing CPU = %d, want -EINVAL", ret)
	}
}

func TestHash_EngineErrno(t *testing.T) {
	h := newHashT(t, ebpf.Hash, 4, 4, 1)
	for i, tc := range []struct {
		op    byte
		key   uint32
		flags uint64
		want  int64 // 0 or a negative Linux errno
	}{
		{'u', 1, UpdateExist, -linuxerr.ENOENT},
		{'u', 1, UpdateNoExist, 0},
		{'u', 1, UpdateNoExist, -linuxerr.EEXIST},
		{'u', 2, UpdateAny, -linuxerr.E2BIG},
		{'u', 1, 3, -linuxerr.EINVAL},
		{'u', 1, UpdateLock, -linuxerr.EINVAL},
		{'d', 2, 0, -linuxerr.ENOENT},
		{'d', 1, 0, 0},
		{'d', 1, 0, -linuxerr.ENOENT},
		{'u', 2, UpdateAny, 0},
	} {
		var ret int64
		if tc.op == 'u' {
			ret = h.UpdateElem(u32b(tc.key), u32b(9), tc.flags, 0)
		} else {
			ret = h.DeleteElem(u32b(tc.key), 0)
		}
		if ret != tc.want {
			t.Errorf("step %d %c(%d, %d) = %d, want %d", i, tc.op, tc.key, tc.flags, ret, tc.want)
		}
	}
	ro := mustNew(t, &ebpf.MapSpec{Name: "ro", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: FlagRdonlyProg}).(*Hash)
	if ret := ro.UpdateElem(u32b(1), u32b(1), UpdateAny, 0); ret != -linuxerr.EACCES {
		t.Errorf("UpdateElem on BPF_F_RDONLY_PROG = %d, want -EACCES", ret)
	}
}

func TestLRUHash_EvictsUnreferenced(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.LRUHash, ebpf.LRUCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			const n = 64
			h := newHashT(t, typ, 4, 4, n)
			v := make([]byte, h.userValueSize())
			for i := uint32(0); i < n; i++ {
				if err := h.Update(u32b(i), v, UpdateAny); err != nil {
					t.Fatal(err)
				}
			}
			for i := uint32(1); i < n; i += 2 { // programs use the odd keys
				if _, ok := h.LookupSlot(u32b(i), 0); !ok {
					t.Fatalf("key %d missing", i)
				}
			}
			for i := uint32(n); i < n+n/2; i++ {
				if ret := h.UpdateElem(u32b(i), v[:4], UpdateAny, 0); ret != 0 {
					t.Fatalf("insert %d into a full LRU map: %d", i, ret)
				}
			}
			if h.Len() != n {
				t.Fatalf("Len %d, want %d", h.Len(), n)
			}
			for i := uint32(1); i < n; i += 2 {
				if _, ok := h.LookupSlot(u32b(i), 0); !ok {
					t.Errorf("recently used key %d was evicted", i)
				}
			}
			for i := uint32(n); i < n+n/2; i++ {
				if _, ok := h.LookupSlot(u32b(i), 0); !ok {
					t.Errorf("new key %d is missing", i)
				}
			}
			// An LRU map never reports E2BIG.
			for i := uint32(1000); i < 1000+3*n; i++ {
				if err := h.Update(u32b(i), v, UpdateNoExist); err != nil {
					t.Fatalf("update %d: %v", i, err)
				}
			}
			if h.Len() != n {
				t.Fatalf("Len %d after churn, want %d", h.Len(), n)
			}
		})
	}
}

func TestLRUHash_NoCommonLRURoundsEntries(t *testing.T) {
	m, err := New(&ebpf.MapSpec{Name: "l", Type: ebpf.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 5, Flags: FlagNoCommonLRU}, Options{NumCPU: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Info().MaxEntries; got != 8 {
		t.Errorf("MaxEntries %d, want 8 (a multiple of 4 CPUs)", got)
	}
}
