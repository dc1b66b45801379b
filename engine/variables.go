package engine

import (
	"bytes"
	"fmt"
	"slices"
	"syscall"

	"github.com/cilium/ebpf"
)

// applyVariables writes the values of spec's global variables that live in
// the data section ms (a copy) into its contents, as cilium/ebpf's loader
// does: since v0.20, VariableSpec.Set changes the variable, not the
// MapSpec, so a .rodata constant set by the caller reaches the program only
// through this step.
func applyVariables(ms *ebpf.MapSpec, vars map[string]*ebpf.VariableSpec, section string) error {
	var specs []*ebpf.VariableSpec
	for _, v := range vars {
		if v.SectionName == section {
			specs = append(specs, v)
		}
	}
	if len(specs) == 0 {
		return nil
	}
	if len(ms.Contents) != 1 {
		return fmt.Errorf("data section %q: %d entries, want 1: %w", section, len(ms.Contents), syscall.EINVAL)
	}
	key, ok := ms.Contents[0].Key.(uint32)
	data, okv := ms.Contents[0].Value.([]byte)
	if !ok || key != 0 || !okv {
		return fmt.Errorf("data section %q: contents are not one []byte at key 0: %w", section, syscall.EINVAL)
	}
	data = bytes.Clone(data)
	slices.SortFunc(specs, func(a, b *ebpf.VariableSpec) int { return int(int64(a.Offset) - int64(b.Offset)) })
	end := uint32(0)
	for _, v := range specs {
		if v.Offset < end {
			return fmt.Errorf("data section %q: variable %s overlaps the previous one: %w", section, v.Name, syscall.EINVAL)
		}
		end = v.Offset + v.Size()
		if int(end) > len(data) {
			return fmt.Errorf("data section %q: variable %s exceeds the section: %w", section, v.Name, syscall.EINVAL)
		}
		copy(data[v.Offset:end], v.Value)
	}
	ms.Contents = []ebpf.MapKV{{Key: uint32(0), Value: data}}
	return nil
}
