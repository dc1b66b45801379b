//go:build linux

package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// testRunOutMax bounds the packet a program can leave behind: lo's MTU
// (64 KiB) plus headers is the most bpf_skb_change_tail grows to there.
const testRunOutMax = 128 << 10

// TestRunner holds one collection loaded into the kernel and runs its
// programs with BPF_PROG_TEST_RUN in the caller's network namespace (the
// skb lives on that namespace's loopback device unless the context names
// another ifindex). Prog arrays are populated from the spec's contents
// (BTF __array initialisers in the ELF). It needs CAP_BPF and CAP_NET_ADMIN
// (root). Methods are safe for concurrent use; runs are serialised.
type TestRunner struct {
	mu    sync.Mutex
	spec  *ebpf.CollectionSpec
	coll  *ebpf.Collection
	rings map[string]*ringbuf.Reader
	out   []byte
}

// NewTestRunner loads every program and map of spec into the kernel. A
// verifier rejection is returned with the verifier's log.
func NewTestRunner(spec *ebpf.CollectionSpec) (*TestRunner, error) {
	spec = spec.Copy()
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("load collection: %w", err)
	}
	r := &TestRunner{spec: spec, coll: coll, rings: map[string]*ringbuf.Reader{}, out: make([]byte, testRunOutMax)}
	for name, m := range coll.Maps {
		if m.Type() != ebpf.RingBuf {
			continue
		}
		rd, err := ringbuf.NewReader(m)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("open ring buffer %s: %w", name, err)
		}
		r.rings[name] = rd
	}
	return r, nil
}

// Programs returns the names of the loaded programs, sorted.
func (r *TestRunner) Programs() []string { return sortedKeys(r.coll.Programs) }

// Maps returns the names of the loaded maps, sorted.
func (r *TestRunner) Maps() []string { return sortedKeys(r.coll.Maps) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (r *TestRunner) program(op, name string) (*ebpf.Program, error) {
	p := r.coll.Programs[name]
	if p == nil {
		return nil, fmt.Errorf("%s: no program %q: %w", op, name, unix.ENOENT)
	}
	return p, nil
}

func (r *TestRunner) mapByName(op, name string) (*ebpf.Map, error) {
	m := r.coll.Maps[name]
	if m == nil {
		return nil, fmt.Errorf("%s: no map %q: %w", op, name, unix.ENOENT)
	}
	return m, nil
}

// Run runs prog once on in. Errors are the kernel's (EINVAL for a frame
// outside the size limits or a forbidden context field).
func (r *TestRunner) Run(prog string, in RunInput) (RunOutput, error) {
	p, err := r.program("test run", prog)
	if err != nil {
		return RunOutput{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	opts := ebpf.RunOptions{Data: in.Data, DataOut: r.out}
	var ctxOut []byte
	if in.Ctx != nil {
		ctxOut = make([]byte, SkbCtxSize)
		opts.Context, opts.ContextOut = in.Ctx, ctxOut
	}
	ret, err := p.Run(&opts)
	if err != nil {
		return RunOutput{}, fmt.Errorf("test run %s: %w", prog, err)
	}
	return RunOutput{Retval: ret, Data: bytes.Clone(opts.DataOut), Ctx: ctxOut}, nil
}

// Benchmark runs prog repeat times on in inside the kernel and returns the
// kernel's own mean time per run (BPF_PROG_TEST_RUN's duration). Only
// in.Data is supported: the kernel's figure for a context-less run.
func (r *TestRunner) Benchmark(prog string, in RunInput, repeat int) (time.Duration, error) {
	p, err := r.program("benchmark", prog)
	if err != nil {
		return 0, err
	}
	if in.Ctx != nil {
		return 0, fmt.Errorf("benchmark %s: context input: %w", prog, unix.ENOTSUP)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, d, err := p.Benchmark(in.Data, repeat, nil)
	if err != nil {
		return 0, fmt.Errorf("benchmark %s: %w", prog, err)
	}
	return d, nil
}

func perCPU(t ebpf.MapType) bool {
	return t == ebpf.PerCPUHash || t == ebpf.PerCPUArray || t == ebpf.LRUCPUHash
}

// MapContents dumps every entry of map name, sorted by key bytes. Arrays
// list every index. Ring buffers have no entries (see ReadRing).
func (r *TestRunner) MapContents(name string) ([]KV, error) {
	m, err := r.mapByName("dump map", name)
	if err != nil {
		return nil, err
	}
	if m.Type() == ebpf.RingBuf {
		return nil, fmt.Errorf("dump map %s: ring buffer has no entries: %w", name, unix.EINVAL)
	}
	var out []KV
	it := m.Iterate()
	var key []byte
	if perCPU(m.Type()) {
		var vals [][]byte
		for it.Next(&key, &vals) {
			out = append(out, KV{Key: bytes.Clone(key), Values: cloneAll(vals)})
		}
	} else {
		var val []byte
		for it.Next(&key, &val) {
			out = append(out, KV{Key: bytes.Clone(key), Values: [][]byte{bytes.Clone(val)}})
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("dump map %s: %w", name, err)
	}
	slices.SortFunc(out, func(a, b KV) int { return bytes.Compare(a.Key, b.Key) })
	return out, nil
}

// MapKeys lists map name's keys in the kernel's iteration order
// (BPF_MAP_GET_NEXT_KEY from the start).
func (r *TestRunner) MapKeys(name string) ([][]byte, error) {
	m, err := r.mapByName("map keys", name)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	key := make([]byte, m.KeySize())
	var prev any
	for {
		if err := m.NextKey(prev, key); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return out, nil
			}
			return nil, fmt.Errorf("map keys %s: %w", name, err)
		}
		out = append(out, bytes.Clone(key))
		prev = bytes.Clone(key)
	}
}

// DeleteMap deletes one entry.
func (r *TestRunner) DeleteMap(name string, key []byte) error {
	m, err := r.mapByName("delete map", name)
	if err != nil {
		return err
	}
	if err := m.Delete(key); err != nil {
		return fmt.Errorf("delete map %s: %w", name, err)
	}
	return nil
}

func cloneAll(vals [][]byte) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = bytes.Clone(v)
	}
	return out
}

// SetMap writes one entry. For per-CPU maps value is stored on every CPU.
func (r *TestRunner) SetMap(name string, key, value []byte) error {
	m, err := r.mapByName("update map", name)
	if err != nil {
		return err
	}
	var v any = value
	if perCPU(m.Type()) {
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return fmt.Errorf("update map %s: %w", name, err)
		}
		all := make([][]byte, n)
		for i := range all {
			all[i] = value
		}
		v = all
	}
	if err := m.Put(key, v); err != nil {
		return fmt.Errorf("update map %s: %w", name, err)
	}
	return nil
}

