package engine

import (
	"fmt"
	"math"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// link turns the instructions of progs[name] into a self-contained stream
// the interpreter can load, doing what cilium/ebpf's loader does between a
// spec and BPF_PROG_LOAD:
//
//   - flattening: functions the program calls (or takes the address of)
//     that are not in its instructions are appended from the other
//     ProgramSpecs, transitively (cilium's ELF reader has usually done this
//     already; specs built by hand may not have);
//   - bpf-to-bpf calls, function pointers and symbolic jumps become
//     pc-relative;
//   - map references become ld_imm64 src 1 (map) or src 2 (map value) with
//     the map's index in mapIndex as the "fd" and the value offset in the
//     high half, as encodeMapFD lays them out.
//
// CO-RE relocations are applied by rel first. References the engine
// cannot satisfy (kconfig, ksyms, kfuncs, a map it could not create) are
// refused, naming the instruction.
func link(name string, env *linkEnv) (asm.Instructions, error) {
	insns, err := env.rel.relocate(name, flatten(name, env.progs))
	if err != nil {
		return nil, err
	}

	offsets := make(map[string]int)
	iter := insns.Iterate()
	for iter.Next() {
		if sym := iter.Ins.Symbol(); sym != "" {
			if _, dup := offsets[sym]; dup {
				return nil, linkErr(name, int(iter.Offset), "duplicate symbol %q", sym)
			}
			offsets[sym] = int(iter.Offset)
		}
	}

	iter = insns.Iterate()
	for iter.Next() {
		ins, off := iter.Ins, int(iter.Offset)
		if ins.IsKfuncCall() {
			id, allowed, ok := kfuncID(ins.Reference(), progTypeOf(env.progs[name]))
			if e, refused := refusedKfuncs[ins.Reference()]; refused {
				return nil, fmt.Errorf("link program %q: insn %d: kfunc call: %s() is not allowed (as in Linux 6.18): %w", name, off, ins.Reference(), e)
			}
			if !ok {
				return nil, linkErr(name, off, "kfunc call: %s: not supported", ins.Reference())
			}
			if !allowed {
				return nil, linkErr(name, off, "kfunc call: calling kernel function %s is not allowed in a %s program", ins.Reference(), env.progs[name].Type)
			}
			ins.Src, ins.Constant = asm.R0, int64(id)
			*ins = ins.WithReference("")
			continue
		}
		ref := ins.Reference()
		switch {
		case ins.IsLoadFromMap():
			if ref == "" {
				return nil, linkErr(name, off, "map load without a map reference (raw fd %d)", int32(ins.Constant))
			}
			idx, ok := env.mapIndex[ref]
			if err := env.missing[ref]; err != nil {
				return nil, fmt.Errorf("link program %q: insn %d: map %q: %w", name, off, ref, err)
			}
			if !ok {
				return nil, linkErr(name, off, "reference to unknown map %q", ref)
			}
			var valueOff uint64
			if ins.Src == asm.PseudoMapValue {
				valueOff = uint64(ins.Constant) >> 32
			}
			ins.Constant = int64(valueOff<<32 | uint64(idx))
		case ref == "":
		case ins.IsFunctionReference() && ins.Constant == -1,
			isGotol(ins.OpCode) && ins.Constant == -1:
			target, ok := offsets[ref]
			if !ok {
				return nil, linkErr(name, off, "call to %q: no such function in the collection", ref)
			}
			ins.Constant = int64(target - off - 1)
			if ins.OpCode.IsDWordLoad() {
				// A function pointer's offset is the low 32-bit immediate;
				// the high one stays 0 also for a function before it.
				ins.Constant = int64(uint32(ins.Constant))
			}
			*ins = ins.WithReference("")
		case ins.OpCode.Class().IsJump() && ins.Offset == -1:
			target, ok := offsets[ref]
			if !ok {
				return nil, linkErr(name, off, "jump to unknown symbol %q", ref)
			}
			delta := target - off - 1
			if delta < math.MinInt16 || delta > math.MaxInt16 {
				return nil, linkErr(name, off, "jump to %q out of 16-bit range", ref)
			}
			ins.Offset = int16(delta)
			*ins = ins.WithReference("")
		case ins.OpCode.IsDWordLoad():
			return nil, linkErr(name, off, "ld_imm64 of extern %q (kconfig/ksym): not supported", ref)
		}
	}
	return insns, nil
}

// linkEnv is what link resolves references against.
type linkEnv struct {
	progs    map[string]*ebpf.ProgramSpec
	mapIndex map[string]int
	missing  map[string]error // maps that could not be created
	rel      *relocator
}

// flatten copies the program's instructions and appends the functions it
// references that live in other ProgramSpecs (flattenInstructions in
// cilium/ebpf's linker).
func flatten(name string, progs map[string]*ebpf.ProgramSpec) asm.Instructions {
	prog := progs[name]
	insns := make(asm.Instructions, len(prog.Instructions))
	copy(insns, prog.Instructions)

	have := make(map[string]bool)
	for _, ins := range insns {
		if s := ins.Symbol(); s != "" {
			have[s] = true
		}
	}
	pending := insns.FunctionReferences()
	for len(pending) > 0 {
		ref := pending[0]
		pending = pending[1:]
		if have[ref] {
			continue
		}
		dep := progs[ref]
		if dep == nil {
			continue // reported as unresolved by link
		}
		insns = append(insns, dep.Instructions...)
		for _, ins := range dep.Instructions {
			if s := ins.Symbol(); s != "" {
				have[s] = true
			}
		}
		pending = append(pending, dep.Instructions.FunctionReferences()...)
	}
	return insns
}

func linkErr(prog string, off int, format string, args ...any) error {
	return fmt.Errorf("link program %q: insn %d: %s: %w", prog, off, fmt.Sprintf(format, args...), syscall.EINVAL)
}

// isGotol reports a JMP32|JA (gotol), whose target is in the constant.
func isGotol(op asm.OpCode) bool { return op.Class() == asm.Jump32Class && op.JumpOp() == asm.Ja }
