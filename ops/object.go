package ops

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
)

// SetVariables applies NAME=VALUE assignments to the global variables of
// an object's spec before it is loaded; the command line provides it (the
// same parser as tcx test-run --set), so requests stay plain data.
type SetVariables func(spec *ebpf.CollectionSpec, sets []string) error

// loadObject reads an ELF object and picks the tc program to attach: the
// named one, or the object's only SCHED_CLS program. Everything is checked
// before anything reaches the kernel.
func loadObject(path, name string) (*ebpf.CollectionSpec, string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("ENOENT: object %s does not exist (%w)", path, syscall.ENOENT)
		}
		return nil, "", fmt.Errorf("object %s: %w", path, err)
	}
	ef, err := elf.NewFile(f)
	f.Close()
	if err != nil {
		return nil, "", fmt.Errorf("%s is not an ELF object (%v); give a clang -target bpf object (.o)", path, err)
	}
	if ef.Machine != elf.EM_BPF {
		return nil, "", fmt.Errorf("%s is an ELF object for %v, not BPF; give a clang -target bpf object", path, ef.Machine)
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, "", fmt.Errorf("read BPF object %s: %w", path, err)
	}
	names := make([]string, 0, len(spec.Programs))
	for n := range spec.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	describe := func() string {
		var s []string
		for _, n := range names {
			s = append(s, fmt.Sprintf("%s (%s)", n, progTypeName(spec.Programs[n].Type)))
		}
		return strings.Join(s, ", ")
	}
	if name == "" {
		var tc []string
		for _, n := range names {
			if spec.Programs[n].Type == ebpf.SchedCLS {
				tc = append(tc, n)
			}
		}
		switch len(tc) {
		case 1:
			name = tc[0]
		case 0:
			if len(names) == 0 {
				return nil, "", fmt.Errorf("%s has no programs", path)
			}
			name = names[0] // the type check below explains
		default:
			return nil, "", fmt.Errorf("%s has several tc programs; choose one with --prog: %s", path, describe())
		}
	}
	ps, ok := spec.Programs[name]
	if !ok {
		return nil, "", fmt.Errorf("%s has no program %q; it has %s", path, name, describe())
	}
	if ps.Type != ebpf.SchedCLS {
		return nil, "", fmt.Errorf("EINVAL: program %s in %s is of type %s (SEC(%q)); tc hooks run sched_cls programs (SEC(\"tc\")) (%w)",
			name, path, progTypeName(ps.Type), ps.SectionName, syscall.EINVAL)
	}
	return spec, name, nil
}

// progTypeName spells a program type as bpftool does.
func progTypeName(t ebpf.ProgramType) string {
	switch t {
	case ebpf.SchedCLS:
		return "sched_cls"
	case ebpf.SchedACT:
		return "sched_act"
	case ebpf.XDP:
		return "xdp"
	}
	return strings.ToLower(t.String())
}

// pinnedMaps are the names of the maps the object pins by name.
func pinnedMaps(spec *ebpf.CollectionSpec) []string {
	var out []string
	for n, m := range spec.Maps {
		if m.Pinning == ebpf.PinByName {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
