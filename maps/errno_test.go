package maps

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

// The expectations below are the kernel's (kernel/bpf/arraymap.c,
// hashtab.c, lpm_trie.c, ringbuf.c, syscall.c); they were cross-checked
// request by request against Linux 6.18 with raw bpf(2) calls.

func TestNew_Validation(t *testing.T) {
	const (
		noPrealloc = FlagNoPrealloc
	)
	for _, tc := range []struct {
		name string
		spec ebpf.MapSpec
		want syscall.Errno
	}{
		{"array", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4}, 0},
		{"array key 8", ebpf.MapSpec{Type: ebpf.Array, KeySize: 8, ValueSize: 8, MaxEntries: 4}, syscall.EINVAL},
		{"array value 0", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 0, MaxEntries: 4}, syscall.EINVAL},
		{"array entries 0", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4}, syscall.EINVAL},
		{"array no prealloc", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: noPrealloc}, syscall.EINVAL},
		{"array mmapable", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: FlagMmapable}, 0},
		{"percpu array mmapable", ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: FlagMmapable}, syscall.EINVAL},
		{"percpu array 32768", ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 32768, MaxEntries: 1}, 0},
		{"percpu array 32769", ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 32769, MaxEntries: 1}, syscall.E2BIG},
		{"array rdonly+wronly prog", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: FlagRdonlyProg | FlagWronlyProg}, syscall.EINVAL},
		{"array rdonly+wronly", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: FlagRdonly | FlagWronly}, syscall.EINVAL},
		{"array preserve elems", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: FlagPreserveElem}, syscall.EINVAL},
		{"array too big", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 1 << 20, MaxEntries: 1 << 20}, syscall.ENOMEM},
		{"hash odd sizes", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 3, ValueSize: 5, MaxEntries: 4}, 0},
		{"hash key 0", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 0, ValueSize: 5, MaxEntries: 4}, syscall.EINVAL},
		{"hash value 0", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 0, MaxEntries: 4}, syscall.EINVAL},
		{"hash entries 0", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4}, syscall.EINVAL},
		{"hash no common lru", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: FlagNoCommonLRU}, syscall.EINVAL},
		{"hash no prealloc", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: noPrealloc}, 0},
		{"lru no prealloc", ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: noPrealloc}, ENOTSUPP},
		{"hash unknown flag", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: 1 << 9}, syscall.EINVAL},
		{"hash key 1024", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 1024, ValueSize: 4, MaxEntries: 4}, 0},
		{"hash key 4M", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4 << 20, ValueSize: 4, MaxEntries: 4}, syscall.E2BIG},
		{"percpu hash 32769", ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 32769, MaxEntries: 4}, syscall.E2BIG},
		{"hash 2^31+1 entries", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1<<31 + 1}, syscall.E2BIG},
		{"hash numa", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: FlagNumaNode}, 0},
		{"lru percpu numa", ebpf.MapSpec{Type: ebpf.LRUCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: FlagNumaNode}, syscall.EINVAL},
		{"lpm", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 16, Flags: noPrealloc}, 0},
		{"lpm prealloc", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 16}, syscall.EINVAL},
		{"lpm key 4", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 4, ValueSize: 4, MaxEntries: 16, Flags: noPrealloc}, syscall.EINVAL},
		{"lpm key 260", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 260, ValueSize: 4, MaxEntries: 16, Flags: noPrealloc}, 0},
		{"lpm key 261", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 261, ValueSize: 4, MaxEntries: 16, Flags: noPrealloc}, syscall.EINVAL},
		{"lpm value 0", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 0, MaxEntries: 16, Flags: noPrealloc}, syscall.EINVAL},
		{"ringbuf", ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096}, 0},
		{"ringbuf 4095", ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4095}, syscall.EINVAL},
		{"ringbuf 12288", ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 12288}, syscall.EINVAL},
		{"ringbuf 2048", ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 2048}, syscall.EINVAL},
		{"ringbuf key", ebpf.MapSpec{Type: ebpf.RingBuf, KeySize: 4, MaxEntries: 4096}, syscall.EINVAL},
		{"ringbuf flag", ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096, Flags: noPrealloc}, syscall.EINVAL},
		{"prog array", ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4}, 0},
		{"prog array value 8", ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}, syscall.EINVAL},
		{"prog array rdonly prog", ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: FlagRdonlyProg}, syscall.EINVAL},
		{"perf event array", ebpf.MapSpec{Type: ebpf.PerfEventArray}, 0},
		{"perf event array preserve", ebpf.MapSpec{Type: ebpf.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, Flags: FlagPreserveElem}, 0},
		{"map extra", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4, MapExtra: 1}, syscall.EINVAL},
		{"numa node 1", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4, Flags: FlagNumaNode, NumaNode: 1}, syscall.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Name = "m"
			_, err := New(&spec, Options{NumCPU: 2})
			wantErrno(t, "New", err, tc.want)
		})
	}
}

