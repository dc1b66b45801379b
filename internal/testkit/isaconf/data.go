package isaconf

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tcxgo/tcx/internal/vm"
)

// Case is one .data file of the corpus.
type Case struct {
	Name      string
	Asm       string   // -- asm
	Mem       []byte   // -- mem: the memory r1 points to (r2 = its length)
	Result    uint64   // -- result: expected r0
	HasResult bool     //
	Error     string   // -- error: the expected failure, if any
	Raw       []uint64 // -- raw: the reference encoding, when given
}

// ParseFile reads a .data file.
func ParseFile(path string) (*Case, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Name = strings.TrimSuffix(filepath.Base(path), ".data")
	return c, nil
}

// Parse reads the sections of a .data file.
func Parse(text string) (*Case, error) {
	sections := map[string]string{}
	var cur string
	for _, line := range strings.SplitAfter(text, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "-- "); ok {
			cur = name
			sections[cur] += ""
			continue
		}
		if cur != "" {
			sections[cur] += line
		}
	}
	c := &Case{Asm: sections["asm"]}
	if _, ok := sections["asm"]; !ok {
		return nil, errors.New("no -- asm section")
	}
	if m, ok := sections["mem"]; ok {
		h := strings.Join(strings.Fields(m), "")
		mem, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("-- mem: %w", err)
		}
		c.Mem = mem
	}
	if r, ok := sections["result"]; ok {
		v, err := parseHex(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("-- result: %w", err)
		}
		c.Result, c.HasResult = v, true
	}
	c.Error = strings.TrimSpace(sections["error"])
	for _, w := range strings.Fields(sections["raw"]) {
		v, err := parseHex(w)
		if err != nil {
			return nil, fmt.Errorf("-- raw: %w", err)
		}
		c.Raw = append(c.Raw, v)
	}
	return c, nil
}

func parseHex(s string) (uint64, error) {
	s = strings.TrimPrefix(strings.ToLower(s), "0x")
	return strconv.ParseUint(s, 16, 64)
}

// RawBytes is the -- raw section as bytecode (each word is one instruction
// as a little-endian u64: opcode in the low byte).
func (c *Case) RawBytes() []byte {
	out := make([]byte, 0, 8*len(c.Raw))
	for _, w := range c.Raw {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out
}

// Unwind is the corpus's helper 5: it returns its argument and, when that
// is 0, ends the program with r0 = 0.
func Unwind(m *vm.Machine, r1, _, _, _, _ uint64) (uint64, error) {
	if r1 == 0 {
		m.Exit()
	}
	return r1, nil
}

// Limit bounds every conformance run, so a miscompiled loop cannot hang the suite.
const Limit = 1 << 24

// Run assembles and runs c in the interpreter on a fresh Machine: memory
// as the packet, r1 = its address, r2 = its length (both 0 without
// memory), helper 5 = Unwind, callx allowed.
func (c *Case) Run() (uint64, error) {
	r0, _, err := c.RunOn(vm.EngineInterp)
	return r0, err
}

// RunOn is Run on the engine e; p is the loaded program (nil if the load
// failed), so callers can ask whether it was compiled.
func (c *Case) RunOn(e vm.Engine) (r0 uint64, p *vm.Program, err error) {
	code, err := Assemble(c.Asm)
	if err != nil {
		return 0, nil, fmt.Errorf("assemble: %w", err)
	}
	helpers := make([]vm.HelperFunc, 6)
	helpers[5] = Unwind
	p, err = vm.LoadRaw(code, vm.Options{Helpers: helpers, AllowCallx: true, Engine: e})
	if err != nil {
		return 0, nil, err
	}
	m := vm.NewMachine()
	m.SetLimit(Limit)
	if c.Mem == nil {
		r0, err = m.Run(p, 0, 0)
		return r0, p, err
	}
	// A private copy: the program may write to its memory.
	mem := append([]byte(nil), c.Mem...)
	if err := m.SetPacket(mem, 0, 0, len(mem)); err != nil {
		return 0, p, err
	}
	r0, err = m.Run(p, vm.PacketAddr(0), uint64(len(mem)))
	return r0, p, err
}
