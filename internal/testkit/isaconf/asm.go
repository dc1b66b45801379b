package isaconf

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Assemble translates uBPF/bpf_conformance assembly into little-endian
// bytecode. Syntax, one instruction or "label:" per line, "#" starts a
// comment:
//
//	add %r1, %r2        add32 %r1, 7      movsx1632 %r2, %r1    be16 %r3   bswap64 %r1 (= swap64)
//	ldxh %r9, [%r0+2]   ldxsb %r0, [%r10-1]   stw [%r10-4], 1   stxdw [%r1], %r2
//	lddw %r0, 0x1122334455667788
//	jeq %r1, 0x80, +1   jne32 %r0, %r1, label   ja label   ja32 label
//	call 5   call local func   call %r2   exit
//	lock [fetch] add|and|or|xor|xchg|cmpxchg[32] [%r10-8], %r1
//
// A jump to "exit" without such a label targets the first exit instruction.
func Assemble(src string) ([]byte, error) {
	a := &assembler{labels: map[string]int{}}
	for n, line := range strings.Split(src, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if err := a.line(fields); err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, strings.TrimSpace(line), err)
		}
	}
	return a.finish()
}

type slot struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
	label    string // jump/call target to resolve
	inImm    bool   // the target goes into imm (call local, ja32)
}

type assembler struct {
	slots  []slot
	labels map[string]int
}

func (a *assembler) line(f []string) error {
	mn := f[0]
	if strings.HasSuffix(mn, ":") && len(f) == 1 {
		name := strings.TrimSuffix(mn, ":")
		if _, dup := a.labels[name]; dup {
			return fmt.Errorf("duplicate label %q", name)
		}
		a.labels[name] = len(a.slots)
		return nil
	}
	ops := make([]string, 0, len(f)-1)
	for _, o := range f[1:] {
		ops = append(ops, strings.TrimSuffix(o, ","))
	}
	if mn == "exit" {
		if _, ok := a.labels["exit"]; !ok {
			a.labels["exit"] = len(a.slots)
		}
	}
	switch {
	case mn == "lock":
		return a.atomic(ops)
	case mn == "lddw":
		return a.lddw(ops)
	case mn == "exit", mn == "call", mn == "ja", mn == "ja32", strings.HasPrefix(mn, "j"):
		return a.jump(mn, ops)
	case strings.HasPrefix(mn, "ldx"):
		return a.ldx(mn, ops)
	case strings.HasPrefix(mn, "stx"):
		return a.stx(mn, ops)
	case strings.HasPrefix(mn, "st"):
		return a.st(mn, ops)
	default:
		return a.alu(mn, ops)
	}
}

func (a *assembler) emit(s slot) { a.slots = append(a.slots, s) }

func want(ops []string, n int) error {
	if len(ops) != n {
		return fmt.Errorf("want %d operands, have %d", n, len(ops))
	}
	return nil
}

var aluOps = map[string]uint8{
	"add": 0x00, "sub": 0x10, "mul": 0x20, "div": 0x30, "sdiv": 0x30, "or": 0x40, "and": 0x50,
	"lsh": 0x60, "rsh": 0x70, "neg": 0x80, "mod": 0x90, "smod": 0x90, "xor": 0xa0, "mov": 0xb0, "arsh": 0xc0,
}

func (a *assembler) alu(mn string, ops []string) error {
	for _, p := range []struct {
		prefix string
		code   uint8
	}{{"be", 0xdc}, {"le", 0xd4}, {"swap", 0xd7}, {"bswap", 0xd7}} {
		if w, ok := strings.CutPrefix(mn, p.prefix); ok && (w == "16" || w == "32" || w == "64") {
			if err := want(ops, 1); err != nil {
				return err
			}
			dst, err := reg(ops[0])
			if err != nil {
				return err
			}
			width, _ := strconv.Atoi(w)
			a.emit(slot{code: p.code, dst: dst, imm: int32(width)})
			return nil
		}
	}
	s := slot{code: 0x07} // ALU64
	name := mn
	if rest, ok := strings.CutPrefix(mn, "movsx"); ok && len(rest) > 2 {
		name = "mov"
		off, err := strconv.Atoi(rest[:len(rest)-2])
		if err != nil {
			return fmt.Errorf("unknown mnemonic %q", mn)
		}
		s.off = int16(off)
		rest = rest[len(rest)-2:]
		if rest == "32" {
			s.code = 0x04
		} else if rest != "64" {
			return fmt.Errorf("unknown mnemonic %q", mn)
		}
	} else if base, ok := strings.CutSuffix(mn, "32"); ok {
		name, s.code = base, 0x04
	}
	op, ok := aluOps[name]
	if !ok {
		return fmt.Errorf("unknown mnemonic %q", mn)
	}
	if name == "sdiv" || name == "smod" {
		s.off = 1
	}
	s.code |= op
	n := 2
	if name == "neg" {
		n = 1
	}
	if err := want(ops, n); err != nil {
		return err
	}
	var err error
	if s.dst, err = reg(ops[0]); err != nil {
		return err
	}
	if n == 2 {
		if err := a.source(&s, ops[1]); err != nil {
			return err
		}
	}
	a.emit(s)
	return nil
}