func TestNew_UnsupportedTypeNamesType(t *testing.T) {
	_, err := New(&ebpf.MapSpec{Name: "st", Type: ebpf.StackTrace, KeySize: 4, ValueSize: 8, MaxEntries: 4}, Options{})
	wantErrno(t, "New", err, syscall.EOPNOTSUPP)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("StackTrace")) {
		t.Errorf("error %q does not name the map type", err)
	}
}

// step is one bpf(2) map command and the errno (and value) it must give.
type step struct {
	op    byte // u(pdate) l(ookup) d(elete) n(ext key) x (lookup and delete) f(reeze)
	key   []byte
	val   []byte // update: the value; others: the expected output (nil: unchecked)
	flags uint64
	vlen  int
	want  syscall.Errno
}

func runSteps(t *testing.T, m Map, steps []step) {
	t.Helper()
	for i, st := range steps {
		out := make([]byte, st.vlen)
		var err error
		switch st.op {
		case 'u':
			err = m.Update(st.key, st.val, st.flags)
		case 'l':
			err = m.Lookup(st.key, out)
		case 'd':
			err = m.Delete(st.key)
		case 'n':
			err = m.NextKey(st.key, out)
		case 'x':
			err = m.LookupAndDelete(st.key, out)
		case 'f':
			err = m.Freeze()
		}
		wantErrno(t, fmt.Sprintf("step %d (%c key %x)", i, st.op, st.key), err, st.want)
		if st.op != 'u' && st.val != nil && err == nil && !bytes.Equal(out, st.val) {
			t.Errorf("step %d (%c key %x): got %x, want %x", i, st.op, st.key, out, st.val)
		}
	}
}

func TestArray_Errno(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "a", Type: ebpf.Array, KeySize: 4, ValueSize: 6, MaxEntries: 3})
	v := []byte{1, 2, 3, 4, 5, 6}
	runSteps(t, m, []step{
		{op: 'l', key: u32b(0), vlen: 6, val: make([]byte, 6)},
		{op: 'l', key: u32b(3), vlen: 6, want: syscall.ENOENT},
		{op: 'u', key: u32b(1), val: v},
		{op: 'l', key: u32b(1), vlen: 6, val: v},
		{op: 'u', key: u32b(1), val: v, flags: UpdateNoExist, want: syscall.EEXIST},
		{op: 'u', key: u32b(1), val: []byte{9, 2, 3, 4, 5, 6}, flags: UpdateExist},
		{op: 'l', key: u32b(1), vlen: 6, val: []byte{9, 2, 3, 4, 5, 6}},
		{op: 'u', key: u32b(3), val: v, want: syscall.E2BIG},
		{op: 'u', key: u32b(3), val: v, flags: UpdateNoExist, want: syscall.E2BIG},
		{op: 'u', key: u32b(1), val: v, flags: 3, want: syscall.EINVAL},
		{op: 'u', key: u32b(1), val: v, flags: UpdateLock, want: syscall.EINVAL},
		{op: 'u', key: u32b(5), val: v, flags: 3, want: syscall.EINVAL},
		{op: 'u', key: u32b(1), val: v[:5], want: syscall.EINVAL},
		{op: 'u', key: []byte{1}, val: v, want: syscall.EINVAL},
		{op: 'd', key: u32b(1), want: syscall.EINVAL},
		{op: 'd', key: u32b(7), want: syscall.EINVAL},
		{op: 'n', vlen: 4, val: u32b(0)},
		{op: 'n', key: u32b(0), vlen: 4, val: u32b(1)},
		{op: 'n', key: u32b(2), vlen: 4, want: syscall.ENOENT},
		{op: 'n', key: u32b(9), vlen: 4, val: u32b(0)},
		{op: 'x', key: u32b(1), vlen: 6, want: ENOTSUPP},
		{op: 'f'},
		{op: 'f', want: syscall.EPERM},
		{op: 'u', key: u32b(1), val: v, want: syscall.EPERM},
		{op: 'd', key: u32b(1), want: syscall.EPERM},
		{op: 'l', key: u32b(1), vlen: 6, val: []byte{9, 2, 3, 4, 5, 6}},
		{op: 'x', key: u32b(1), vlen: 6, want: syscall.EPERM},
	})
}

