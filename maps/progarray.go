package maps

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"
)

// ProgramArray is BPF_MAP_TYPE_PROG_ARRAY: program values by index for
// bpf_tail_call. The map stores whatever the runtime uses as a program
// (opaque to this package); Get is the tail-call lookup.
type ProgramArray struct {
	base
	n       uint32
	progs   []atomic.Pointer[progEntry]
	resolve func(uint32) (any, error)
}

type progEntry struct{ prog any }

// fdArrayCheck is fd_array_map_alloc_check.
func fdArrayCheck(i Info) error {
	if i.ValueSize != 4 {
		return fmt.Errorf("create map %q: value size %d, %s maps hold 4-byte handles: %w", i.Name, i.ValueSize, i.Type, syscall.EINVAL)
	}
	if i.Flags&(FlagRdonlyProg|FlagWronlyProg) != 0 {
		return fmt.Errorf("create map %q: BPF_F_RDONLY_PROG/WRONLY_PROG not supported for %s maps: %w", i.Name, i.Type, syscall.EINVAL)
	}
	return checkArrayAttrs(i, false)
}

func newProgramArray(i Info, opts Options) (*ProgramArray, error) {
	if err := fdArrayCheck(i); err != nil {
		return nil, err
	}
	if err := checkMemory(i, opts, int64(i.MaxEntries)*8); err != nil {
		return nil, err
	}
	return &ProgramArray{base: base{info: i}, n: i.MaxEntries, progs: make([]atomic.Pointer[progEntry], i.MaxEntries), resolve: opts.ResolveProgram}, nil
}

// Get returns the program at index, nil if there is none. It is what
// bpf_tail_call consults: lock-free and allocation-free.
func (p *ProgramArray) Get(index uint32) any {
	if index >= p.n {
		return nil
	}
	if e := p.progs[index].Load(); e != nil {
		return e.prog
	}
	return nil
}

// Set stores prog at index, replacing what was there (a userspace update
// with an already resolved program). prog must not be nil.
func (p *ProgramArray) Set(index uint32, prog any) error {
	if err := p.canWrite("update"); err != nil {
		return err
	}
	if prog == nil {
		return fmt.Errorf("map update: nil program: %w", syscall.EINVAL)
	}
	if index >= p.n {
		return fmt.Errorf("map update: index %d of %d: %w", index, p.n, syscall.E2BIG)
	}
	p.progs[index].Store(&progEntry{prog: prog})
	return nil
}

// Remove clears index (a userspace delete by index).
func (p *ProgramArray) Remove(index uint32) error {
	if err := p.canWrite("delete"); err != nil {
		return err
	}
	if index >= p.n {
		return fmt.Errorf("map delete: index %d of %d: %w", index, p.n, syscall.E2BIG)
	}
	if p.progs[index].Swap(nil) == nil {
		return errnoErr("delete", syscall.ENOENT)
	}
	return nil
}

// Lookup writes the ID of the program at key, as the kernel does, when the
// stored program has an ID() uint32 method.
func (p *ProgramArray) Lookup(key, valueOut []byte) error {
	if err := p.userLookup("lookup", key, valueOut, 4); err != nil {
		return err
	}
	prog := p.Get(binary.NativeEndian.Uint32(key))
	if prog == nil {
		return errnoErr("lookup", syscall.ENOENT)
	}
	ider, ok := prog.(interface{ ID() uint32 })
	if !ok {
		return fmt.Errorf("map lookup: program %T has no ID: %w", prog, ENOTSUPP)
	}
	binary.NativeEndian.PutUint32(valueOut, ider.ID())
	return nil
}

// Update stores the program Options.ResolveProgram returns for the handle
// in value (the kernel's program fd).
func (p *ProgramArray) Update(key, value []byte, flags uint64) error {
	if err := p.userUpdate(key, value, 4, flags); err != nil {
		return err
	}
	if flags != UpdateAny {
		return fmt.Errorf("map update: program arrays take only BPF_ANY: %w", syscall.EINVAL)
	}
	index := binary.NativeEndian.Uint32(key)
	if index >= p.n {
		return fmt.Errorf("map update: index %d of %d: %w", index, p.n, syscall.E2BIG)
	}
	if p.resolve == nil {
		return fmt.Errorf("map update: no program resolver for handle %d: %w", binary.NativeEndian.Uint32(value), syscall.EBADF)
	}
	prog, err := p.resolve(binary.NativeEndian.Uint32(value))
	if err != nil {
		return fmt.Errorf("map update: %w", err)
	}
	return p.Set(index, prog)
}

func (p *ProgramArray) Delete(key []byte) error {
	if err := p.userDelete(key); err != nil {
		return err
	}
	return p.Remove(binary.NativeEndian.Uint32(key))
}

func (p *ProgramArray) NextKey(key, nextOut []byte) error {
	return arrayNextKey(&p.base, p.n, key, nextOut)
}

func (p *ProgramArray) LookupAndDelete(key, valueOut []byte) error {
	return (&unsupported{&p.base}).LookupAndDelete(key, valueOut)
}
