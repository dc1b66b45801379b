package isaconf

import (
	"bytes"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

func TestAssemble_Encodings(t *testing.T) {
	for _, tc := range []struct{ src, hex string }{
		{"exit", "9500000000000000"},
		{"mov %r0, 1", "b700000001000000"},
		{"mov32 %r0, -1", "b4000000ffffffff"},
		{"add %r1, %r2", "0f21000000000000"},
		{"sdiv32 %r1, 3", "3401010003000000"},
		{"smod %r1, %r2", "9f21010000000000"},
		{"movsx1632 %r2, %r1", "bc12100000000000"},
		{"movsx3264 %r0, %r9", "bf90200000000000"},
		{"neg %r3", "8703000000000000"},
		{"be16 %r3", "dc03000010000000"},
		{"le64 %r3", "d403000040000000"},
		{"swap32 %r3", "d703000020000000"},
		{"bswap64 %r3", "d703000040000000"},
		{"lddw %r0, 0x1122334455667788", "18000000887766550000000044332211"},
		{"ldxh %r9, [%r0+2]", "6909020000000000"},
		{"ldxsw %r0, [%r10-4]", "81a0fcff00000000"},
		{"ldxdw %r0, [%r1]", "7910000000000000"},
		{"stb [%r10-1], 0x80", "720affff80000000"},
		{"stxdw [%r10-8], %r0", "7b0af8ff00000000"},
		{"jeq %r1, 0x80000000, +1", "1501010000000080"},
		{"jne32 %r0, %r1, -2", "5e10feff00000000"},
		{"ja +3", "0500030000000000"},
		{"ja32 +3", "0600000003000000"},
		{"call 5", "8500000005000000"},
		{"call %r2", "8d02000000000000"},
		{"lock add [%r10-8], %r1", "db1af8ff00000000"},
		{"lock fetch xor32 [%r10-4], %r1", "c31afcffa1000000"},
		{"lock xchg [%r10-8], %r1", "db1af8ffe1000000"},
		{"lock cmpxchg32 [%r10-8], %r1", "c31af8fff1000000"},
		{"mov %r0, 0 # trailing comment", "b700000000000000"},
	} {
		got, err := Assemble(tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if h := hex.EncodeToString(got); h != tc.hex {
			t.Errorf("%q = %s, want %s", tc.src, h, tc.hex)
		}
	}
}

func TestAssemble_Labels(t *testing.T) {
	got, err := Assemble(`
ja L
exit
L:
jeq %r0, 0, exit
call local f
exit
f:
exit`)
	if err != nil {
		t.Fatal(err)
	}
	want := "0500010000000000" + // ja +1
		"9500000000000000" +
		"1500feff00000000" + // jeq to the first exit: 1 - 2 - 1 = -2
		"8510000001000000" + // call local +1
		"9500000000000000" +
		"9500000000000000"
	if h := hex.EncodeToString(got); h != want {
		t.Errorf("got  %s\nwant %s", h, want)
	}
}

func TestAssemble_Errors(t *testing.T) {
	for src, want := range map[string]string{
		"frob %r0":             "unknown mnemonic",
		"mov %r16, 1":          "invalid register",
		"mov r1, 1":            "invalid register",
		"mov %r1":              "want 2 operands",
		"ja nowhere":           "undefined label",
		"a:\na:\nexit":         "duplicate label",
		"ldxw %r0, %r1":        "invalid memory operand",
		"mov %r0, 0xzz":        "invalid number",
		"lock nand [%r1], %r2": "unknown atomic operation",
		"call weird 1":         "invalid call mode",
	} {
		_, err := Assemble(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
}

// TestAssemble_CorpusRaw checks the assembler against the reference
// encodings some corpus files carry.
func TestAssemble_CorpusRaw(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.data"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		c, err := ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Raw) == 0 {
			continue
		}
		n++
		got, err := Assemble(c.Asm)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if !bytes.Equal(got, c.RawBytes()) {
			t.Errorf("%s: assembled %x, raw %x", c.Name, got, c.RawBytes())
		}
	}
	if n == 0 {
		t.Error("no corpus file has a -- raw section")
	}
}

func TestParse_Sections(t *testing.T) {
	c, err := Parse(`# comment
-- asm
mov %r0, 1
exit
-- mem
00 01 02
ff
-- result
0xFFFFFFFFFFFFFFF6
-- error
boom
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Asm != "mov %r0, 1\nexit\n" || !bytes.Equal(c.Mem, []byte{0, 1, 2, 0xff}) ||
		!c.HasResult || c.Result != 0xFFFFFFFFFFFFFFF6 || c.Error != "boom" {
		t.Errorf("parsed %+v", c)
	}
	if _, err := Parse("-- result\n1\n"); err == nil {
		t.Error("a file without -- asm parsed")
	}
	if _, err := Parse("-- asm\nexit\n-- mem\n0g\n"); err == nil {
		t.Error("bad -- mem hex parsed")
	}
}

func FuzzAssemble(f *testing.F) {
	f.Add("mov %r0, 1\nexit")
	f.Add("lock fetch add32 [%r10-4], %r1\nja32 L\nL:\nexit")
	f.Add("ldxh %r9, [%r0+0x10]\njeq %r1, -1, exit\ncall local x\nx:\nexit")
	f.Fuzz(func(t *testing.T, src string) {
		code, err := Assemble(src)
		if err == nil && len(code)%8 != 0 {
			t.Fatalf("%d bytes", len(code))
		}
	})
}
