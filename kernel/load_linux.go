package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// LoadCollection loads spec's maps and programs into the kernel (programs
// and maps do not belong to a namespace). The caller owns the result.
func (b *Backend) LoadCollection(spec *ebpf.CollectionSpec, opts LoadOptions) (*Collection, error) {
	var copts ebpf.CollectionOptions
	if len(opts.Maps) > 0 {
		copts.MapReplacements = make(map[string]*ebpf.Map, len(opts.Maps))
		for name, m := range opts.Maps {
			copts.MapReplacements[name] = m.m
		}
	}
	var newPins []string
	if opts.PinPath != "" {
		copts.Maps.PinPath = opts.PinPath
		for _, ms := range spec.Maps {
			if ms.Pinning != ebpf.PinByName {
				continue
			}
			p := filepath.Join(opts.PinPath, ms.Name)
			if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
				newPins = append(newPins, p)
			}
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, copts)
	if err != nil {
		(&Collection{NewPins: newPins}).RemoveNewPins()
		return nil, fmt.Errorf("load collection: %w", err)
	}
	c := &Collection{Programs: make(map[string]*Program, len(coll.Programs)), Maps: make(map[string]*Map, len(coll.Maps)), NewPins: newPins}
	for name, m := range coll.Maps {
		c.Maps[name] = &Map{m: m}
	}
	var errs []error
	for name, p := range coll.Programs {
		prog, err := newProgram(p)
		if err != nil {
			p.Close()
			errs = append(errs, fmt.Errorf("program %s: %w", name, err))
			continue
		}
		c.Programs[name] = prog
	}
	if len(errs) > 0 {
		c.Close()
		c.RemoveNewPins()
		return nil, fmt.Errorf("load collection: %w", errors.Join(errs...))
	}
	return c, nil
}

// NewMap creates a map on its own, for example one that several collections
// share through LoadOptions.Maps.
func (b *Backend) NewMap(spec *ebpf.MapSpec) (*Map, error) {
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("create map: %w", err)
	}
	return &Map{m: m}, nil
}

// ProgramByID opens a new handle to the program with that ID
// (BPF_PROG_GET_FD_BY_ID).
func (b *Backend) ProgramByID(id uint32) (*Program, error) {
	attr := getIDAttr{id: id}
	fd, err := sysBPF(cmdProgGetFDByID, &attr)
	if err != nil {
		return nil, fmt.Errorf("open program by id %d: %w", id, err)
	}
	// NewProgramFromFD owns fd from here on, also on failure.
	p, err := ebpf.NewProgramFromFD(fd)
	if err != nil {
		return nil, fmt.Errorf("open program by id %d: %w", id, err)
	}
	prog, err := newProgram(p)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open program by id %d: %w", id, err)
	}
	return prog, nil
}

// LoadPinnedMap opens the map pinned at path (BPF_OBJ_GET), for example one
// an object pinned by name.
func LoadPinnedMap(path string) (*Map, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open pinned map: %w", err)
	}
	return &Map{m: m}, nil
}
