package maps

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

func u32b(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

func u64b(v uint64) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, v)
	return b
}

// lpmKey builds a struct bpf_lpm_trie_key_u8.
func lpmKey(plen uint32, data ...byte) []byte { return append(u32b(plen), data...) }

func mustNew(t testing.TB, spec *ebpf.MapSpec) Map {
	t.Helper()
	m, err := New(spec, Options{NumCPU: 2})
	if err != nil {
		t.Fatalf("New(%+v): %v", spec, err)
	}
	return m
}

// errnoOfErr extracts the errno an error wraps (0 for nil, all ones for
// none; Errno is 16 bits on wasip1).
func errnoOfErr(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return ^syscall.Errno(0)
}

// iterate walks NextKey from nil to ENOENT and returns every key; it
// fails after limit keys (an iteration that does not end).
func iterate(t testing.TB, m Map, limit int) [][]byte {
	t.Helper()
	var keys [][]byte
	var key []byte
	for {
		next := make([]byte, m.Info().KeySize)
		err := m.NextKey(key, next)
		if errnoOfErr(err) == syscall.ENOENT {
			return keys
		}
		if err != nil {
			t.Fatal(err)
		}
		if keys = append(keys, next); len(keys) > limit {
			t.Fatalf("iteration does not end after %d keys", limit)
		}
		key = next
	}
}

func wantErrno(t testing.TB, what string, err error, want syscall.Errno) {
	t.Helper()
	if got := errnoOfErr(err); got != want {
		t.Errorf("%s: got %v (%v), want errno %d (%v)", what, got, err, want, want)
	}
}
