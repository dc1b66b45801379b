package port

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr (x/sys/unix has the syscall numbers, not the
// type).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// AFPacket is an AF_PACKET socket bound to one existing interface: frames
// the interface receives are read here, frames written here leave by it.
// Reads and writes are batched with recvmmsg and sendmmsg (one system call
// per batch); frames this socket sends are not read back
// (PACKET_IGNORE_OUTGOING).
//
// On a veth, frames sent by a local stack may carry a partial checksum
// (CHECKSUM_PARTIAL offload) or be GSO super-frames larger than the MTU
// (counted as receive errors by the datapath): a packet socket reads them
// as they are. Turn those offloads off on the peer (ethtool -K DEV tx off
// tso off gso off) or use a TAP port, which has none by default.
type AFPacket struct {
	name    string
	ifindex int
	f       *os.File
	rc      syscall.RawConn
	closed  atomic.Bool

	// read state, reused (one reader at a time)
	rb     *Batch
	rerr   error
	rmsgs  []mmsghdr
	riov   []unix.Iovec
	readFn func(fd uintptr) bool

	writers sync.Pool // of *afWriteState: sendmmsg arrays, one per concurrent writer
}

type afWriteState struct {
	msgs []mmsghdr
	iov  []unix.Iovec
	n    int
	err  error
	fn   func(fd uintptr) bool
}

const afBatch = 64

// OpenAFPacket opens a packet socket on the interface iface (looked up in
// opts.NetNS if given), in promiscuous mode if opts.Promisc.
func OpenAFPacket(iface string, opts Options) (Port, error) {
	op := "open afpacket:" + iface
	fd := -1
	var ifindex int
	err := inNetNS(opts.NetNS, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return fmt.Errorf("interface %s: %w", iface, syscall.ENODEV)
		}
		ifindex = ifi.Index
		// Protocol 0 first: nothing is queued before the bind below
		// restricts the socket to one interface.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", permError(err, errNeedNetRaw))
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
		}
		for _, opt := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF} {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 4<<20) // best effort
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if opts.Promisc {
			mreq := &unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
			if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, mreq); err != nil {
				return fmt.Errorf("promiscuous mode: %w", permError(err, errNeedNetAdmin))
			}
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p := &AFPacket{name: "afpacket:" + iface, ifindex: ifindex, f: os.NewFile(uintptr(fd), "afpacket:"+iface)}
	if p.rc, err = p.f.SyscallConn(); err != nil {
		p.f.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p.readFn = p.readReady
	p.writers.New = func() any {
		w := &afWriteState{msgs: make([]mmsghdr, afBatch), iov: make([]unix.Iovec, afBatch)}
		w.fn = w.send
		return w
	}
	return p, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (p *AFPacket) Name() string { return p.name }

// Read waits for frames and takes all that are queued, up to the batch, in
// one recvmmsg. Len is the frame's full length (MSG_TRUNC) when the buffer
// was too small. One goroutine reads a port at a time.
func (p *AFPacket) Read(b *Batch) error {
	b.N = 0
	if p.closed.Load() {
		return ErrClosed
	}
	if len(p.rmsgs) < len(b.Frames) {
		p.rmsgs = make([]mmsghdr, len(b.Frames))
		p.riov = make([]unix.Iovec, len(b.Frames))
	}
	for i := range b.Frames {
		buf := b.bufs[i]
		p.riov[i].Base = &buf[0]
		p.riov[i].SetLen(len(buf))
		p.rmsgs[i] = mmsghdr{}
		p.rmsgs[i].hdr.Iov = &p.riov[i]
		p.rmsgs[i].hdr.SetIovlen(1)
	}
	p.rb, p.rerr = b, nil
	if err := p.rc.Read(p.readFn); err != nil {
		if p.closed.Load() {
			return ErrClosed
		}
		return closedErr(err)
	}
	return p.rerr
}

func (p *AFPacket) readReady(fd uintptr) bool {
	b := p.rb
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&p.rmsgs[0])), uintptr(len(b.Frames)), unix.MSG_TRUNC, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		default:
			p.rerr = fmt.Errorf("recvmmsg %s: %w", p.name, errno)
			return true
		}
		for i := range int(n) {
			l := int(p.rmsgs[i].len)
			buf := b.bufs[i]
			b.Frames[i] = Frame{Data: buf[:min(l, len(buf))], Len: l}
		}
		b.N = int(n)
		return true
	}
}

// Write sends the frames with sendmmsg, 64 per call. Safe for concurrent
// use; a frame the kernel refuses is reported (the first error) and the
// rest still go.
func (p *AFPacket) Write(fs []Frame) error {
	if len(fs) == 0 {
		return nil
	}
	w := p.writers.Get().(*afWriteState)
	defer p.writers.Put(w)
	var first error
	for len(fs) > 0 {
		n := min(len(fs), afBatch)
		for i := range n {
			d := fs[i].Data
			if len(d) == 0 {
				d = []byte{0} // the kernel refuses it below, as the wire would
			}
			w.iov[i].Base = &d[0]
			w.iov[i].SetLen(len(fs[i].Data))
			w.msgs[i] = mmsghdr{}
			w.msgs[i].hdr.Iov = &w.iov[i]
			w.msgs[i].hdr.SetIovlen(1)
		}
		w.n, w.err = n, nil
		if err := p.rc.Write(w.fn); err != nil {
			if p.closed.Load() {
				return ErrClosed
			}
			return closedErr(err)
		}
		if w.err != nil && first == nil {
			first = fmt.Errorf("sendmmsg %s: %w", p.name, w.err)
		}
		fs = fs[n:]
	}
	return first
}

// send is sendmmsg until every message went or one failed (which is then
// skipped).
func (w *afWriteState) send(fd uintptr) bool {
	off := 0
	for off < w.n {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.msgs[off])), uintptr(w.n-off), 0, 0, 0)
		switch errno {
		case 0:
			off += int(n)
		case unix.EAGAIN, unix.ENOBUFS:
			if errno == unix.ENOBUFS {
				continue
			}
			copy(w.msgs, w.msgs[off:w.n])
			w.n -= off
			return false
		case unix.EINTR:
		default:
			if w.err == nil {
				w.err = errno
			}
			off++ // the failing message is skipped
		}
	}
	return true
}

func (p *AFPacket) Close() error {
	if p.closed.Swap(true) {
		return fmt.Errorf("close %s: %w", p.name, syscall.EBADF)
	}
	return p.f.Close()
}
