package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

func TestTCAction_NamesAndTCXMeaning(t *testing.T) {
	for _, tc := range []struct {
		retval    int32
		name, tcx string
	}{
		{-1, "TC_ACT_UNSPEC", "next"}, {0, "TC_ACT_OK", "pass"}, {1, "TC_ACT_RECLASSIFY", "next"},
		{2, "TC_ACT_SHOT", "drop"}, {3, "TC_ACT_PIPE", "next"}, {4, "TC_ACT_STOLEN", "next"},
		{5, "TC_ACT_QUEUED", "next"}, {6, "TC_ACT_REPEAT", "next"}, {7, "TC_ACT_REDIRECT", "redirect"},
		{8, "TC_ACT_TRAP", "next"}, {9, "unknown", "next"}, {-2, "unknown", "next"},
	} {
		name, tcx := tcAction(tc.retval)
		if name != tc.name || tcx != tc.tcx {
			t.Errorf("tcAction(%d) = %s, %s; want %s, %s", tc.retval, name, tcx, tc.name, tc.tcx)
		}
	}
}

func TestDiffRuns_MergesSmallGapsAndNamesHeaders(t *testing.T) {
	old := fixtureFrames(t)[0].data // Ethernet, IPv4, UDP, payload
	new := bytes.Clone(old)
	new[26], new[28], new[29] = 0xc0, 0x02, 0x05 // saddr: 3 bytes change, gap of 1
	new[36] = 0xff                               // UDP dport
	new[50] ^= 1                                 // payload
	runs := diffRuns(old, new)
	if len(runs) != 3 {
		t.Fatalf("%d runs: %+v", len(runs), runs)
	}
	want := []struct {
		off    int
		header string
		n      int
	}{{26, "IPv4+12", 4}, {36, "UDP+2", 1}, {50, "payload+8", 1}}
	for i, w := range want {
		r := runs[i]
		if r.Offset != w.off || r.Header != w.header || len(r.Old) != w.n || len(r.New) != w.n {
			t.Errorf("run %d = %+v, want offset %d header %s length %d", i, r, w.off, w.header, w.n)
		}
	}
	if n := changedBytes(runs); n != 5 {
		t.Errorf("changedBytes = %d, want 5", n)
	}
	if runs := diffRuns(old, old); len(runs) != 0 {
		t.Errorf("equal frames: %+v", runs)
	}
	// Gaps of runGap+1 equal bytes split runs.
	new = bytes.Clone(old)
	new[0], new[runGap+2] = 0xaa, 0xaa
	if runs := diffRuns(old, new); len(runs) != 2 {
		t.Errorf("gap of %d: %d runs", runGap+1, len(runs))
	}
}

func TestHeaderSpans_UndecodableFramesArePayload(t *testing.T) {
	spans := headerSpans(fixtureFrames(t)[3].data) // IPv6 UDP
	var names []string
	for _, s := range spans {
		names = append(names, s.name)
	}
	if got := strings.Join(names, ","); got != "Ethernet,IPv6,UDP,payload" {
		t.Errorf("layers %s", got)
	}
	junk := append([]byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00}, 0xff, 0xff)
	if got := headerAt(headerSpans(junk), 15); got != "payload+1" {
		t.Errorf("broken IPv4 header: %s", got)
	}
}

func TestWriteRuns_SplitsLongRuns(t *testing.T) {
	old := make([]byte, 20)
	new := bytes.Repeat([]byte{1}, 20)
	var buf bytes.Buffer
	writeRuns(&buf, "", []byteRun{{Offset: 4, Header: "X+0", Old: old, New: new}})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "@4     X+0") || !strings.HasPrefix(lines[1], "@12 ") ||
		!strings.HasSuffix(lines[2], "00 00 00 00 -> 01 01 01 01") {
		t.Errorf("writeRuns:\n%s", buf.String())
	}
}