func TestPerCPUArray_Errno(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "a", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	// Two CPUs, values padded to 8 bytes each, as the syscall lays them out.
	v := []byte{1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0}
	runSteps(t, m, []step{
		{op: 'u', key: u32b(1), val: v},
		{op: 'l', key: u32b(1), vlen: 16, val: v},
		{op: 'l', key: u32b(1), vlen: 4, want: syscall.EINVAL},
		{op: 'u', key: u32b(1), val: make([]byte, 16), flags: UpdateNoExist, want: syscall.EEXIST},
		{op: 'u', key: u32b(1), val: make([]byte, 16), flags: 3, want: syscall.EINVAL},
		{op: 'u', key: u32b(1), val: make([]byte, 16), flags: UpdateLock, want: syscall.EINVAL},
		{op: 'u', key: u32b(2), val: make([]byte, 16), want: syscall.E2BIG},
		{op: 'l', key: u32b(2), vlen: 16, want: syscall.ENOENT},
	})
}

func TestHash_Errno(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.LRUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m := mustNew(t, &ebpf.MapSpec{Name: "h", Type: typ, KeySize: 3, ValueSize: 5, MaxEntries: 4})
			k := func(b byte) []byte { return []byte{1, 2, b} }
			v := func(b byte) []byte { return []byte{b, 1, 1, 1, 1} }
			steps := []step{
				{op: 'l', key: k(3), vlen: 5, want: syscall.ENOENT},
				{op: 'd', key: k(3), want: syscall.ENOENT},
				{op: 'n', vlen: 3, want: syscall.ENOENT},
				{op: 'u', key: k(3), val: v(1), flags: UpdateExist, want: syscall.ENOENT},
				{op: 'u', key: k(3), val: v(1), flags: UpdateNoExist},
				{op: 'u', key: k(3), val: v(2), flags: UpdateNoExist, want: syscall.EEXIST},
				{op: 'u', key: k(3), val: v(3), flags: UpdateExist},
				{op: 'l', key: k(3), vlen: 5, val: v(3)},
				{op: 'u', key: k(4), val: v(4)},
				{op: 'u', key: k(5), val: v(5), flags: 3, want: syscall.EINVAL},
				{op: 'u', key: k(5), val: v(5), flags: UpdateLock, want: syscall.EINVAL},
				{op: 'u', key: k(5), val: v(5)},
				{op: 'u', key: k(6), val: v(6)},
				{op: 'u', key: k(6), val: v(8)}, // full, but k(6) exists
				{op: 'l', key: k(6), vlen: 5, val: v(8)},
				{op: 'n', key: []byte{9, 9, 9}, vlen: 3}, // missing key: first key
				{op: 'x', key: k(3), vlen: 5, val: v(3)},
				{op: 'x', key: k(3), vlen: 5, want: syscall.ENOENT},
				{op: 'l', key: k(3), vlen: 5, want: syscall.ENOENT},
				{op: 'd', key: k(4)},
				{op: 'd', key: k(4), want: syscall.ENOENT},
				{op: 'f'},
				{op: 'u', key: k(7), val: v(7), want: syscall.EPERM},
				{op: 'l', key: k(5), vlen: 5, val: v(5)},
				{op: 'x', key: k(5), vlen: 5, want: syscall.EPERM},
			}
			if typ == ebpf.Hash {
				// A full hash map refuses new keys; an LRU map evicts instead.
				steps = append(steps[:14:14], append([]step{{op: 'u', key: k(7), val: v(7), want: syscall.E2BIG}}, steps[14:]...)...)
			}
			runSteps(t, m, steps)
		})
	}
}