// ResetMaps returns every writable map to its state right after loading:
// arrays zeroed, hash-like maps emptied, then the spec's initial contents
// (e.g. .data) written again. Read-only maps (.rodata) and prog arrays are
// left alone; ring buffers are drained.
func (r *TestRunner) ResetMaps() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range sortedKeys(r.coll.Maps) {
		if err := r.resetMap(name); err != nil {
			return fmt.Errorf("reset map %s: %w", name, err)
		}
	}
	return nil
}

func (r *TestRunner) resetMap(name string) error {
	m, ms := r.coll.Maps[name], r.spec.Maps[name]
	switch {
	case m.Type() == ebpf.ProgramArray || ms.Flags&unix.BPF_F_RDONLY_PROG != 0:
		return nil
	case m.Type() == ebpf.RingBuf:
		_, err := r.drain(name)
		return err
	case m.Type() == ebpf.Array || m.Type() == ebpf.PerCPUArray:
		zero, err := r.zeroValue(m)
		if err != nil {
			return err
		}
		for i := range m.MaxEntries() {
			if err := m.Put(i, zero); err != nil {
				return err
			}
		}
	default:
		var keys [][]byte
		var key []byte
		it := m.Iterate()
		for it.Next(&key, nil) {
			keys = append(keys, bytes.Clone(key))
		}
		if err := it.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return err
			}
		}
	}
	for _, kv := range ms.Contents {
		if err := m.Put(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func (r *TestRunner) zeroValue(m *ebpf.Map) (any, error) {
	zero := make([]byte, m.ValueSize())
	if !perCPU(m.Type()) {
		return zero, nil
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	all := make([][]byte, n)
	for i := range all {
		all[i] = zero
	}
	return all, nil
}

// ReadRing drains ring buffer name and returns the records submitted since
// the last call, oldest first (discarded reservations are not records).
func (r *TestRunner) ReadRing(name string) ([][]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drain(name)
}

func (r *TestRunner) drain(name string) ([][]byte, error) {
	rd := r.rings[name]
	if rd == nil {
		return nil, fmt.Errorf("read ring %q: no ring buffer: %w", name, unix.ENOENT)
	}
	rd.SetDeadline(time.Now())
	var out [][]byte
	for {
		rec, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read ring %s: %w", name, err)
		}
		out = append(out, rec.RawSample)
	}
}

// Close unloads everything.
func (r *TestRunner) Close() error {
	var errs []error
	for _, rd := range r.rings {
		errs = append(errs, rd.Close())
	}
	r.coll.Close()
	return errors.Join(errs...)
}
