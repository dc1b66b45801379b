package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/tcxgo/tcx/internal/testkit/pktgen"
)

// FuzzParseHex: any text either fails with a column or decodes to bytes
// that, written back as plain hex, decode to the same bytes.
func FuzzParseHex(f *testing.F) {
	for _, s := range []string{"", "00", "0x0a:0b", "a", "zz", "01 02-03\t04", "\xff\xfe", "é0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseHex(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "column ") {
				t.Fatalf("error without a column: %v", err)
			}
			return
		}
		again, err := parseHex(hex.EncodeToString(b))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip of %x: %x, %v", b, again, err)
		}
	})
}

// FuzzReadPcap: any bytes given as --pcap end in frames or an error.
func FuzzReadPcap(f *testing.F) {
	frames := fixtureFrames(f)
	f.Add(pcapBytes(f, frames))
	f.Add(pcapBytes(f, nil))
	var data [][]byte
	for _, fr := range frames {
		data = append(data, fr.data)
	}
	f.Add(ngCapture(f, layers.LinkTypeEthernet, data))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := readPcap(bytes.NewReader(b), "fuzz")
		if err == nil {
			for _, fr := range fs {
				_ = checkFrame(fr)
			}
		}
	})
}

// TestTestRun_Corpus_EveryProgram runs every program of the corpus on the
// fixtures and generated traffic, dumping its maps, in text and JSON: no
// run may fault (they all pass the kernel's verifier) and no part of the
// output path may fail.
func TestTestRun_Corpus_EveryProgram(t *testing.T) {
	objs, err := filepath.Glob(filepath.Join(progsDir, "*.o"))
	if err != nil || len(objs) == 0 {
		t.Fatalf("no corpus in %s: %v", progsDir, err)
	}
	frames := []frame{}
	for _, f := range fixtureFrames(t) {
		frames = append(frames, frame{origin: f.name, data: f.data})
	}
	gen := pktgen.New(42)
	for i := range 100 {
		if f := (frame{origin: fmt.Sprint("pktgen #", i), data: gen.Next()}); checkFrame(f) == nil {
			frames = append(frames, f)
		}
	}
	for _, obj := range objs {
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range sortedNames(spec.Programs) {
			opts := &testRunOptions{object: obj, repeat: 1, dumpMap: true, showData: true}
			rep, err := runPackets(t.Context(), spec, name, frames, opts)
			if err != nil {
				t.Errorf("%s %s: %v", obj, name, err)
				continue
			}
			if n := rep.faults(); n > 0 || len(rep.Packets) != len(frames) {
				t.Errorf("%s %s: %d faults, %d of %d packets", obj, name, n, len(rep.Packets), len(frames))
			}
			var text bytes.Buffer
			writeReport(&text, rep, opts)
			js, err := json.Marshal(rep)
			if err != nil || text.Len() == 0 {
				t.Errorf("%s %s: text %d bytes, json %v", obj, name, text.Len(), err)
			}
			var back testRunReport
			if err := json.Unmarshal(js, &back); err != nil || len(back.Packets) != len(frames) {
				t.Errorf("%s %s: json does not read back: %v", obj, name, err)
			}
		}
	}
}