func TestPerCPUHash_Errno(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "h", Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	v := []byte{1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0}
	runSteps(t, m, []step{
		{op: 'u', key: u32b(1), val: v},
		{op: 'l', key: u32b(1), vlen: 16, val: v},
		{op: 'u', key: u32b(1), val: make([]byte, 16), flags: UpdateNoExist, want: syscall.EEXIST},
		{op: 'u', key: u32b(1), val: make([]byte, 16), flags: 3, want: syscall.EINVAL},
		{op: 'u', key: u32b(1), val: make([]byte, 16), flags: UpdateLock, want: syscall.EINVAL},
		{op: 'u', key: u32b(2), val: make([]byte, 16)},
		{op: 'u', key: u32b(3), val: make([]byte, 16), want: syscall.E2BIG},
		{op: 'x', key: u32b(1), vlen: 16, val: v},
		{op: 'u', key: u32b(3), val: v, flags: UpdateNoExist},
	})
}

func TestLPMTrie_Errno(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "l", Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 3, Flags: FlagNoPrealloc})
	runSteps(t, m, []step{
		{op: 'l', key: lpmKey(32, 10, 0, 0, 1), vlen: 4, want: syscall.ENOENT},
		{op: 'n', vlen: 8, want: syscall.ENOENT},
		{op: 'u', key: lpmKey(8, 10, 0, 0, 0), val: u32b(8)},
		{op: 'u', key: lpmKey(16, 10, 1, 0, 0), val: u32b(16), flags: UpdateNoExist},
		{op: 'u', key: lpmKey(16, 10, 1, 0, 0), val: u32b(16), flags: UpdateNoExist, want: syscall.EEXIST},
		{op: 'u', key: lpmKey(24, 10, 1, 2, 0), val: u32b(24), flags: UpdateExist, want: syscall.ENOENT},
		{op: 'u', key: lpmKey(33, 10, 1, 2, 0), val: u32b(24), want: syscall.EINVAL},
		{op: 'u', key: lpmKey(24, 10, 1, 2, 0), val: u32b(24), flags: 3, want: syscall.EINVAL},
		{op: 'u', key: lpmKey(24, 10, 1, 2, 0), val: u32b(24)},
		{op: 'u', key: lpmKey(25, 10, 1, 2, 0), val: u32b(25), want: syscall.ENOSPC},
		{op: 'l', key: lpmKey(32, 10, 1, 2, 3), vlen: 4, val: u32b(24)},
		{op: 'l', key: lpmKey(32, 10, 1, 3, 3), vlen: 4, val: u32b(16)},
		{op: 'l', key: lpmKey(32, 10, 2, 3, 3), vlen: 4, val: u32b(8)},
		{op: 'l', key: lpmKey(32, 11, 2, 3, 3), vlen: 4, want: syscall.ENOENT},
		{op: 'l', key: lpmKey(12, 10, 1, 3, 3), vlen: 4, val: u32b(8)},
		{op: 'l', key: lpmKey(33, 10, 1, 3, 3), vlen: 4, want: syscall.ENOENT},
		{op: 'n', vlen: 8, val: lpmKey(24, 10, 1, 2, 0)},
		{op: 'n', key: lpmKey(24, 10, 1, 2, 0), vlen: 8, val: lpmKey(16, 10, 1, 0, 0)},
		{op: 'n', key: lpmKey(16, 10, 1, 0, 0), vlen: 8, val: lpmKey(8, 10, 0, 0, 0)},
		{op: 'n', key: lpmKey(8, 10, 0, 0, 0), vlen: 8, want: syscall.ENOENT},
		{op: 'n', key: lpmKey(9, 10, 0, 0, 0), vlen: 8, val: lpmKey(24, 10, 1, 2, 0)},
		{op: 'd', key: lpmKey(9, 10, 0, 0, 0), want: syscall.ENOENT},
		{op: 'd', key: lpmKey(33, 10, 0, 0, 0), want: syscall.EINVAL},
		{op: 'd', key: lpmKey(8, 10, 0, 0, 0)},
		{op: 'l', key: lpmKey(32, 10, 1, 3, 3), vlen: 4, val: u32b(16)},
		{op: 'l', key: lpmKey(32, 10, 2, 3, 3), vlen: 4, want: syscall.ENOENT},
		{op: 'x', key: lpmKey(16, 10, 1, 0, 0), vlen: 4, want: ENOTSUPP},
	})
}

