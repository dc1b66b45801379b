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
}

func (f *Fault) Error() string {
	switch f.Kind {
	case FaultPanic:
		return fmt.Sprintf("vm: insn %d: %s: %v", f.PC, f.Kind, f.Panic)
	case FaultCallDepth, FaultBadCall:
		return fmt.Sprintf("vm: insn %d: %s (%#x)", f.PC, f.Kind, f.Addr)
	case FaultPoisoned:
		return fmt.Sprintf("vm: insn %d: %s", f.PC, f.Kind)
	}
	op := "read"
	if f.Write {
		op = "write"
	}
	return fmt.Sprintf("vm: insn %d: %s of %d bytes at %#x: %s", f.PC, op, f.Size, f.Addr, f.Kind)
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
