package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcxgo/tcx/skb"
)

// frame is one packet to run, with where it came from so that errors and
// output can point back at the input.
type frame struct {
	origin string // "--hex #2", "frames.hex:3", "capture.pcap #5"
	data   []byte
}

// parseHex decodes one frame written as hex digits. Whitespace, ':' and '-'
// may separate bytes (so tcpdump -xx, Wireshark's "copy as hex" and MAC-style
// colons paste as they are) and a leading 0x is ignored, but a byte's two
// digits must stay together. Errors give the 1-based column of the culprit.
func parseHex(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)/2)
	start := 0
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		start = 2
	}
	high := -1 // value of a pending first digit, or -1
	highCol := 0
	for i := start; i < len(s); i++ {
		c := s[i]
		if isHexSeparator(c) {
			if high >= 0 {
				return nil, fmt.Errorf("column %d: lone hex digit %q (a byte needs two)", highCol, s[highCol-1])
			}
			continue
		}
		v, ok := hexValue(c)
		if !ok {
			return nil, fmt.Errorf("column %d: invalid hex digit %s", i+1, quoteChar(s[i:]))
		}
		if high < 0 {
			high, highCol = int(v), i+1
			continue
		}
		out = append(out, byte(high<<4)|v)
		high = -1
	}
	if high >= 0 {
		return nil, fmt.Errorf("column %d: lone hex digit %q (a byte needs two)", highCol, s[highCol-1])
	}
	return out, nil
}

func isHexSeparator(c byte) bool {
	return c == ' ' || c == '\t' || c == ':' || c == '-' || c == '\r'
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// quoteChar quotes the character s starts with, or names the byte when s
// does not start with valid UTF-8 (a binary file given as --hex-file).
func quoteChar(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("(byte 0x%02x)", s[0])
	}
	return fmt.Sprintf("%q", r)
}

// hexFrames turns the --hex arguments into frames.
func hexFrames(args []string) ([]frame, error) {
	frames := make([]frame, 0, len(args))
	for i, a := range args {
		origin := fmt.Sprintf("--hex #%d", i+1)
		data, err := parseHex(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", origin, err)
		}
		frames = append(frames, frame{origin: origin, data: data})
	}
	return frames, nil
}

// readHexFile reads one hex frame per line; blank lines and lines starting
// with '#' are skipped. name is how errors and origins call the file.
func readHexFile(r io.Reader, name string) ([]frame, error) {
	var frames []frame
	sc := bufio.NewScanner(r)
	// A 3712-byte frame with separators is ~11 KiB of text; leave room for
	// generous formatting.
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		data, err := parseHex(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		frames = append(frames, frame{origin: fmt.Sprintf("%s:%d", name, line), data: data})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return frames, nil
}

// pcapngMagic is the block type of a pcapng Section Header Block; classic
// pcap files start with one of the four pcap magics instead.
const pcapngMagic = 0x0a0d0d0a

// readPcap reads every packet of a pcap or pcapng capture with pcapgo. Only
// Ethernet captures can be test-run: a tc program sees frames from the MAC
// header on.
func readPcap(r io.Reader, name string) ([]frame, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%s: not a pcap or pcapng file: %w", name, shortRead(err))
	}
	var next func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
	if binary.LittleEndian.Uint32(magic) == pcapngMagic {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("%s: pcapng: %w", name, err)
		}
		next = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := ng.ReadPacketData()
			if err != nil {
				return nil, ci, 0, err
			}
			iface, err := ng.Interface(ci.InterfaceIndex)
			if err != nil {
				return nil, ci, 0, err
			}
			return data, ci, iface.LinkType, nil
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: not a pcap or pcapng file: %w", name, err)
		}
		next = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := pr.ReadPacketData()
			return data, ci, pr.LinkType(), err
		}
	}
	var frames []frame
	for i := 1; ; i++ {
		data, ci, link, err := next()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		origin := fmt.Sprintf("%s #%d", name, i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", origin, shortRead(err))
		}
		if link != layers.LinkTypeEthernet {
			return nil, fmt.Errorf("%s: link type %v: test-run needs Ethernet frames", origin, link)
		}
		if ci.Length > len(data) {
			// A snaplen-cut capture: the program sees only what was captured.
			origin += fmt.Sprintf(", %d of %d bytes captured", len(data), ci.Length)
		}
		frames = append(frames, frame{origin: origin, data: bytes.Clone(data)})
	}
}

func shortRead(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkFrame applies BPF_PROG_TEST_RUN's limits on data_in for a tc program
// before anything runs, so a bad frame is reported as input, not as an EINVAL
// from the middle of a run.
func checkFrame(f frame) error {
	n := len(f.data)
	if n < skb.EthHLen {
		return fmt.Errorf("%s: frame of %d bytes is shorter than the %d-byte Ethernet header BPF_PROG_TEST_RUN requires", f.origin, n, skb.EthHLen)
	}
	if n > skb.TestRunMaxData {
		return fmt.Errorf("%s: frame of %d bytes is longer than the %d bytes BPF_PROG_TEST_RUN accepts for tc programs", f.origin, n, skb.TestRunMaxData)
	}
	switch binary.BigEndian.Uint16(f.data[12:]) {
	case skb.EthPIP:
		if n < skb.TestRunMinIPv4 {
			return fmt.Errorf("%s: IPv4 frame of %d bytes: BPF_PROG_TEST_RUN needs at least %d (Ethernet + IPv4 header)", f.origin, n, skb.TestRunMinIPv4)
		}
	case skb.EthPIPv6:
		if n < skb.TestRunMinIPv6 {
			return fmt.Errorf("%s: IPv6 frame of %d bytes: BPF_PROG_TEST_RUN needs at least %d (Ethernet + IPv6 header)", f.origin, n, skb.TestRunMinIPv6)
		}
	}
	return nil
}

// loadFrames gathers the frames of all inputs, in the order --pcap,
// --hex-file, --hex, and checks each against the kernel's limits.
func loadFrames(opts *testRunOptions) ([]frame, error) {
	var frames []frame
	for _, in := range []struct {
		path, empty string
		read        func(io.Reader, string) ([]frame, error)
	}{
		{opts.pcap, "the capture holds no packets", readPcap},
		{opts.hexFile, "no hex frames in the file", readHexFile},
	} {
		if in.path == "" {
			continue
		}
		fs, err := readFileWith(in.path, in.read)
		if err != nil {
			return nil, err
		}
		if len(fs) == 0 {
			return nil, fmt.Errorf("%s: %s", in.path, in.empty)
		}
		frames = append(frames, fs...)
	}
	fs, err := hexFrames(opts.hex)
	if err != nil {
		return nil, err
	}
	frames = append(frames, fs...)
	if len(frames) == 0 {
		return nil, errors.New("no packets: give --pcap FILE, --hex-file FILE or --hex HEX (see --help)")
	}
	for _, f := range frames {
		if err := checkFrame(f); err != nil {
			return nil, err
		}
	}
	return frames, nil
}

func readFileWith(path string, read func(io.Reader, string) ([]frame, error)) ([]frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return read(f, path)
}