func TestRingBuf_Errno(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "r", Type: ebpf.RingBuf, MaxEntries: 4096})
	runSteps(t, m, []step{
		{op: 'l', want: ENOTSUPP},
		{op: 'u', want: ENOTSUPP},
		{op: 'd', want: ENOTSUPP},
		{op: 'n', want: ENOTSUPP},
		{op: 'x', want: ENOTSUPP},
	})
}

func TestProgramArray_Errno(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "p", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	runSteps(t, m, []step{
		{op: 'l', key: u32b(0), vlen: 4, want: syscall.ENOENT},
		{op: 'l', key: u32b(5), vlen: 4, want: syscall.ENOENT},
		{op: 'd', key: u32b(0), want: syscall.ENOENT},
		{op: 'd', key: u32b(5), want: syscall.E2BIG},
		{op: 'n', vlen: 4, val: u32b(0)},
		{op: 'n', key: u32b(1), vlen: 4, want: syscall.ENOENT},
		{op: 'u', key: u32b(0), val: u32b(1000), flags: UpdateNoExist, want: syscall.EINVAL},
		{op: 'u', key: u32b(5), val: u32b(1000), want: syscall.E2BIG},
		{op: 'u', key: u32b(0), val: u32b(1000), want: syscall.EBADF},
		{op: 'x', key: u32b(0), vlen: 4, want: ENOTSUPP},
	})
}

func TestPerfEventArray_Errno(t *testing.T) {
	m := mustNew(t, &ebpf.MapSpec{Name: "p", Type: ebpf.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	runSteps(t, m, []step{
		{op: 'l', key: u32b(0), vlen: 4, want: ENOTSUPP},
		{op: 'd', key: u32b(0), want: syscall.ENOENT},
		{op: 'd', key: u32b(5), want: syscall.E2BIG},
		{op: 'n', key: u32b(1), vlen: 4, want: syscall.ENOENT},
		{op: 'x', key: u32b(0), vlen: 4, want: ENOTSUPP},
	})
}

func TestMap_AccessFlags(t *testing.T) {
	ro := mustNew(t, &ebpf.MapSpec{Name: "ro", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 2, Flags: FlagRdonly})
	runSteps(t, ro, []step{
		{op: 'u', key: u32b(0), val: u32b(1), want: syscall.EPERM},
		{op: 'l', key: u32b(0), vlen: 4, val: u32b(0)},
		{op: 'f', want: syscall.EPERM},
	})
	wo := mustNew(t, &ebpf.MapSpec{Name: "wo", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2, Flags: FlagWronly})
	runSteps(t, wo, []step{
		{op: 'u', key: u32b(0), val: u32b(1)},
		{op: 'l', key: u32b(0), vlen: 4, want: syscall.EPERM},
		{op: 'n', vlen: 4, want: syscall.EPERM},
		{op: 'x', key: u32b(0), vlen: 4, want: syscall.EPERM},
		{op: 'f'},
	})
}