// source sets the register (BPF_X) or immediate operand.
func (a *assembler) source(s *slot, o string) error {
	if strings.HasPrefix(o, "%") {
		r, err := reg(o)
		s.src, s.code = r, s.code|0x08
		return err
	}
	v, err := num(o)
	s.imm = int32(uint32(v))
	return err
}

var jmpOps = map[string]uint8{
	"jeq": 0x10, "jgt": 0x20, "jge": 0x30, "jset": 0x40, "jne": 0x50, "jsgt": 0x60, "jsge": 0x70,
	"jlt": 0xa0, "jle": 0xb0, "jslt": 0xc0, "jsle": 0xd0,
}

func (a *assembler) jump(mn string, ops []string) error {
	switch mn {
	case "exit":
		a.emit(slot{code: 0x95})
		return want(ops, 0)
	case "ja", "ja32":
		if err := want(ops, 1); err != nil {
			return err
		}
		s := slot{code: 0x05}
		if mn == "ja32" {
			s.code, s.inImm = 0x06, true
		}
		return a.target(s, ops[0])
	case "call":
		return a.call(ops)
	}
	s := slot{code: 0x05}
	name := mn
	if base, ok := strings.CutSuffix(mn, "32"); ok {
		name, s.code = base, 0x06
	}
	op, ok := jmpOps[name]
	if !ok {
		return fmt.Errorf("unknown mnemonic %q", mn)
	}
	s.code |= op
	if err := want(ops, 3); err != nil {
		return err
	}
	var err error
	if s.dst, err = reg(ops[0]); err != nil {
		return err
	}
	if err := a.source(&s, ops[1]); err != nil {
		return err
	}
	return a.target(s, ops[2])
}

func (a *assembler) call(ops []string) error {
	if len(ops) == 1 {
		ops = []string{"helper", ops[0]}
	}
	if err := want(ops, 2); err != nil {
		return err
	}
	switch mode, t := ops[0], ops[1]; {
	case mode == "local":
		return a.target(slot{code: 0x85, src: 1, inImm: true}, t)
	case mode == "helper" && strings.HasPrefix(t, "%"):
		r, err := reg(t)
		a.emit(slot{code: 0x8d, dst: r})
		return err
	case mode == "helper":
		v, err := num(t)
		a.emit(slot{code: 0x85, imm: int32(uint32(v))})
		return err
	}
	return fmt.Errorf("invalid call mode %q", ops[0])
}

// target emits s jumping to a label or a relative "+N"/"-N".
func (a *assembler) target(s slot, t string) error {
	if strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-") {
		v, err := num(t)
		if s.inImm {
			s.imm = int32(v)
		} else {
			s.off = int16(v)
		}
		a.emit(s)
		return err
	}
	s.label = t
	a.emit(s)
	return nil
}

func (a *assembler) lddw(ops []string) error {
	if err := want(ops, 2); err != nil {
		return err
	}
	dst, err := reg(ops[0])
	if err != nil {
		return err
	}
	v, err := num(ops[1])
	a.emit(slot{code: 0x18, dst: dst, imm: int32(uint32(v))})
	a.emit(slot{imm: int32(uint32(v >> 32))})
	return err
}

var sizes = map[string]uint8{"b": 0x10, "h": 0x08, "w": 0x00, "dw": 0x18}

