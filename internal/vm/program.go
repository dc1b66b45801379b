package vm

import (
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf/asm"
)

// HelperFunc implements one helper. It receives r1-r5 and the Machine (for
// Mem, User, TailCall, Exit, Call); its result becomes r0. A non-nil error
// aborts the run with a *HelperError wrapping it, or with the error itself
// if it is a *Fault (from Machine.Mem).
type HelperFunc func(m *Machine, r1, r2, r3, r4, r5 uint64) (uint64, error)

// MapRef is the map reference carried by one ld_imm64 instruction.
type MapRef struct {
	Insn int // raw instruction offset of the ld_imm64
	// Name is the instruction's symbolic reference (asm.Instruction
	// Reference(), the map's name in an ELF), "" if it has none.
	Name string
	// Pseudo is the ld_imm64 src field: asm.PseudoMapFD (1), PseudoMapValue
	// (2), 5 (map by fd_array index) or 6 (value by index).
	Pseudo uint8
	// ID is the fd or fd_array index (low 32 bits of the constant).
	ID int32
	// Offset is the byte offset into the value, for Pseudo 2 and 6.
	Offset uint32
}

// Value reports whether ref asks for a map value address (src 2/6) rather
// than a map handle (src 1/5).
func (ref MapRef) Value() bool { return ref.Pseudo == 2 || ref.Pseudo == 6 }

// MapResolver turns a map reference into the 64-bit value the ld_imm64
// loads: an opaque handle (AddressSpace.NewHandle) for src 1/5, the address
// of the value byte for src 2/6. An error rejects the program.
type MapResolver func(ref MapRef) (uint64, error)

// Options configure Load.
type Options struct {
	// Helpers is the helper table indexed by helper ID (asm.BuiltinFunc).
	// Calling an ID without an entry is rejected at load.
	Helpers []HelperFunc
	// Maps resolves ld_imm64 map references. nil rejects every one.
	Maps MapResolver
	// Ctx is the context access policy; nil allows any access inside the
	// context given to SetContext. Load keeps a copy.
	Ctx *CtxPolicy
	// AddressSpace holds the shared regions the program's map values live
	// in. nil gives the program a private, empty one.
	AddressSpace *AddressSpace
	// AllowCallx accepts call through a register (BPF_CALL|BPF_X, helper ID
	// in dst), which Linux rejects; the ISA conformance corpus uses it.
	AllowCallx bool
	// Engine chooses between the interpreter (the zero value) and
	// compiled machine code.
	Engine Engine
	// ArrayLookup is the ID of the helper that, called with a handle from
	// AddressSpace.NewArrayHandle and a pointer to a 4-byte index, returns
	// what that handle describes (bpf_map_lookup_elem); 0 names none.
	// Compiled code answers such calls itself and calls the helper for
	// every other handle and whenever the key is not plainly readable.
	ArrayLookup int32
	// PacketHelpers names, by helper ID, the helpers compiled code performs
	// itself in their common case (PacketHelper; the state they read is
	// Machine.SetPacketState's); every other case calls the helper.
	PacketHelpers map[int32]PacketHelper
	// PacketPointers names where the context holds the packet's data and
	// data_end pointers, so that compiled code can prove packet accesses
	// against the program's own bounds checks (jitpkt.go).
	PacketPointers PacketPointers
}

// Program is a validated, lowered program. It is immutable and safe to run
// on any number of Machines concurrently.
type Program struct {
	code    []op
	insn    []int32         // op index -> raw instruction offset
	funcs   map[int32]int32 // raw offset of a callback subprogram -> op index
	helpers []HelperFunc
	ctx     *CtxPolicy
	as      *AddressSpace
	raw     int // raw instruction count
	faults  atomic.Uint64

	arrayLookup int32 // Options.ArrayLookup
	pktHelpers  map[int32]PacketHelper
	pktPtrs     PacketPointers // Options.PacketPointers
	native      *native        // machine code, if compiled
	nativeWhy   string         // why not
}

// Load validates insns (references already resolved by the loader, or
// resolvable: symbolic jump, call and function-pointer references are
// resolved against the instructions' symbols) and lowers them.
func Load(insns asm.Instructions, opts Options) (*Program, error) {
	raw, err := fromAsm(insns)
	if err != nil {
		return nil, err
	}
	for id, h := range opts.PacketHelpers {
		if err := h.check(); err != nil {
			return nil, fmt.Errorf("load: packet helper %d: %w", id, err)
		}
	}
	p, err := build(raw, opts)
	if err != nil {
		return nil, err
	}
	prepare(p, opts.Engine)
	return p, nil
}

// LoadRaw decodes little-endian bytecode with asm's decoder and loads it.
// Encodings asm cannot represent exactly are rejected.
func LoadRaw(code []byte, opts Options) (*Program, error) {
	insns, err := decodeRaw(code)
	if err != nil {
		return nil, err
	}
	return Load(insns, opts)
}

// Len is the program's length in raw instructions.
func (p *Program) Len() int { return p.raw }

// AddressSpace is the address space the program was loaded into.
func (p *Program) AddressSpace() *AddressSpace { return p.as }

// Faults is how many runs of this program ended in a *Fault (including
// recovered panics) since it was loaded.
func (p *Program) Faults() uint64 { return p.faults.Load() }
