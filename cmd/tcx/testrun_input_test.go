package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestParseHex_Separators(t *testing.T) {
	want := []byte{0x02, 0x00, 0xab, 0xcd, 0xef, 0x10}
	for _, in := range []string{
		"0200abcdef10",
		"02 00 ab cd ef 10",
		"02:00:AB:CD:EF:10",
		"0x0200abcdef10",
		"02-00-ab-cd-ef-10",
		"\t0200 abcd\tef10 \r",
		"0200abcd  ef10",
	} {
		got, err := parseHex(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("parseHex(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	if got, err := parseHex(""); err != nil || len(got) != 0 {
		t.Errorf("parseHex(\"\") = %x, %v", got, err)
	}
}

func TestParseHex_ErrorsNameTheColumn(t *testing.T) {
	for in, want := range map[string]string{
		"0g":          "column 2: invalid hex digit 'g'",
		"02 0x":       "column 5: invalid hex digit 'x'",
		"abc":         "column 3: lone hex digit 'c' (a byte needs two)",
		"a bc":        "column 1: lone hex digit 'a' (a byte needs two)",
		"0201:0:03":   "column 6: lone hex digit '0' (a byte needs two)",
		"00 é":        "column 4: invalid hex digit 'é'",
		"00\xff":      "column 3: invalid hex digit (byte 0xff)",
		"00,11":       "column 3: invalid hex digit ','",
		"0x0x00":      "column 4: invalid hex digit 'x'",
		"02 00 01 0z": "column 11: invalid hex digit 'z'",
	} {
		_, err := parseHex(in)
		if err == nil || err.Error() != want {
			t.Errorf("parseHex(%q) error %v, want %q", in, err, want)
		}
	}
}

func TestReadHexFile_SkipsCommentsAndBlankLines(t *testing.T) {
	in := "# header\n\n0102030405060708090a0b0c0d0e\n   \n  # indented comment\naa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77\n"
	frames, err := readHexFile(strings.NewReader(in), "f.hex")
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 || frames[0].origin != "f.hex:3" || frames[1].origin != "f.hex:6" {
		t.Fatalf("frames %+v", frames)
	}
	if frames[1].data[0] != 0xaa || len(frames[1].data) != 14 {
		t.Errorf("second frame %x", frames[1].data)
	}
	_, err = readHexFile(strings.NewReader("00 11\n00 1\n"), "f.hex")
	if err == nil || err.Error() != "f.hex:2: column 4: lone hex digit '1' (a byte needs two)" {
		t.Errorf("error %v", err)
	}
}

func TestReadHexFile_LongestFrame(t *testing.T) {
	// A maximal frame written with spaces is 3*3712 characters: more than
	// bufio.Scanner's default 64 KiB line limit would matter for, but make
	// sure long lines are read whole.
	line := strings.Repeat("ab ", 20000)
	frames, err := readHexFile(strings.NewReader(line+"\n"), "big.hex")
	if err != nil || len(frames) != 1 || len(frames[0].data) != 20000 {
		t.Fatalf("%d frames, err %v", len(frames), err)
	}
}

// writeCapture writes frames as a classic pcap with pcapgo, cutting each
// to snap bytes when snap > 0.
func writeCapture(t testing.TB, link layers.LinkType, frames [][]byte, snap int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		data := f
		if snap > 0 && len(data) > snap {
			data = data[:snap]
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(data), Length: len(f)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestReadPcap_PcapAndPcapng(t *testing.T) {
	var want [][]byte
	for _, f := range fixtureFrames(t) {
		want = append(want, f.data)
	}
	for _, ng := range []bool{false, true} {
		var capture []byte
		if ng {
			capture = ngCapture(t, layers.LinkTypeEthernet, want)
		} else {
			capture = writeCapture(t, layers.LinkTypeEthernet, want, 0)
		}
		frames, err := readPcap(bytes.NewReader(capture), "c")
		if err != nil {
			t.Fatalf("ng=%v: %v", ng, err)
		}
		if len(frames) != len(want) {
			t.Fatalf("ng=%v: %d frames, want %d", ng, len(frames), len(want))
		}
		for i, f := range frames {
			if !bytes.Equal(f.data, want[i]) {
				t.Errorf("ng=%v: frame %d = %x, want %x", ng, i, f.data, want[i])
			}
		}
		if frames[2].origin != "c #3" {
			t.Errorf("origin %q", frames[2].origin)
		}
	}
}

// ngCapture writes frames as pcapng with pcapgo.
func ngCapture(t testing.TB, link layers.LinkType, frames [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, link)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadPcap_SnaplenCutFramesSayHowMuchWasCaptured(t *testing.T) {
	f := fixtureFrames(t)[0].data
	frames, err := readPcap(bytes.NewReader(writeCapture(t, layers.LinkTypeEthernet, [][]byte{f}, 40)), "cut.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if len(frames[0].data) != 40 || frames[0].origin != "cut.pcap #1, 40 of 60 bytes captured" {
		t.Errorf("frame %q of %d bytes", frames[0].origin, len(frames[0].data))
	}
}

func TestReadPcap_Errors(t *testing.T) {
	raw := writeCapture(t, layers.LinkTypeRaw, [][]byte{{0x45, 0, 0, 20}}, 0)
	good := writeCapture(t, layers.LinkTypeEthernet, [][]byte{fixtureFrames(t)[0].data}, 0)
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"raw ip":    {raw, "c #1: link type Raw: test-run needs Ethernet frames"},
		"ng raw ip": {ngCapture(t, layers.LinkTypeRaw, [][]byte{{0x45, 0, 0, 20}}), "c #1: link type Raw: test-run needs Ethernet frames"},
		"empty":     {nil, "c: not a pcap or pcapng file: unexpected EOF"},
		"text":      {[]byte("hello world, this is not a capture\n"), "c: not a pcap or pcapng file: Unknown magic 6c6c6568"},
		"truncated": {good[:len(good)-10], "c #1: unexpected EOF"},
	} {
		_, err := readPcap(bytes.NewReader(tc.in), "c")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

func TestCheckFrame_KernelLimits(t *testing.T) {
	eth := func(n int, et uint16) []byte {
		b := make([]byte, n)
		if n >= 14 {
			b[12], b[13] = byte(et>>8), byte(et)
		}
		return b
	}
	for _, tc := range []struct {
		n  int
		et uint16
		ok bool
	}{
		{13, 0x88b5, false}, {14, 0x88b5, true}, {3712, 0x88b5, true}, {3713, 0x88b5, false},
		{33, 0x0800, false}, {34, 0x0800, true}, {53, 0x86dd, false}, {54, 0x86dd, true},
		{14, 0x0806, true}, {14, 0x8100, true},
	} {
		err := checkFrame(frame{origin: "f", data: eth(tc.n, tc.et)})
		if (err == nil) != tc.ok {
			t.Errorf("%d bytes, ethertype %#04x: error %v, want ok=%v", tc.n, tc.et, err, tc.ok)
		}
	}
}

func TestLoadFrames_OrderAndEmptyInputs(t *testing.T) {
	dir := t.TempDir()
	pcap := filepath.Join(dir, "a.pcap")
	hexf := filepath.Join(dir, "b.hex")
	ff := fixtureFrames(t)
	if err := os.WriteFile(pcap, pcapBytes(t, ff[:2]), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hexf, hexFileBytes(ff[2:3]), 0o644); err != nil {
		t.Fatal(err)
	}
	frames, err := loadFrames(&testRunOptions{pcap: pcap, hexFile: hexf, hex: []string{"02000000000102000000000a88b5"}})
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, f := range frames {
		origins = append(origins, f.origin)
	}
	want := []string{pcap + " #1", pcap + " #2", hexf + ":3", "--hex #1"}
	if strings.Join(origins, "|") != strings.Join(want, "|") {
		t.Errorf("origins %q, want %q", origins, want)
	}

	empty := filepath.Join(dir, "empty.pcap")
	if err := os.WriteFile(empty, pcapBytes(t, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFrames(&testRunOptions{pcap: empty}); err == nil || !strings.Contains(err.Error(), "holds no packets") {
		t.Errorf("empty capture: %v", err)
	}
	comments := filepath.Join(dir, "c.hex")
	if err := os.WriteFile(comments, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFrames(&testRunOptions{hexFile: comments}); err == nil || !strings.Contains(err.Error(), "no hex frames") {
		t.Errorf("comment-only hex file: %v", err)
	}
	if _, err := loadFrames(&testRunOptions{pcap: filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestReadPcap_NeverPanics feeds every prefix and some corruptions of a
// valid capture to the reader: it must return frames or an error.
func TestReadPcap_NeverPanics(t *testing.T) {
	var frames [][]byte
	for _, f := range fixtureFrames(t) {
		frames = append(frames, f.data)
	}
	for _, capture := range [][]byte{writeCapture(t, layers.LinkTypeEthernet, frames, 0), ngCapture(t, layers.LinkTypeEthernet, frames)} {
		for n := range len(capture) {
			if _, err := readPcap(bytes.NewReader(capture[:n]), "c"); err == nil && n < 24 {
				t.Errorf("a %d-byte prefix read without error", n)
			}
			bad := bytes.Clone(capture)
			bad[n] ^= 0xff
			_, _ = readPcap(bytes.NewReader(bad), "c")
		}
	}
}
