package port

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Frame is one frame of a batch.
type Frame struct {
	// Data is the frame from the Ethernet header on. A read sets it to
	// the bytes received (at most the buffer's size); its capacity runs to
	// the end of the buffer, so a program can grow it in place.
	Data []byte
	// Len is the frame's length on the wire: larger than len(Data) when
	// the buffer was too small (the frame was cut).
	Len int
	// Time is the capture time of a pcap frame, zero for live ports.
	Time time.Time
}

// Batch is a set of caller-owned buffers a Reader fills.
type Batch struct {
	// Frames[:N] are the frames of the last read.
	Frames []Frame
	N      int
	bufs   [][]byte
}

// NewBatch returns a batch of n buffers of size bytes each.
func NewBatch(n, size int) *Batch {
	b := &Batch{Frames: make([]Frame, n), bufs: make([][]byte, n)}
	mem := make([]byte, n*size)
	for i := range b.bufs {
		b.bufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
	}
	return b
}

// Buf is buffer i at its full size.
func (b *Batch) Buf(i int) []byte { return b.bufs[i] }

// Reader delivers frames.
type Reader interface {
	// Read fills b with at least one frame, blocking until one comes. It
	// returns io.EOF when the source has ended and ErrClosed once the port
	// is closed.
	Read(b *Batch) error
}

// Writer sends frames.
type Writer interface {
	// Write sends every frame of fs, in order. A frame the device refuses
	// (too large, link down) is counted by the caller from the error; the
	// rest are still sent.
	Write(fs []Frame) error
}

// Port is a device endpoint a datapath reads from and writes to.
type Port interface {
	Reader
	Writer
	// Name is the port's spec as given to Open ("tap:tap0").
	Name() string
	// Close stops the port; a blocked Read returns ErrClosed. Output is
	// flushed.
	Close() error
}

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("port closed")

// Options configure Open.
type Options struct {
	// NetNS is the path of a network namespace (/run/netns/NAME) the TAP
	// device is created in, or the AF_PACKET interface is looked up in.
	// Empty means the caller's.
	NetNS string
	// Promisc puts an AF_PACKET interface into promiscuous mode while the
	// port is open.
	Promisc bool
	// Paced replays a pcap at its capture timing instead of as fast as
	// possible.
	Paced bool
	// MTU is the largest frame payload a live port expects (frames are
	// MTU+18 bytes at most: Ethernet header and one VLAN tag); 0 means
	// 1500.
	MTU int
}

// Open opens a port from its spec: "pcap:FILE" (read only: pcap or
// pcapng), "tap:NAME" (a TAP device, created if missing) or
// "afpacket:IFACE" (an existing interface). "discard" is a port that
// reads nothing and drops what it is given.
func Open(spec string, opts Options) (Port, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	if arg == "" && kind != "discard" {
		return nil, fmt.Errorf("open port %q: want pcap:FILE, tap:NAME, afpacket:IFACE or discard: %w", spec, syscall.EINVAL)
	}
	switch kind {
	case "pcap":
		return OpenPcap(arg, opts.Paced)
	case "tap":
		return OpenTAP(arg, opts)
	case "afpacket":
		return OpenAFPacket(arg, opts)
	case "discard":
		if arg != "" {
			break
		}
		return Discard(), nil
	}
	return nil, fmt.Errorf("open port %q: unknown kind %q (want pcap, tap, afpacket or discard): %w", spec, kind, syscall.EINVAL)
}

// Explain turns an error of opening a live port into words: which
// capability or kernel feature is missing.
func Explain(err error) string {
	switch {
	case errors.Is(err, errNeedNetRaw):
		return "packet sockets need CAP_NET_RAW (run as root or grant the capability)"
	case errors.Is(err, errNeedNetAdmin):
		return "creating a TAP device or promiscuous mode needs CAP_NET_ADMIN"
	case errors.Is(err, errNeedSysAdmin):
		return "entering another network namespace needs CAP_SYS_ADMIN"
	case errors.Is(err, errNoTun):
		return "/dev/net/tun is missing (load the tun module)"
	case errors.Is(err, syscall.ENODEV):
		return "no such network interface"
	case errors.Is(err, syscall.ENOTSUP):
		return "this port kind needs Linux"
	}
	return ""
}

// capability errors: the errno wrapped with the capability it implies.
type capError struct {
	cap string
}

func (e *capError) Error() string { return "missing " + e.cap }

var (
	errNeedNetRaw   = &capError{"CAP_NET_RAW"}
	errNeedNetAdmin = &capError{"CAP_NET_ADMIN"}
	errNeedSysAdmin = &capError{"CAP_SYS_ADMIN"}
	errNoTun        = errors.New("no /dev/net/tun")
)

// permError wraps a permission errno with the capability it needs.
func permError(err error, need error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w (%w)", err, need)
	}
	return err
}

// discard is a port that never delivers a frame and drops what it gets.
type discard struct {
	done chan struct{}
}

// Discard returns a port whose Read blocks until Close and whose Write
// drops everything: the count-and-discard host side.
func Discard() Port { return &discard{done: make(chan struct{})} }

func (d *discard) Name() string { return "discard" }
func (d *discard) Read(*Batch) error {
	<-d.done
	return ErrClosed
}
func (d *discard) Write([]Frame) error { return nil }
func (d *discard) Close() error {
	select {
	case <-d.done:
		return fmt.Errorf("close discard: %w", syscall.EBADF)
	default:
		close(d.done)
	}
	return nil
}

// maxFrame is the largest frame a live port reads for mtu.
func maxFrame(mtu int) int {
	if mtu <= 0 {
		mtu = 1500
	}
	return mtu + 18
}
