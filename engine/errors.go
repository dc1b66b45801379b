package engine

import "github.com/tcxgo/tcx/internal/vm"

// The run-time and load-time errors of the interpreter, re-exported so that
// callers outside this module can match them with errors.As.
type (
	// Fault is a memory access outside what a run holds, or a recovered
	// Go panic (Kind FaultPanic); it wraps EFAULT.
	Fault = vm.Fault
	// FaultKind classifies a Fault.
	FaultKind = vm.FaultKind
	// LimitError ends a run that executed more instructions than
	// Options.InstructionLimit; it matches ErrInstructionLimit.
	LimitError = vm.LimitError
	// HelperError ends a run in which a helper failed (for example a ring
	// buffer submit of a pointer that is no reservation).
	HelperError = vm.HelperError
	// ValidationError is why a program was refused at load time: the raw
	// instruction offset and the reason, wrapping the verifier's errno.
	ValidationError = vm.ValidationError
)

// ErrInstructionLimit is matched by a *LimitError.
var ErrInstructionLimit = vm.ErrInstructionLimit

// Fault kinds, see vm.FaultKind.
const (
	FaultUnmapped    = vm.FaultUnmapped
	FaultOutOfBounds = vm.FaultOutOfBounds
	FaultReadOnly    = vm.FaultReadOnly
	FaultCtxAccess   = vm.FaultCtxAccess
	FaultSlot        = vm.FaultSlot
	FaultMisaligned  = vm.FaultMisaligned
	FaultNoAtomic    = vm.FaultNoAtomic
	FaultCallDepth   = vm.FaultCallDepth
	FaultBadCall     = vm.FaultBadCall
	FaultPanic       = vm.FaultPanic
	FaultPoisoned    = vm.FaultPoisoned
)
