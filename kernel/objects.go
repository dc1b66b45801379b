package kernel

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx"
)

// Qdisc kinds that share a hook with tcx (NetNS.AddQdisc).
const (
	QdiscClsact  = "clsact"  // ingress and egress filter hooks
	QdiscIngress = "ingress" // the old ingress-only qdisc
)

// Options configure a Backend.
type Options struct {
	// PinDir is a bpffs directory where relative pin paths are resolved.
	// Empty: the backend mounts a private bpffs in a temporary directory and
	// unmounts it on Close (which also releases everything pinned there).
	PinDir string
}

// LoadOptions configure LoadCollection.
type LoadOptions struct {
	// Maps replaces the collection's maps of these names with existing
	// maps, so programs of several collections can share one map (for
	// example the probes' "seen" array).
	Maps map[string]*Map
	// PinPath is the bpffs directory where maps the object marks
	// LIBBPF_PIN_BY_NAME are pinned under their names, or reused when a
	// compatible map is pinned there already (libbpf's pin_root_path).
	// Empty: such maps are not pinned.
	PinPath string
}

// Program is a loaded program: a tcx.Program that owns one program fd. Like
// every handle of this package it may be used from several goroutines, but
// not while it is being closed (as with a raw fd).
type Program struct {
	// prog owns the fd; its FD() is -1 once closed, which the bpf(2)
	// requests send as the invalid fd badFD.
	prog   *ebpf.Program
	id     uint32
	name   string
	closed atomic.Bool
}

var _ tcx.Program = (*Program)(nil)

func newProgram(p *ebpf.Program) (*Program, error) {
	info, err := p.Info()
	if err != nil {
		return nil, fmt.Errorf("program info: %w", err)
	}
	id, _ := info.ID()
	return &Program{prog: p, id: uint32(id), name: info.Name}, nil
}

// ID is the kernel's program ID.
func (p *Program) ID() uint32 { return p.id }

// Name is the program name the kernel reports (at most 15 bytes).
func (p *Program) Name() string { return p.name }

// FD is the program's file descriptor, -1 once closed.
func (p *Program) FD() int { return p.prog.FD() }

// Close closes the program's fd; the program lives on while attached. A
// second Close fails with EBADF, as close(2) would.
func (p *Program) Close() error {
	if p.closed.Swap(true) {
		return fmt.Errorf("close program: %w", syscall.EBADF)
	}
	if err := p.prog.Close(); err != nil {
		return fmt.Errorf("close program: %w", err)
	}
	return nil
}

func (p *Program) String() string { return fmt.Sprintf("program %s (id %d)", p.name, p.id) }

// Map is a loaded map: a thin wrapper over cilium/ebpf's, so callers outside
// this package never hold live cilium/ebpf objects. Keys and values are
// marshalled by cilium/ebpf (fixed-size integers, structs, byte slices).
type Map struct {
	m *ebpf.Map
}

// Lookup reads the value stored under key into valueOut (a pointer).
func (m *Map) Lookup(key, valueOut any) error {
	if err := m.m.Lookup(key, valueOut); err != nil {
		return fmt.Errorf("lookup map element: %w", err)
	}
	return nil
}

// Update stores value under key, creating or overwriting it.
func (m *Map) Update(key, value any) error {
	if err := m.m.Update(key, value, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("update map element: %w", err)
	}
	return nil
}

// Delete removes key (arrays cannot delete: EINVAL).
func (m *Map) Delete(key any) error {
	if err := m.m.Delete(key); err != nil {
		return fmt.Errorf("delete map element: %w", err)
	}
	return nil
}

// Iterate calls fn for every key and value in the map's order, stopping at
// the first error fn returns.
func (m *Map) Iterate(fn func(key, value []byte) error) error {
	key, value := make([]byte, m.m.KeySize()), make([]byte, m.m.ValueSize())
	it := m.m.Iterate()
	for it.Next(&key, &value) {
		if err := fn(key, value); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate map: %w", err)
	}
	return nil
}

// KeySize, ValueSize and MaxEntries describe the map as created.
func (m *Map) KeySize() uint32    { return m.m.KeySize() }
func (m *Map) ValueSize() uint32  { return m.m.ValueSize() }
func (m *Map) MaxEntries() uint32 { return m.m.MaxEntries() }

// Close closes the map's fd; programs using the map keep it alive.
func (m *Map) Close() error {
	if err := m.m.Close(); err != nil {
		return fmt.Errorf("close map: %w", err)
	}
	return nil
}

// Collection is a loaded ebpf.CollectionSpec. Close closes every handle in
// it that is still open.
type Collection struct {
	Programs map[string]*Program
	Maps     map[string]*Map
	// NewPins are the map pins this load created (LoadOptions.PinPath);
	// pins that existed before and were reused are not listed.
	NewPins []string
}

// RemoveNewPins removes the map pins this load created, so that a failed
// attach leaves bpffs as it found it.
func (c *Collection) RemoveNewPins() error {
	var errs []error
	for _, p := range c.NewPins {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	c.NewPins = nil
	return errors.Join(errs...)
}

// Close closes all programs and maps of the collection, skipping handles
// the caller closed already.
func (c *Collection) Close() error {
	var errs []error
	for _, p := range c.Programs {
		if !p.closed.Load() {
			errs = append(errs, p.Close())
		}
	}
	for _, m := range c.Maps {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}
