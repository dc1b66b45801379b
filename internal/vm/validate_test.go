package vm_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/tcxgo/tcx/internal/vm"
)

// raw encodes instructions given as (code, dst, src, off, imm).
func raw(insns ...[5]int64) []byte {
	var b []byte
	for _, i := range insns {
		b = append(b, byte(i[0]), byte(i[1])|byte(i[2])<<4)
		b = binary.LittleEndian.AppendUint16(b, uint16(i[3]))
		b = binary.LittleEndian.AppendUint32(b, uint32(i[4]))
	}
	return b
}

var exitInsn = [5]int64{0x95, 0, 0, 0, 0}

func TestLoadRaw_Rejects(t *testing.T) {
	mov0 := [5]int64{0xb7, 0, 0, 0, 0}
	for _, tc := range []struct {
		name   string
		code   []byte
		opts   vm.Options
		insn   int
		reason string
		errno  syscall.Errno
	}{
		{"empty", nil, vm.Options{}, 0, "empty program", syscall.EINVAL},
		{"trailing bytes", append(raw(mov0, exitInsn), 1, 2, 3), vm.Options{}, 2, "trailing bytes", syscall.EINVAL},
		{"unknown opcode", raw(mov0, [5]int64{0xff, 0, 0, 0, 0}, exitInsn), vm.Options{}, 1, "unknown opcode", syscall.EINVAL},
		{"unknown ALU op 0xe0", raw([5]int64{0xe7, 0, 0, 0, 0}, exitInsn), vm.Options{}, 0, "unknown opcode", syscall.EINVAL},
		{"LDX MEMSX DW", raw([5]int64{0x99, 0, 10, -8, 0}, exitInsn), vm.Options{}, 0, "unknown opcode", syscall.EINVAL},
		{"LD_ABS DW", raw([5]int64{0x38, 0, 0, 0, 0}, exitInsn), vm.Options{}, 0, "unknown opcode", syscall.EINVAL},
		{"bad dst register", raw([5]int64{0xb7, 11, 0, 0, 0}, exitInsn), vm.Options{}, 0, "R11 is invalid", syscall.EINVAL},
		{"bad src register", raw(mov0, [5]int64{0xbf, 1, 12, 0, 0}, exitInsn), vm.Options{}, 1, "R12 is invalid", syscall.EINVAL},
		{"bad pointer register", raw([5]int64{0x61, 0, 13, 0, 0}, exitInsn), vm.Options{}, 0, "R13 is invalid", syscall.EINVAL},
		{"write to r10 (alu)", raw([5]int64{0x07, 10, 0, 0, 8}, exitInsn), vm.Options{}, 0, "frame pointer is read only", syscall.EACCES},
		{"write to r10 (ldx)", raw([5]int64{0x79, 10, 1, 0, 0}, exitInsn), vm.Options{}, 0, "frame pointer is read only", syscall.EACCES},
		{"write to r10 (ld_imm64)", raw([5]int64{0x18, 10, 0, 0, 0}, [5]int64{}, exitInsn), vm.Options{}, 0, "frame pointer is read only", syscall.EACCES},
		{"write to r10 (atomic fetch)", raw([5]int64{0xdb, 1, 10, 0, 1}, exitInsn), vm.Options{}, 0, "frame pointer is read only", syscall.EACCES},
		{"jump out of range", raw(mov0, [5]int64{0x05, 0, 0, 5, 0}, exitInsn), vm.Options{}, 1, "jump out of range", syscall.EINVAL},
		{"jump before start", raw(mov0, [5]int64{0x15, 0, 0, -3, 0}, exitInsn), vm.Options{}, 1, "jump out of range", syscall.EINVAL},
		{"gotol out of range", raw(mov0, [5]int64{0x06, 0, 0, 0, 100}, exitInsn), vm.Options{}, 1, "jump out of range", syscall.EINVAL},
		{"jump into ld_imm64", raw([5]int64{0x05, 0, 0, 1, 0}, [5]int64{0x18, 0, 0, 0, 1}, [5]int64{}, exitInsn), vm.Options{}, 0, "middle of ldimm64", syscall.EINVAL},
		{"ld_imm64 missing half", raw(mov0, exitInsn, [5]int64{0x18, 0, 0, 0, 1}), vm.Options{}, 2, "64bit immediate", syscall.EINVAL},
		{"ld_imm64 bad second half", raw([5]int64{0x18, 0, 0, 0, 1}, [5]int64{0x18, 0, 0, 0, 0}, exitInsn), vm.Options{}, 0, "non-zero fields", syscall.EINVAL},
		{"falls off the end", raw(mov0), vm.Options{}, 0, "last insn is not an exit or jmp", syscall.EINVAL},
		{"conditional jump last", raw(mov0, [5]int64{0x15, 0, 0, -2, 0}), vm.Options{}, 1, "last insn is not an exit or jmp", syscall.EINVAL},
		{"unknown helper named", raw([5]int64{0x85, 0, 0, 0, 1}, exitInsn), vm.Options{}, 0, "unknown helper FnMapLookupElem (1)", syscall.EINVAL},
		{"helper beyond table", raw([5]int64{0x85, 0, 0, 0, 211}, exitInsn), vm.Options{Helpers: make([]vm.HelperFunc, 3)}, 0, "unknown helper", syscall.EINVAL},
		{"negative helper", raw([5]int64{0x85, 0, 0, 0, -5}, exitInsn), vm.Options{}, 0, "unknown helper", syscall.EINVAL},
		{"callx by default", raw([5]int64{0x8d, 2, 0, 0, 0}, exitInsn), vm.Options{}, 0, "callx", syscall.EINVAL},
		{"kfunc call", raw([5]int64{0x85, 0, 2, 0, 7}, exitInsn), vm.Options{}, 0, "kfunc", syscall.EINVAL},
		{"map ref without resolver", raw([5]int64{0x18, 1, 1, 0, 3}, [5]int64{}, exitInsn), vm.Options{}, 0, "without a map resolver", syscall.EBADF},
		{"map ref resolver error", raw(mov0, [5]int64{0x18, 1, 5, 0, 3}, [5]int64{}, exitInsn),
			vm.Options{Maps: func(vm.MapRef) (uint64, error) { return 0, errors.New("no such map") }}, 1, "no such map", syscall.EBADF},
		{"map value not mapped", raw([5]int64{0x18, 1, 2, 0, 3}, [5]int64{0, 0, 0, 0, 8}, exitInsn),
			vm.Options{Maps: func(ref vm.MapRef) (uint64, error) { return 99 << 32, nil }}, 0, "not mapped", syscall.EINVAL},
		{"ld_imm64 ksym", raw([5]int64{0x18, 1, 3, 0, 3}, [5]int64{}, exitInsn), vm.Options{}, 0, "not supported", syscall.EINVAL},
		{"reserved field: ALU imm with src", raw([5]int64{0x07, 1, 2, 0, 1}, exitInsn), vm.Options{}, 0, "reserved fields", syscall.EINVAL},
		{"reserved field: exit with imm", raw([5]int64{0x95, 0, 0, 0, 1}), vm.Options{}, 0, "reserved fields", syscall.EINVAL},
		{"reserved field: sdiv off 2", raw([5]int64{0x37, 1, 0, 2, 1}, exitInsn), vm.Options{}, 0, "reserved fields", syscall.EINVAL},
		{"reserved field: movsx32 in ALU32", raw([5]int64{0xbc, 1, 2, 32, 0}, exitInsn), vm.Options{}, 0, "reserved fields", syscall.EINVAL},
		{"bad atomic op", raw([5]int64{0xdb, 1, 2, 0, 0x20}, exitInsn), vm.Options{}, 0, "atomic", syscall.EINVAL},
		{"atomic add on a byte", raw([5]int64{0xd3, 1, 2, 0, 0}, exitInsn), vm.Options{}, 0, "invalid atomic operand size", syscall.EINVAL},
		{"call target out of range", raw([5]int64{0x85, 0, 1, 0, 10}, exitInsn), vm.Options{}, 0, "out of range", syscall.EINVAL},
		{"jump across subprograms", raw(
			[5]int64{0x85, 0, 1, 0, 2}, // call +2
			[5]int64{0x05, 0, 0, 1, 0}, // ja +1: into the subprogram
			exitInsn,
			mov0, exitInsn), vm.Options{}, 1, "jump out of range", syscall.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vm.LoadRaw(tc.code, tc.opts)
			var ve *vm.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if ve.Insn != tc.insn || !strings.Contains(ve.Reason, tc.reason) || !errors.Is(err, tc.errno) {
				t.Errorf("err = %v (insn %d, errno %v), want insn %d, %q, %v", err, ve.Insn, ve.Errno, tc.insn, tc.reason, tc.errno)
			}
		})
	}
}

