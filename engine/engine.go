package engine

import (
	"fmt"
	"syscall"

	"github.com/tcxgo/tcx/internal/vm"
)

// Engine chooses how a collection's programs run.
type Engine uint8

// The engines. EngineJIT compiles every program to machine code and
// falls back to the interpreter for a program it cannot compile (on
// another platform: all of them), which Program.Compiled reports.
const (
	EngineAuto   Engine = iota // EngineJIT on linux/amd64, else EngineInterp
	EngineInterp               // the interpreter
	EngineJIT                  // compiled machine code
)

// ParseEngine parses "auto", "interp" or "jit", the names String gives.
func ParseEngine(s string) (Engine, error) {
	switch s {
	case "auto":
		return EngineAuto, nil
	case "interp":
		return EngineInterp, nil
	case "jit":
		return EngineJIT, nil
	}
	return 0, fmt.Errorf("engine %q: want auto, interp or jit: %w", s, syscall.EINVAL)
}

// String is the VM's name for the engine: auto, interp or jit.
func (e Engine) String() string { return e.vm().String() }

func (e Engine) vm() vm.Engine {
	switch e {
	case EngineInterp:
		return vm.EngineInterp
	case EngineJIT:
		return vm.EngineJIT
	}
	return vm.EngineAuto
}

// Compiled reports whether the program runs as machine code and, if it
// does not, why (the interpreter was chosen, no compiler for this
// platform, or what the compiler refused).
func (p *Program) Compiled() (bool, string) { return p.vm.Compiled() }
