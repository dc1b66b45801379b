package engine

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/tcxgo/tcx/internal/vm"
)

// uapiObject is uapibtf/uapi.o: BTF of the UAPI types and wire formats the
// engine models (see uapibtf/Makefile).
//
//go:embed uapibtf/uapi.o
var uapiObject []byte

// UAPITypes returns the engine's built-in BTF: every struct, union and enum
// of the UAPI headers the engine models (linux/bpf.h with struct __sk_buff,
// the Ethernet, VLAN, IPv4, IPv6, TCP, UDP, ICMP, MPLS and ERSPAN headers).
// It is the CO-RE target when the running kernel has no BTF, and the list
// of types a field relocation may name: any other type is kernel-internal
// memory the engine has no model of.
func UAPITypes() (*btf.Spec, error) {
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(uapiObject))
	if err != nil {
		return nil, fmt.Errorf("built-in UAPI BTF: %w", err)
	}
	return spec, nil
}

// relocator applies the CO-RE relocations of one collection's programs.
type relocator struct {
	spec    *ebpf.CollectionSpec
	target  *btf.Spec // nil until first needed
	modeled *btf.Spec
	local   *btf.Builder
	opt     *btf.Spec // Options.KernelTypes
}

func newRelocator(spec *ebpf.CollectionSpec, kernelTypes *btf.Spec) *relocator {
	return &relocator{spec: spec, opt: kernelTypes}
}

// targets loads the target BTF the first time a program needs it: the
// caller's, the running kernel's, or the built-in one, in that order.
func (r *relocator) targets() error {
	if r.target != nil {
		return nil
	}
	modeled, err := UAPITypes()
	if err != nil {
		return err
	}
	r.modeled = modeled
	if r.local, err = btf.NewBuilder(nil, nil); err != nil {
		return err
	}
	if r.opt != nil {
		r.target = r.opt
		return nil
	}
	if r.target, err = btf.LoadKernelSpec(); err != nil {
		r.target = modeled // no BTF in this kernel, or not Linux
	}
	return nil
}

// reloText parses a CORERelocation's String(), the only exported view of
// its kind, local type and accessor: CORERelocation(byte_off,
// Struct:"__sk_buff"[0:30:0], local_id=2).
var reloText = regexp.MustCompile(`^CORERelocation\(([a-z_0-9]+), ([A-Za-z]+):"([^"]*)"\[([0-9:]+)\], local_id=\d+\)$`)

// coreRelo is a parsed relocation.
type coreRelo struct {
	kind, typeKind, typeName string
	accessor                 []int
}

func parseRelo(relo *btf.CORERelocation) (coreRelo, error) {
	m := reloText.FindStringSubmatch(relo.String())
	if m == nil {
		return coreRelo{}, fmt.Errorf("unrecognised relocation %s", relo)
	}
	cr := coreRelo{kind: m[1], typeKind: m[2], typeName: m[3]}
	for _, s := range strings.Split(m[4], ":") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return coreRelo{}, fmt.Errorf("relocation %s: accessor %q", relo, m[4])
		}
		cr.accessor = append(cr.accessor, n)
	}
	return cr, nil
}

// readsMemory reports a relocation that places or sizes an access to a
// field: its memory must be memory the engine models. Existence, type and
// enum relocations only become constants.
func (cr coreRelo) readsMemory() bool {
	switch cr.kind {
	case "byte_off", "byte_sz", "signed", "lshift_u64", "rshift_u64":
		return true
	}
	return false
}

// essentialName drops a ___flavor suffix, as libbpf matches names.
func essentialName(name string) string {
	if i := strings.LastIndex(name, "___"); i > 0 {
		return name[:i]
	}
	return name
}

// inTarget reports whether the target BTF has the relocation's type: one
// it lacks is poisoned, which needs no model.
func (r *relocator) inTarget(cr coreRelo) bool {
	_, err := r.target.AnyTypesByName(essentialName(cr.typeName))
	return err == nil
}

// fieldName spells the accessor's field path in the local type, as in
// sk_buff.len or iphdr.saddr, for error messages.
func (r *relocator) fieldName(cr coreRelo) string {
	name := cr.typeName
	if len(cr.accessor) > 0 && cr.accessor[0] != 0 {
		name += fmt.Sprintf("[%d]", cr.accessor[0])
	}
	var t btf.Type
	if r.spec.Types != nil {
		if types, err := r.spec.Types.AnyTypesByName(cr.typeName); err == nil {
			for _, c := range types {
				if strings.HasPrefix(fmt.Sprint(c), cr.typeKind+":") {
					t = c
					break
				}
			}
		}
	}
	for _, i := range cr.accessor[min(1, len(cr.accessor)):] {
		var members []btf.Member
		switch v := btf.UnderlyingType(t).(type) {
		case *btf.Struct:
			members = v.Members
		case *btf.Union:
			members = v.Members
		}
		switch v := btf.UnderlyingType(t).(type) {
		case *btf.Struct, *btf.Union:
			if i >= len(members) {
				return name + fmt.Sprintf(".#%d", i)
			}
			if members[i].Name != "" {
				name += "." + members[i].Name
			}
			t = members[i].Type
		case *btf.Array:
			name += fmt.Sprintf("[%d]", i)
			t = v.Type
		default:
			name += fmt.Sprintf(".#%d", i)
			t = nil
		}
	}
	return name
}