// chain returns main calling f1 calling ... f(depth-1): depth frames.
func chain(depth int) asm.Instructions {
	insns := asm.Instructions{asm.Call.Label("f1"), asm.Return()}
	for i := 1; i < depth; i++ {
		fn := asm.Instructions{asm.Mov.Imm(asm.R0, int32(i)).WithSymbol(fmt.Sprintf("f%d", i))}
		if i+1 < depth {
			fn = append(fn, asm.Call.Label(fmt.Sprintf("f%d", i+1)))
		}
		insns = append(insns, append(fn, asm.Return())...)
	}
	return insns
}

func TestLoad_CallDepth(t *testing.T) {
	if _, err := vm.Load(chain(vm.MaxFrames), vm.Options{}); err != nil {
		t.Errorf("%d frames: %v", vm.MaxFrames, err)
	}
	_, err := vm.Load(chain(vm.MaxFrames+1), vm.Options{})
	var ve *vm.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, syscall.E2BIG) || !strings.Contains(ve.Reason, "9 frames is too deep") {
		t.Errorf("%d frames: err = %v, want E2BIG naming 9 frames", vm.MaxFrames+1, err)
	}
}

func TestLoad_Recursion(t *testing.T) {
	for name, insns := range map[string]asm.Instructions{
		"self": {
			asm.Call.Label("f"), asm.Return(),
			asm.Call.Label("f").WithSymbol("f"), asm.Return(),
		},
		"mutual": {
			asm.Call.Label("f"), asm.Return(),
			asm.Call.Label("g").WithSymbol("f"), asm.Return(),
			asm.Call.Label("f").WithSymbol("g"), asm.Return(),
		},
	} {
		_, err := vm.Load(insns, vm.Options{})
		var ve *vm.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(ve.Reason, "recursive call") {
			t.Errorf("%s: err = %v, want a recursive call error", name, err)
		}
	}
}