func (a *assembler) ldx(mn string, ops []string) error {
	s := slot{code: 0x01 | 0x60}
	sz := strings.TrimPrefix(mn, "ldx")
	if rest, ok := strings.CutPrefix(sz, "s"); ok && rest != "" && rest != "dw" {
		s.code, sz = 0x01|0x80, rest
	}
	size, ok := sizes[sz]
	if !ok {
		return fmt.Errorf("unknown mnemonic %q", mn)
	}
	s.code |= size
	if err := want(ops, 2); err != nil {
		return err
	}
	var err error
	if s.dst, err = reg(ops[0]); err != nil {
		return err
	}
	if s.src, s.off, err = memOperand(ops[1]); err != nil {
		return err
	}
	a.emit(s)
	return nil
}

func (a *assembler) st(mn string, ops []string) error {
	size, ok := sizes[strings.TrimPrefix(mn, "st")]
	if !ok {
		return fmt.Errorf("unknown mnemonic %q", mn)
	}
	if err := want(ops, 2); err != nil {
		return err
	}
	s := slot{code: 0x02 | 0x60 | size}
	var err error
	if s.dst, s.off, err = memOperand(ops[0]); err != nil {
		return err
	}
	v, err := num(ops[1])
	s.imm = int32(uint32(v))
	a.emit(s)
	return err
}

func (a *assembler) stx(mn string, ops []string) error {
	size, ok := sizes[strings.TrimPrefix(mn, "stx")]
	if !ok {
		return fmt.Errorf("unknown mnemonic %q", mn)
	}
	if err := want(ops, 2); err != nil {
		return err
	}
	s := slot{code: 0x03 | 0x60 | size}
	var err error
	if s.dst, s.off, err = memOperand(ops[0]); err != nil {
		return err
	}
	s.src, err = reg(ops[1])
	a.emit(s)
	return err
}

var atomicOps = map[string]int32{"add": 0x00, "or": 0x40, "and": 0x50, "xor": 0xa0, "xchg": 0xe1, "cmpxchg": 0xf1}

func (a *assembler) atomic(ops []string) error {
	fetch := len(ops) > 0 && ops[0] == "fetch"
	if fetch {
		ops = ops[1:]
	}
	if err := want(ops, 3); err != nil {
		return err
	}
	s := slot{code: 0x03 | 0xc0 | 0x18}
	name := ops[0]
	if base, ok := strings.CutSuffix(name, "32"); ok {
		name, s.code = base, 0x03|0xc0|0x00
	}
	imm, ok := atomicOps[name]
	if !ok {
		return fmt.Errorf("unknown atomic operation %q", ops[0])
	}
	if fetch {
		imm |= 0x01
	}
	s.imm = imm
	var err error
	if s.dst, s.off, err = memOperand(ops[1]); err != nil {
		return err
	}
	s.src, err = reg(ops[2])
	a.emit(s)
	return err
}

func (a *assembler) finish() ([]byte, error) {
	out := make([]byte, 0, 8*len(a.slots))
	for i, s := range a.slots {
		if s.label != "" {
			t, ok := a.labels[s.label]
			if !ok {
				return nil, fmt.Errorf("undefined label %q", s.label)
			}
			if s.inImm {
				s.imm = int32(t - i - 1)
			} else {
				s.off = int16(t - i - 1)
			}
		}
		out = append(out, s.code, s.dst&0xf|s.src<<4)
		out = binary.LittleEndian.AppendUint16(out, uint16(s.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(s.imm))
	}
	return out, nil
}

func reg(s string) (uint8, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "%r"), 10, 8)
	if err != nil || !strings.HasPrefix(s, "%r") || n > 15 {
		return 0, fmt.Errorf("invalid register %q", s)
	}
	return uint8(n), nil
}

// memOperand parses "[%rN]", "[%rN+off]" or "[%rN-off]".
func memOperand(s string) (uint8, int16, error) {
	inner, ok := strings.CutPrefix(s, "[")
	if inner, ok = strings.CutSuffix(inner, "]"); !ok {
		return 0, 0, fmt.Errorf("invalid memory operand %q", s)
	}
	i := strings.IndexAny(inner, "+-")
	if i < 0 {
		r, err := reg(inner)
		return r, 0, err
	}
	r, err := reg(inner[:i])
	if err != nil {
		return 0, 0, err
	}
	off, err := num(inner[i:])
	return r, int16(off), err
}

// num parses a decimal or 0x-hex number with an optional sign; negative
// values wrap, as the reference assembler's stoull does.
func num(s string) (uint64, error) {
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	base := 10
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		s, base = h, 16
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	if neg {
		v = -v
	}
	return v, nil
}