// relocate applies the CO-RE relocations in insns (one linked program)
// against the target BTF. A field relocation on a type the engine does not
// model is refused, naming the type, the field and the instruction.
// Relocations without a target are poisoned as cilium/ebpf does; a
// poisoned ld_imm64 becomes a poisoned call and a ja, so that the program
// keeps its length and the VM traps either where it is reached.
func (r *relocator) relocate(prog string, insns asm.Instructions) (asm.Instructions, error) {
	var relos []*btf.CORERelocation
	var at []*asm.Instruction
	iter := insns.Iterate()
	for iter.Next() {
		relo := btf.CORERelocationMetadata(iter.Ins)
		if relo == nil {
			continue
		}
		if err := r.targets(); err != nil {
			return nil, linkErr(prog, int(iter.Offset), "CO-RE relocation %s: %v", relo, err)
		}
		cr, err := parseRelo(relo)
		if err != nil {
			return nil, linkErr(prog, int(iter.Offset), "CO-RE: %v", err)
		}
		if cr.readsMemory() && r.inTarget(cr) {
			if _, err := r.modeled.AnyTypesByName(essentialName(cr.typeName)); errors.Is(err, btf.ErrNotFound) {
				return nil, fmt.Errorf("link program %q: insn %d: CO-RE relocation %s of %s %s: kernel-internal type the engine does not model: %w",
					prog, iter.Offset, cr.kind, strings.ToLower(cr.typeKind), r.fieldName(cr), syscall.ENOTSUP)
			}
		}
		relos = append(relos, relo)
		at = append(at, iter.Ins)
	}
	if len(relos) == 0 {
		return insns, nil
	}
	bo := r.spec.ByteOrder
	fixups, err := btf.CORERelocate(relos, []*btf.Spec{r.target}, bo, r.local.Add)
	if err != nil {
		return nil, fmt.Errorf("link program %q: CO-RE: %w", prog, err)
	}
	poisoned := false
	for i, f := range fixups {
		err := f.Apply(at[i])
		if errors.Is(err, ebpf.ErrNotSupported) {
			// cilium/ebpf applies fixups on Linux only; elsewhere the
			// engine does, from the fixup's description.
			err = applyFixup(at[i], f.String())
		}
		if err != nil {
			return nil, fmt.Errorf("link program %q: CO-RE fixup %s for %s: %w", prog, f.String(), relos[i], err)
		}
		poisoned = poisoned || strings.HasSuffix(f.String(), "=poison")
	}
	if !poisoned {
		return insns, nil
	}
	out := make(asm.Instructions, 0, len(insns))
	for _, ins := range insns {
		if ins.OpCode.IsDWordLoad() && ins.Dst == asm.R10 && ins.Constant == vm.CorePoisonedCall {
			call := asm.BuiltinFunc(vm.CorePoisonedCall).Call()
			call.Metadata = ins.Metadata
			out = append(out, call, asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Ja)})
			continue
		}
		out = append(out, ins)
	}
	return out, nil
}

// fixupText parses COREFixup.String(): "byte_off=12->76" or "exists=poison".
var fixupText = regexp.MustCompile(`^[a-z_0-9]+=(?:poison|(\d+)->(\d+))$`)

// applyFixup does what COREFixup.Apply does where cilium/ebpf refuses to
// (off Linux): the target value into the offset of a load or store, the
// immediate of an ALU instruction or ld_imm64, or the poison call. It does
// not re-check the local value, which the ELF reader already matched.
func applyFixup(ins *asm.Instruction, fixup string) error {
	m := fixupText.FindStringSubmatch(fixup)
	if m == nil {
		return fmt.Errorf("unrecognised fixup %q", fixup)
	}
	if m[1] == "" { // poison, as cilium/ebpf and libbpf write it
		if ins.OpCode.IsDWordLoad() {
			*ins = asm.LoadImm(asm.R10, vm.CorePoisonedCall, asm.DWord).WithMetadata(ins.Metadata)
		} else {
			*ins = asm.BuiltinFunc(vm.CorePoisonedCall).Call().WithMetadata(ins.Metadata)
		}
		return nil
	}
	target, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return err
	}
	switch class := ins.OpCode.Class(); {
	case class == asm.LdXClass || class == asm.StClass || class == asm.StXClass:
		if target > math.MaxInt16 {
			return fmt.Errorf("offset %d exceeds MaxInt16", target)
		}
		ins.Offset = int16(target)
	case class == asm.LdClass && ins.IsConstantLoad(asm.DWord):
		ins.Constant = int64(target)
	case class.IsALU() && ins.OpCode.Source() == asm.ImmSource && ins.OpCode.ALUOp() != asm.Swap:
		if target > math.MaxInt32 {
			return fmt.Errorf("immediate %d exceeds MaxInt32", target)
		}
		ins.Constant = int64(target)
	default:
		return fmt.Errorf("cannot relocate %v", ins)
	}
	return nil
}
