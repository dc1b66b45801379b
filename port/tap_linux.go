package port

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// errFileClosing is what a RawConn returns once its file is closed.
var errFileClosing = os.ErrClosed

// TAP is a kernel TAP device: what the kernel's stack transmits on it is
// read here, what is written here the stack receives. One read or write
// system call per frame (the kernel has no batched TAP I/O without vhost);
// reads drain everything queued before waiting in Go's poller.
type TAP struct {
	name   string
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// state of the read and write callbacks, created once so the packet
	// path does not allocate a closure per call.
	rb     *Batch
	rerr   error
	readFn func(fd uintptr) bool
}

// OpenTAP creates (or attaches to) the TAP device name, in opts.NetNS if
// given, and sets it up. The device disappears when the port is closed,
// unless it was persistent before.
func OpenTAP(name string, opts Options) (Port, error) {
	op := "open tap:" + name
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("%s: name must have 1..15 bytes: %w", op, syscall.EINVAL)
	}
	fd := -1
	err := inNetNS(opts.NetNS, func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("open /dev/net/tun: %w (%w)", err, errNoTun)
			}
			return fmt.Errorf("open /dev/net/tun: %w", permError(err, errNeedNetAdmin))
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			return fmt.Errorf("TUNSETIFF: %w", permError(err, errNeedNetAdmin))
		}
		if err := setUp(name); err != nil {
			return fmt.Errorf("set up: %w", err)
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	t := &TAP{name: "tap:" + name, f: os.NewFile(uintptr(fd), "tap:"+name)}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	t.readFn = t.readReady
	return t, nil
}

func (t *TAP) Name() string { return t.name }

// Read waits for frames and reads all that are queued, up to the batch.
// One goroutine reads a port at a time.
func (t *TAP) Read(b *Batch) error {
	b.N = 0
	if t.closed.Load() {
		return ErrClosed
	}
	t.rb, t.rerr = b, nil
	if err := t.rc.Read(t.readFn); err != nil {
		if t.closed.Load() {
			return ErrClosed
		}
		return closedErr(err)
	}
	if t.rerr != nil && t.closed.Load() {
		return ErrClosed
	}
	return t.rerr
}

func (t *TAP) readReady(fd uintptr) bool {
	b := t.rb
	for b.N < len(b.Frames) {
		buf := b.bufs[b.N]
		n, err := unix.Read(int(fd), buf)
		switch {
		case err == unix.EAGAIN:
			return b.N > 0
		case err == unix.EINTR:
			continue
		case err != nil:
			t.rerr = fmt.Errorf("read %s: %w", t.name, err)
			return true
		}
		b.Frames[b.N] = Frame{Data: buf[:min(n, len(buf))], Len: n}
		b.N++
	}
	return true
}

// Write hands each frame to the kernel's stack, one write(2) each through
// Go's poller (safe for concurrent use). A frame the device refuses is
// reported (the first error) and the others are still written.
func (t *TAP) Write(fs []Frame) error {
	var first error
	for i := range fs {
		if _, err := t.f.Write(fs[i].Data); err != nil && first == nil {
			if t.closed.Load() {
				return ErrClosed
			}
			first = fmt.Errorf("write %s: %w", t.name, err)
		}
	}
	return first
}

func (t *TAP) Close() error {
	if t.closed.Swap(true) {
		return fmt.Errorf("close %s: %w", t.name, syscall.EBADF)
	}
	return t.f.Close()
}
