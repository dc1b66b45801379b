package port_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcxgo/tcx/port"
)

var frames = [][]byte{
	bytes.Repeat([]byte{0xaa}, 60),
	bytes.Repeat([]byte{0xbb}, 1514),
	bytes.Repeat([]byte{0xcc}, 14),
}

// Frames written by a PcapWriter read back the same, with their times.
func TestPcap_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcap")
	w, err := port.CreatePcap(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 123000)
	for i, f := range frames {
		if err := w.WriteFrame(f, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Count() != 3 {
		t.Errorf("count %d", w.Count())
	}
	if err := w.Close(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("second close: %v", err)
	}
	got, err := port.ReadPcapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		if !bytes.Equal(got[i].Data, frames[i]) || !got[i].Time.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Errorf("frame %d differs", i)
		}
	}
}

// pcapng input works, and a batch smaller than the file reads in parts.
func TestPcap_PcapngBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	f.Close()
	p, err := port.OpenPcap(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b := port.NewBatch(2, 100) // the second frame does not fit: cut, Len says so
	if err := p.Read(b); err != nil || b.N != 2 {
		t.Fatalf("first read: %d frames, %v", b.N, err)
	}
	if len(b.Frames[1].Data) != 100 || b.Frames[1].Len != 1514 {
		t.Errorf("cut frame: %d bytes, Len %d", len(b.Frames[1].Data), b.Frames[1].Len)
	}
	if err := p.Read(b); err != nil || b.N != 1 {
		t.Fatalf("second read: %d frames, %v", b.N, err)
	}
	if err := p.Read(b); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}
	if err := p.Write(nil); !errors.Is(err, syscall.EBADF) {
		t.Errorf("write to an input pcap: %v", err)
	}
}

// Paced replay waits for capture time; Close ends the wait.
func TestPcap_PacedClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slow.pcap")
	w, _ := port.CreatePcap(path)
	w.WriteFrame(frames[0], time.Unix(0, 0))
	w.WriteFrame(frames[0], time.Unix(3600, 0)) // an hour later
	w.Close()
	p, err := port.OpenPcap(path, true)
	if err != nil {
		t.Fatal(err)
	}
	b := port.NewBatch(4, 2048)
	if err := p.Read(b); err != nil || b.N != 1 {
		t.Fatalf("first frame: %d, %v", b.N, err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.Close()
	}()
	if err := p.Read(b); !errors.Is(err, port.ErrClosed) {
		t.Errorf("read during the wait, after Close: %v, want ErrClosed", err)
	}
}

func TestOpen_Specs(t *testing.T) {
	for _, spec := range []string{"", "pcap:", "tap", "bogus:x", "discard:x"} {
		if _, err := port.Open(spec, port.Options{}); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Open(%q): %v, want EINVAL", spec, err)
		}
	}
	if _, err := port.Open("pcap:/nonexistent.pcap", port.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing pcap: %v", err)
	}
	d, err := port.Open("discard", port.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- d.Read(port.NewBatch(1, 64)) }()
	d.Close()
	if err := <-done; !errors.Is(err, port.ErrClosed) {
		t.Errorf("discard read after close: %v", err)
	}
}