func TestHexdump_Layout(t *testing.T) {
	var buf bytes.Buffer
	hexdump(&buf, "  ", []byte("0123456789abcdef\x00\x7fZ"))
	want := "  0000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n" +
		"  0010  00 7f 5a                                          |..Z|\n"
	if buf.String() != want {
		t.Errorf("hexdump:\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestWriteWrapped_BreaksAtWidth(t *testing.T) {
	var buf bytes.Buffer
	parts := []string{strings.Repeat("a", 30), strings.Repeat("b", 30), strings.Repeat("c", 30), "d"}
	writeWrapped(&buf, "  skb  ", parts)
	want := "  skb  " + strings.Repeat("a", 30) + ", " + strings.Repeat("b", 30) + ",\n" +
		"       " + strings.Repeat("c", 30) + ", d\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestFormatBTF_Types(t *testing.T) {
	u8 := &btf.Int{Name: "unsigned char", Size: 1}
	u16 := &btf.Int{Name: "unsigned short", Size: 2}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	s32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	be32 := &btf.Typedef{Name: "__be32", Type: u32}
	be16 := &btf.Typedef{Name: "__be16", Type: u16}
	boolean := &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}
	enum := &btf.Enum{Name: "verdict", Size: 4, Values: []btf.EnumValue{{Name: "PASS", Value: 0}, {Name: "DROP", Value: 2}}}
	flow := &btf.Struct{Name: "flow", Size: 16, Members: []btf.Member{
		{Name: "saddr", Type: be32, Offset: 0},
		{Name: "sport", Type: be16, Offset: 32},
		{Name: "delta", Type: &btf.Const{Type: s32}, Offset: 64},
		{Name: "mac", Type: &btf.Array{Type: u8, Index: u32, Nelems: 2}, Offset: 96},
		{Name: "ok", Type: boolean, Offset: 112},
		{Name: "flags", Type: u8, Offset: 120, BitfieldSize: 3},
		{Name: "kind", Type: u8, Offset: 123, BitfieldSize: 5},
	}}
	b := []byte{10, 0, 0, 1, 0x1f, 0x90, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xaa, 0xbb, 1, 0b10101_110}
	if got, want := formatBTF(flow, b), "{saddr=0x0a000001 sport=0x1f90 delta=-2 mac=0xaabb ok=true flags=6 kind=21}"; got != want {
		t.Errorf("struct: %s\nwant    %s", got, want)
	}
	words := &btf.Array{Type: u32, Index: u32, Nelems: 3}
	if got := formatBTF(words, []byte{1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}); got != "[1 2 4294967295]" {
		t.Errorf("array: %s", got)
	}
	if got := formatBTF(enum, []byte{2, 0, 0, 0}); got != "DROP" {
		t.Errorf("enum: %s", got)
	}
	if got := formatBTF(enum, []byte{5, 0, 0, 0}); got != "5" {
		t.Errorf("enum without a name: %s", got)
	}
	sec := &btf.Datasec{Name: ".bss", Size: 8, Vars: []btf.VarSecinfo{
		{Type: &btf.Var{Name: "hits", Type: u32}, Offset: 0, Size: 4},
		{Type: &btf.Var{Name: "last", Type: s32}, Offset: 4, Size: 4},
	}}
	if got := formatBTF(sec, []byte{3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}); got != "{hits=3 last=-1}" {
		t.Errorf("datasec: %s", got)
	}
	// A value the type does not describe falls back to hex ("").
	for name, tc := range map[string]struct {
		t btf.Type
		b []byte
	}{
		"nil":        {nil, []byte{1}},
		"void":       {&btf.Void{}, []byte{1}},
		"short":      {flow, b[:8]},
		"wide int":   {&btf.Int{Name: "__int128", Size: 16}, make([]byte, 16)},
		"bad member": {&btf.Struct{Size: 4, Members: []btf.Member{{Name: "x", Type: u32, Offset: 64}}}, make([]byte, 4)},
	} {
		if got := formatBTF(tc.t, tc.b); got != "" {
			t.Errorf("%s: %q, want fallback", name, got)
		}
	}
}

// TestFormatBTF_CorpusMaps formats every map value type of a real object
// and checks a known one.
func TestFormatBTF_CorpusMaps(t *testing.T) {
	rep := runJSON(t, "test-run", objNat44, "--hex-file", fixtureHex, "--dump-maps", "--json")
	var conntrack *mapDump
	for i := range rep.Maps {
		if rep.Maps[i].Name == "nat_conntrack" {
			conntrack = &rep.Maps[i]
		}
	}
	if conntrack == nil || len(conntrack.Entries) != 3 {
		t.Fatalf("nat_conntrack: %+v", conntrack)
	}
	e := conntrack.Entries[0]
	if !strings.HasPrefix(e.KeyBTF, "{saddr=0x0a000001 daddr=0x08080808 sport=0x9c40 dport=0x0035 proto=17") ||
		len(e.ValueBTF) != 1 || !strings.HasSuffix(e.ValueBTF[0], "packets=2}") {
		t.Errorf("first conntrack entry %+v", e)
	}
	// The hex and the formatted value agree: packets is the last u32.
	if e.Value[len(e.Value)-8:] != "02000000" {
		t.Errorf("raw value %s", e.Value)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func TestVariableBytes_Forms(t *testing.T) {
	u16 := &btf.Int{Name: "unsigned short", Size: 2}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	s8 := &btf.Int{Name: "signed char", Size: 1, Encoding: btf.Signed}
	be32 := &btf.Typedef{Name: "__be32", Type: u32}
	arr6 := &btf.Array{Type: &btf.Int{Name: "unsigned char", Size: 1}, Index: u32, Nelems: 6}
	arr16 := &btf.Array{Type: &btf.Int{Name: "unsigned char", Size: 1}, Index: u32, Nelems: 16}
	variable := func(typ btf.Type, size int) *ebpf.VariableSpec {
		return &ebpf.VariableSpec{Name: "v", Type: &btf.Var{Name: "v", Type: &btf.Volatile{Type: &btf.Const{Type: typ}}}, Value: make([]byte, size)}
	}
	for _, tc := range []struct {
		v     *ebpf.VariableSpec
		value string
		want  []byte
	}{
		{variable(u16, 2), "20000", binary.NativeEndian.AppendUint16(nil, 20000)},
		{variable(u16, 2), "0xffff", []byte{0xff, 0xff}},
		{variable(u32, 4), "7", binary.NativeEndian.AppendUint32(nil, 7)},
		{variable(u32, 4), "10.1.2.3", []byte{10, 1, 2, 3}},
		{variable(be32, 4), "0x0a000001", []byte{10, 0, 0, 1}},
		{variable(be32, 4), "192.0.2.1", []byte{192, 0, 2, 1}},
		{variable(s8, 1), "-2", []byte{0xfe}},
		{variable(&btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}, 1), "true", []byte{1}},
		{variable(arr6, 6), "02:00:00:00:00:99", []byte{2, 0, 0, 0, 0, 0x99}},
		{variable(arr6, 6), "0200 0000 0042", []byte{2, 0, 0, 0, 0, 0x42}},
		{variable(arr16, 16), "2001:db8::1", append([]byte{0x20, 0x01, 0x0d, 0xb8}, append(make([]byte, 11), 1)...)},
		{variable(arr6, 6), `"ab"`, []byte{'a', 'b', 0, 0, 0, 0}},
		{variable(arr6, 6), `""`, make([]byte, 6)},
	} {
		got, err := variableBytes(tc.v, tc.value)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s as %v: %x, %v; want %x", tc.value, tc.v.Type.Type, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		v     *ebpf.VariableSpec
		value string
	}{
		{variable(u16, 2), "70000"}, {variable(u16, 2), "-1"}, {variable(s8, 1), "200"},
		{variable(u32, 4), "2001:db8::1"}, {variable(arr6, 6), "0102"}, {variable(u32, 4), "x"},
		{variable(arr6, 6), `"abcdef"`}, {variable(u32, 4), `"ab"`},
	} {
		if got, err := variableBytes(tc.v, tc.value); err == nil {
			t.Errorf("%s as %v: %x, want an error", tc.value, tc.v.Type.Type, got)
		}
	}
}

func TestWritePacket_RedirectErrorAndTime(t *testing.T) {
	r := &packetReport{Index: 2, Origin: "--hex #2", Len: 60, Retval: 2, Action: "TC_ACT_SHOT", TCX: "drop",
		Executed: 12, Error: "run p: fault", LenOut: 60, Repeat: 100, NsPerRun: 41.25,
		Redirect: &redirectInfo{Helper: "bpf_redirect_peer", Ifindex: 9, Ingress: true, Taken: false},
		Ctx:      []fieldChange{{Field: "mark", Before: 0, After: 42, hex: true}, {Field: "cb[1]", Before: 1, After: 2}}}
	var buf bytes.Buffer
	writePacket(&buf, r, &testRunOptions{})
	want := `
packet 2 (--hex #2): 60 bytes
  retval    2 TC_ACT_SHOT (tcx: drop) after 12 insns
  error     run p: fault
  data      unchanged
  redirect  bpf_redirect_peer to ifindex 9 ingress (not taken: retval is not TC_ACT_REDIRECT)
  skb       mark 0x0 -> 0x2a, cb[1] 1 -> 2
  time      41.2 ns/run (mean of 100 runs)
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
