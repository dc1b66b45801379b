package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tcAction names a tc program's return value (include/uapi/linux/pkt_cls.h)
// and says what tcx makes of it: tcx_action_code keeps TCX_PASS, TCX_DROP
// and TCX_REDIRECT and turns every other value into TCX_NEXT.
func tcAction(retval int32) (name, tcx string) {
	tcx = "next"
	switch retval {
	case -1:
		name = "TC_ACT_UNSPEC"
	case 0:
		name, tcx = "TC_ACT_OK", "pass"
	case 1:
		name = "TC_ACT_RECLASSIFY"
	case 2:
		name, tcx = "TC_ACT_SHOT", "drop"
	case 3:
		name = "TC_ACT_PIPE"
	case 4:
		name = "TC_ACT_STOLEN"
	case 5:
		name = "TC_ACT_QUEUED"
	case 6:
		name = "TC_ACT_REPEAT"
	case 7:
		name, tcx = "TC_ACT_REDIRECT", "redirect"
	case 8:
		name = "TC_ACT_TRAP"
	default:
		name = "unknown"
	}
	return name, tcx
}

// byteRun is a stretch of consecutive bytes a program rewrote in a frame
// whose length it kept.
type byteRun struct {
	Offset int      `json:"offset"`
	Header string   `json:"header,omitempty"` // "IPv4+10": header and offset in it
	Old    hexBytes `json:"old"`
	New    hexBytes `json:"new"`
}

// hexBytes is bytes that JSON shows as a hex string.
type hexBytes []byte

func (b hexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(b)), nil
}

func (b *hexBytes) UnmarshalText(text []byte) error {
	d, err := hex.DecodeString(string(text))
	*b = d
	return err
}

// runGap is the longest stretch of unchanged bytes a run swallows, so that
// a rewritten field (10.0.0.1 -> 192.0.2.1 keeps its zero bytes) shows
// as one run.
const runGap = 3

// diffRuns compares two frames of equal length and returns the runs of
// changed bytes, each named after the header of old it starts in.
func diffRuns(old, new []byte) []byteRun {
	var runs []byteRun
	var headers []headerSpan
	for i := 0; i < len(old); {
		if old[i] == new[i] {
			i++
			continue
		}
		end := i + 1 // one past the last changed byte of the run
		for j := end; j < len(old) && j <= end+runGap; j++ {
			if old[j] != new[j] {
				end = j + 1
			}
		}
		if headers == nil {
			headers = headerSpans(old)
		}
		runs = append(runs, byteRun{Offset: i, Header: headerAt(headers, i), Old: old[i:end], New: new[i:end]})
		i = end
	}
	return runs
}

// changedBytes counts the bytes that differ inside runs.
func changedBytes(runs []byteRun) int {
	n := 0
	for _, r := range runs {
		for i := range r.Old {
			if r.Old[i] != r.New[i] {
				n++
			}
		}
	}
	return n
}

// headerSpan is where one protocol header of a frame lies.
type headerSpan struct {
	name       string
	start, end int
}

// headerSpans decodes frame with gopacket and returns where each layer's
// header starts and ends; whatever gopacket cannot decode is "payload".
func headerSpans(frame []byte) []headerSpan {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true, Lazy: false})
	spans := []headerSpan{}
	off := 0
	for _, l := range pkt.Layers() {
		n := len(l.LayerContents())
		name := l.LayerType().String()
		if l.LayerType() == gopacket.LayerTypePayload || l.LayerType() == gopacket.LayerTypeDecodeFailure {
			name = "payload"
			n = len(frame) - off
		}
		if n == 0 {
			continue
		}
		spans = append(spans, headerSpan{name: name, start: off, end: off + n})
		off += n
	}
	if off < len(frame) {
		spans = append(spans, headerSpan{name: "payload", start: off, end: len(frame)})
	}
	return spans
}

func headerAt(spans []headerSpan, off int) string {
	for _, s := range spans {
		if off >= s.start && off < s.end {
			return fmt.Sprintf("%s+%d", s.name, off-s.start)
		}
	}
	return ""
}

// runChunk is how many bytes of a run one diff line shows.
const runChunk = 8

// writeRuns prints each run as "@offset header  old -> new", splitting long
// runs into lines of runChunk bytes.
func writeRuns(w io.Writer, indent string, runs []byteRun) {
	for _, r := range runs {
		for c := 0; c < len(r.Old); c += runChunk {
			end := min(c+runChunk, len(r.Old))
			where := fmt.Sprintf("@%d", r.Offset+c)
			header := r.Header
			if c > 0 {
				header = ""
			}
			fmt.Fprintf(w, "%s%-6s %-13s %s -> %s\n", indent, where, header,
				spaced(r.Old[c:end]), spaced(r.New[c:end]))
		}
	}
}

// spaced is b as hex bytes separated by spaces.
func spaced(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

// hexdump prints b like hexdump -C: offset, 16 bytes in two groups of 8,
// then the printable ASCII.
func hexdump(w io.Writer, indent string, b []byte) {
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		var hex, ascii strings.Builder
		for i := range 16 {
			if i == 8 {
				hex.WriteByte(' ')
			}
			if i < len(line) {
				fmt.Fprintf(&hex, "%02x ", line[i])
				if c := line[i]; c >= 0x20 && c < 0x7f {
					ascii.WriteByte(c)
				} else {
					ascii.WriteByte('.')
				}
			} else {
				hex.WriteString("   ")
			}
		}
		fmt.Fprintf(w, "%s%04x  %s |%s|\n", indent, off, hex.String(), ascii.String())
	}
}
