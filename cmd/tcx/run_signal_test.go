//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcxgo/tcx/port"
)

// signalInput writes n IPv4 TCP frames 10 ms apart, every other one to
// port 80 (which dp_acl drops with blocked_port=80): a paced replay lasts
// n/100 seconds, much longer than the test waits before its signal.
func signalInput(t *testing.T, path string, n int) {
	t.Helper()
	w, err := port.CreatePcap(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(40000 + i), DstPort: 443, SYN: true, Window: 1024}
		if i%2 == 1 {
			tcp.DstPort = 80
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(buf.Bytes(), start.Add(time.Duration(i)*10*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// buildTool builds cmd/tcx into dir.
func buildTool(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tcx")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command to build tcx with: %v", err)
		}
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// pcapgoCount reads a whole pcap with pcapgo (not our reader): a file cut
// short fails here.
func pcapgoCount(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var n uint64
	for {
		_, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, n, err)
		}
		if ci.CaptureLength == 0 {
			t.Fatalf("%s: frame %d is empty", path, n)
		}
		n++
	}
}

var progressIn = regexp.MustCompile(`\bin (\d+) `)

// TestRun_Signals runs the built tcx on a paced pcap recording delivered
// and dropped frames, interrupts it with a real SIGINT or SIGTERM once
// frames flow, and checks that it exits 0 with its summary and that every
// recording is a complete pcap holding the frames the summary states.
func TestRun_Signals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tcx binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildTool(t, dir)
	in := filepath.Join(dir, "in.pcap")
	const frames = 3000 // 30 s paced
	signalInput(t, in, frames)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			delivered, dropped := filepath.Join(dir, sig.String()+"-delivered.pcap"), filepath.Join(dir, sig.String()+"-dropped.pcap")
			cmd := exec.Command(bin, "run", "--object", "../../testdata/progs/dp_acl.o", "--wire", "pcap:"+in, "--paced",
				"--set", "blocked_port=80", "--record-delivered", delivered, "--record-dropped", dropped,
				"--printk", filepath.Join(dir, "printk"), "--json", "--progress", "always", "--no-timings")
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for the progress line to show frames flowing.
			var errText bytes.Buffer
			sc := bufio.NewScanner(stderr)
			sc.Split(scanCR)
			seen := 0
			for seen < 20 && sc.Scan() {
				errText.Write(sc.Bytes())
				if m := progressIn.FindSubmatch(sc.Bytes()); m != nil {
					seen, _ = strconv.Atoi(string(m[1]))
				}
			}
			if seen < 20 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no progress before stderr ended:\n%s", errText.String())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go io.Copy(&errText, stderr) //nolint:errcheck // drains the pipe until exit
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second): // a hang guard, not a speed check
				cmd.Process.Kill()
				<-done
				t.Fatalf("tcx run did not exit within 60 s of %v", sig)
			}
			if err != nil {
				t.Fatalf("exit after %v: %v\n%s", sig, err, errText.String())
			}
			var sum struct {
				Summary struct {
					Devices []struct {
						Rx        uint64 `json:"rx_frames"`
						Delivered uint64 `json:"delivered"`
						Dropped   uint64 `json:"dropped"`
					} `json:"devices"`
					Recordings []recording `json:"recordings"`
				} `json:"summary"`
			}
			if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &sum); err != nil {
				t.Fatalf("summary: %v\n%s", err, stdout.String())
			}
			if len(sum.Summary.Devices) != 1 || len(sum.Summary.Recordings) != 2 {
				t.Fatalf("summary: %s", stdout.String())
			}
			d := sum.Summary.Devices[0]
			if d.Rx < 20 || d.Rx >= frames || d.Delivered+d.Dropped != d.Rx || d.Dropped == 0 {
				t.Errorf("device after %v: rx %d, delivered %d, dropped %d; want 20 <= rx < %d, all delivered or dropped", sig, d.Rx, d.Delivered, d.Dropped, frames)
			}
			want := map[string]uint64{"delivered": d.Delivered, "dropped": d.Dropped}
			for _, r := range sum.Summary.Recordings {
				n := pcapgoCount(t, r.Path)
				if n != r.Frames || n != want[r.Fate] {
					t.Errorf("%s: pcapgo reads %d frames; the summary states %d recorded, %d %s", r.Path, n, r.Frames, want[r.Fate], r.Fate)
				}
			}
			t.Logf("tcx run %v: exit 0, rx %d, delivered %d, dropped %d; recordings read back by pcapgo: %d and %d frames",
				sig, d.Rx, d.Delivered, d.Dropped, pcapgoCount(t, delivered), pcapgoCount(t, dropped))
		})
	}
}

// scanCR splits the progress output, whose lines end in \r, and ordinary
// lines.
func scanCR(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
