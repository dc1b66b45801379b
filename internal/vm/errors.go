package vm

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf/asm"
)

// ValidationError is why Load rejected a program. It wraps the errno the
// kernel's verifier returns for the same defect (mostly EINVAL).
type ValidationError struct {
	// Insn is the raw instruction offset (ld_imm64 counts twice), the
	// numbering of kernel verifier logs.
	Insn int
	// Index is the position in the asm.Instructions given to Load.
	Index  int
	Reason string
	Errno  syscall.Errno
}

func (e *ValidationError) Error() string {
	if e.Index != e.Insn {
		return fmt.Sprintf("load program: insn %d (asm index %d): %s", e.Insn, e.Index, e.Reason)
	}
	return fmt.Sprintf("load program: insn %d: %s", e.Insn, e.Reason)
}

func (e *ValidationError) Unwrap() error { return e.Errno }

// FaultKind classifies a run-time fault.
type FaultKind uint8

const (
	FaultUnmapped    FaultKind = iota + 1 // no region at the address (NULL, garbage, unmapped)
	FaultOutOfBounds                      // outside the accessible part of an existing region
	FaultReadOnly                         // store or atomic to read-only memory
	FaultCtxAccess                        // context access the CtxPolicy forbids
	FaultSlot                             // access crosses a map value slot
	FaultMisaligned                       // atomic not naturally aligned
	FaultNoAtomic                         // atomic on memory without atomics (packet, context)
	FaultCallDepth                        // more than MaxFrames frames at run time
	FaultBadCall                          // callx or callback to something that is no function
	FaultPanic                            // a Go panic recovered at the Run boundary
	FaultPoisoned                         // an instruction CO-RE poisoned (relocation without target) was reached
)

func (k FaultKind) String() string {
	switch k {
	case FaultUnmapped:
		return "unmapped address"
	case FaultOutOfBounds:
		return "out of bounds"
	case FaultReadOnly:
		return "read-only memory"
	case FaultCtxAccess:
		return "context access denied"
	case FaultSlot:
		return "crosses map value slot"
	case FaultMisaligned:
		return "misaligned atomic"
	case FaultNoAtomic:
		return "atomic not allowed here"
	case FaultCallDepth:
		return "call stack too deep"
	case FaultBadCall:
		return "bad call target"
	case FaultPanic:
		return "internal panic"
	case FaultPoisoned:
		return "instruction poisoned by CO-RE (its relocation has no target)"
	}
	return fmt.Sprintf("FaultKind(%d)", uint8(k))
}

// Fault aborts a run: the program touched memory it does not hold (or the
// interpreter hit a bug, Kind FaultPanic). Every fault increments the
// faulting program's counter (Program.Faults). It wraps EFAULT.
type Fault struct {
	PC    int    // raw instruction offset of the faulting instruction
	Addr  uint64 // virtual address accessed (callee value for FaultBadCall)
	Size  int    // bytes accessed
	Write bool
	Kind  FaultKind
	Panic any // the recovered value, for FaultPanic

	// Where the access went, in the program's terms rather than the VM's
	// addresses. Off is relative to the start of what Space names: for
	// the packet, skb->data (negative: the metadata before it); for the
	// stack, the faulting frame's r10 (fp-8 is -8; positive offsets are in
	// callers' frames); for the context, the struct's start; for a map
	// value, the value's start (Slot says which value of the map's
	// memory). Len is the packet's length (data_end - data), the
	// context's size or a map value's size.
	Space Space
	Off   int64
	Slot  int
	Len   int64
	// Map names the map a SpaceMapValue access went to, and Source the
	// faulting instruction's source line (BTF line info); the engine,
	// which knows both, fills them in.
	Map    string
	Source string

	prog *Program // the program that faulted (a tail call may have changed it)
}

// Program is the program whose instruction faulted, nil if unknown.
func (f *Fault) Program() *Program { return f.prog }

// Space is the kind of memory a faulting access aimed at.
type Space uint8

const (
	SpaceNone     Space = iota // no memory: NULL, a scalar, an unmapped region
	SpacePacket                // the packet
	SpaceStack                 // the stack
	SpaceContext               // the context (struct __sk_buff)
	SpaceMapValue              // a map value or global data
	SpaceDynamic               // a per-run region a helper mapped (ring buffer record, ...)
	SpaceCode                  // a function address
)

func (f *Fault) Error() string {
	at := fmt.Sprintf("vm: insn %d", f.PC)
	if f.Source != "" {
		at += " (" + f.Source + ")"
	}
	switch f.Kind {
	case FaultPanic:
		return fmt.Sprintf("%s: %s: %v", at, f.Kind, f.Panic)
	case FaultCallDepth, FaultBadCall:
		return fmt.Sprintf("%s: %s (%#x)", at, f.Kind, f.Addr)
	case FaultPoisoned:
		return fmt.Sprintf("%s: %s", at, f.Kind)
	}
	op := "read"
	if f.Write {
		op = "write"
	}
	return fmt.Sprintf("%s: %s of %d bytes %s: %s", at, op, f.Size, f.where(), f.Kind)
}

// where says where an access went, as a debugger would.
func (f *Fault) where() string {
	switch f.Space {
	case SpacePacket:
		return fmt.Sprintf("at packet offset %d (the packet is %d bytes)", f.Off, f.Len)
	case SpaceStack:
		return fmt.Sprintf("at stack fp%+d", f.Off)
	case SpaceContext:
		return fmt.Sprintf("at context offset %d (of %d bytes)", f.Off, f.Len)
	case SpaceMapValue:
		name := "a map"
		if f.Map != "" {
			name = fmt.Sprintf("map %q", f.Map)
		}
		return fmt.Sprintf("at offset %d of value %d of %s (values are %d bytes)", f.Off, f.Slot, name, f.Len)
	case SpaceDynamic:
		return fmt.Sprintf("at offset %d of a helper's record", f.Off)
	case SpaceCode:
		return fmt.Sprintf("at function address %#x", f.Addr)
	}
	if f.Addr < 1<<12 {
		return fmt.Sprintf("at NULL%+d", int64(f.Addr))
	}
	return fmt.Sprintf("at %#x", f.Addr)
}

func (f *Fault) Unwrap() error { return syscall.EFAULT }

// ErrInstructionLimit is matched (errors.Is) by a *LimitError.
var ErrInstructionLimit = errors.New("instruction limit exceeded")

// LimitError aborts a run that executed more instructions than the
// Machine's limit (SetLimit): the kernel bounds loops at load time, the VM
// at run time.
type LimitError struct {
	PC       int    // raw instruction offset where the run stopped
	Limit    uint64 // the limit in force
	Executed uint64 // instructions executed when it stopped
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("vm: insn %d: %d instructions executed, limit %d", e.PC, e.Executed, e.Limit)
}

func (e *LimitError) Is(target error) bool { return target == ErrInstructionLimit }

// HelperError aborts a run because a helper returned an error.
type HelperError struct {
	PC     int // raw instruction offset of the call
	Helper asm.BuiltinFunc
	Err    error
}

func (e *HelperError) Error() string {
	return fmt.Sprintf("vm: insn %d: helper %s: %v", e.PC, e.Helper, e.Err)
}

func (e *HelperError) Unwrap() error { return e.Err }