func TestLoad_AsmIndex(t *testing.T) {
	// After an ld_imm64 the raw offset and the asm index differ; the error
	// names both.
	_, err := vm.Load(asm.Instructions{imm64(asm.R0, 1), asm.Mov.Imm(asm.R10, 1), asm.Return()}, vm.Options{})
	var ve *vm.ValidationError
	if !errors.As(err, &ve) || ve.Insn != 2 || ve.Index != 1 || !strings.Contains(err.Error(), "insn 2 (asm index 1)") {
		t.Errorf("err = %v (%+v)", err, ve)
	}
}

func TestLoad_UnresolvedReference(t *testing.T) {
	_, err := vm.Load(asm.Instructions{asm.Ja.Label("nowhere"), asm.Return()}, vm.Options{})
	if err == nil || !strings.Contains(err.Error(), `unresolved reference "nowhere"`) {
		t.Errorf("err = %v", err)
	}
	_, err = vm.Load(asm.Instructions{asm.Return().WithSymbol("a"), asm.Return().WithSymbol("a")}, vm.Options{})
	if err == nil || !strings.Contains(err.Error(), "duplicate symbol") {
		t.Errorf("err = %v", err)
	}
}

func TestLoad_Accepts(t *testing.T) {
	// Things the kernel accepts that a strict validator might not.
	for name, code := range map[string][]byte{
		"unconditional jump last": raw([5]int64{0xb7, 0, 0, 0, 0}, [5]int64{0x05, 0, 0, 1, 0}, exitInsn, [5]int64{0x05, 0, 0, -2, 0}),
		"compare with r10":        raw([5]int64{0xb7, 0, 0, 0, 0}, [5]int64{0x5d, 10, 1, 0, 0}, exitInsn),
		"store through r10":       raw([5]int64{0x7a, 10, 0, -8, 1}, [5]int64{0xb7, 0, 0, 0, 0}, exitInsn),
		"gotol last":              raw([5]int64{0xb7, 0, 0, 0, 0}, [5]int64{0x06, 0, 0, 0, 1}, exitInsn, [5]int64{0x06, 0, 0, 0, -2}),
		"bswap":                   raw([5]int64{0xd7, 0, 0, 0, 16}, exitInsn),
		"sign-extending load":     raw([5]int64{0x91, 0, 10, -1, 0}, exitInsn),
		"load-acquire byte":       raw([5]int64{0xd3, 0, 10, -1, 0x100}, exitInsn),
	} {
		if _, err := vm.LoadRaw(code, vm.Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
