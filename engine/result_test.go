package engine_test

import (
	"reflect"
	"testing"

	"github.com/tcxgo/tcx/engine"
)

// TestResult_FitsInRegisters keeps Result returnable in registers
// beside Run's error under Go's register ABI (at most nine integer
// registers, no arrays of more than one element, no floats here): a
// Result returned in memory cost the caller of Run up to 5 ns a run,
// its wide loads of the copy waiting for the narrow stores that filled
// it (BenchmarkEngineVsKernel/floor/jit: 15.9 -> 14.2 ns when it began
// to fit).
func TestResult_FitsInRegisters(t *testing.T) {
	var regs func(reflect.Type) (int, bool)
	regs = func(typ reflect.Type) (int, bool) {
		switch typ.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
			reflect.Pointer, reflect.UnsafePointer, reflect.Chan, reflect.Map, reflect.Func:
			return 1, true
		case reflect.String, reflect.Interface:
			return 2, true
		case reflect.Slice:
			return 3, true
		case reflect.Array:
			if typ.Len() == 0 {
				return 0, true
			}
			if typ.Len() == 1 {
				return regs(typ.Elem())
			}
			return 0, false
		case reflect.Struct:
			n := 0
			for i := range typ.NumField() {
				k, ok := regs(typ.Field(i).Type)
				if !ok {
					return 0, false
				}
				n += k
			}
			return n, true
		}
		return 0, false // floats and complex numbers take other registers: keep them out
	}
	n, ok := regs(reflect.TypeFor[engine.Result]())
	if !ok || n+2 > 9 { // + the error's two words
		t.Errorf("engine.Result needs %d integer registers (register-assignable: %v); with Run's error it must fit in 9", n, ok)
	}
}
