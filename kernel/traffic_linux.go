package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Ping sends one UDP datagram from 127.0.0.1 to a socket bound on 127.0.0.1
// inside the namespace, so it crosses lo's egress hook and then its ingress
// hook, and waits up to timeout until it is delivered. When Ping returns nil,
// every program on both hooks has finished with the packet.
//
// A drop on egress fails at once with ENOBUFS (the sender asks for
// IP_RECVERR, so the stack reports it); a packet that does not arrive in time
// (dropped on ingress, or redirected) fails with ETIMEDOUT.
func (ns *NetNS) Ping(timeout time.Duration) error {
	var rx, tx int = -1, -1
	defer func() {
		for _, fd := range []int{rx, tx} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	var dst unix.Sockaddr
	err := ns.Do(func() error {
		var err error
		if rx, err = udpSocket(); err != nil {
			return err
		}
		if err := unix.Bind(rx, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		if dst, err = unix.Getsockname(rx); err != nil {
			return err
		}
		if tx, err = udpSocket(); err != nil {
			return err
		}
		return unix.SetsockoptInt(tx, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	})
	if err != nil {
		return fmt.Errorf("ping 127.0.0.1: %w", err)
	}
	payload := []byte("tcx-go ping")
	if err := unix.Sendto(tx, payload, 0, dst); err != nil {
		return fmt.Errorf("ping 127.0.0.1: send: %w", err)
	}
	got, err := recvTimeout(rx, timeout, nil)
	if err != nil {
		return fmt.Errorf("ping 127.0.0.1: %w", err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("ping 127.0.0.1: %w (received %q)", unix.EPROTO, got)
	}
	return nil
}

func udpSocket() (int, error) {
	return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
}

// recvTimeout waits up to timeout for a datagram on the non-blocking socket
// fd that keep accepts (nil: any) and returns it; ETIMEDOUT if none came.
func recvTimeout(fd int, timeout time.Duration, keep func(from unix.Sockaddr) bool) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err == nil {
			if keep == nil || keep(from) {
				return buf[:n], nil
			}
			continue
		}
		if !errors.Is(err, unix.EAGAIN) {
			return nil, fmt.Errorf("receive: %w", err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("%w (nothing received within %v)", unix.ETIMEDOUT, timeout)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("poll: %w", err)
		}
	}
}

// htons converts a 16-bit value to network byte order.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// PacketSocket is an AF_PACKET socket bound to one device of the namespace.
//
// Which frames it receives depends on its ethertype, as in the kernel:
// with ETH_P_ALL it is a tap that sees every frame before the ingress hook
// runs (also ones tcx then drops); with a specific ethertype it is a
// protocol handler that sees only frames the ingress hook let through, after
// all ingress programs finished with them.
type PacketSocket struct {
	fd      fdHandle
	ifindex int
	proto   uint16 // network byte order
}

// OpenPacketSocket opens a raw packet socket on the device for ethertype
// (host byte order, e.g. unix.ETH_P_ALL or 0x88b5).
func (ns *NetNS) OpenPacketSocket(ifindex int, ethertype uint16) (*PacketSocket, error) {
	s := &PacketSocket{ifindex: ifindex, proto: htons(ethertype)}
	s.fd.raw.Store(-1)
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(s.proto))
		if err != nil {
			return err
		}
		s.fd.raw.Store(int64(fd))
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: s.proto, Ifindex: ifindex})
	})
	if err != nil {
		s.fd.close()
		return nil, fmt.Errorf("open packet socket on device %d: %w", ifindex, err)
	}
	return s, nil
}

// Send transmits frame (starting with its Ethernet header) out of the
// device. The egress hook runs before Send returns; a drop there fails with
// ENOBUFS.
func (s *PacketSocket) Send(frame []byte) error {
	if _, err := unix.Write(s.fd.load(), frame); err != nil {
		return fmt.Errorf("send frame on device %d: %w", s.ifindex, err)
	}
	return nil
}

// Recv returns the next frame received on the device, skipping the
// device's own outgoing frames, or fails with ETIMEDOUT after timeout.
func (s *PacketSocket) Recv(timeout time.Duration) ([]byte, error) {
	frame, err := recvTimeout(s.fd.load(), timeout, func(from unix.Sockaddr) bool {
		ll, ok := from.(*unix.SockaddrLinklayer)
		return !ok || ll.Pkttype != unix.PACKET_OUTGOING
	})
	if err != nil {
		return nil, fmt.Errorf("receive frame on device %d: %w", s.ifindex, err)
	}
	return frame, nil
}

// Close closes the socket; a second Close fails with EBADF.
func (s *PacketSocket) Close() error {
	if err := s.fd.close(); err != nil {
		return fmt.Errorf("close packet socket: %w", err)
	}
	return nil
}

// SendFrame transmits one Ethernet frame out of the device through a
// short-lived packet socket (see PacketSocket.Send).
func (ns *NetNS) SendFrame(ifindex int, frame []byte) error {
	var ethertype uint16
	if len(frame) >= 14 {
		ethertype = binary.BigEndian.Uint16(frame[12:14])
	}
	s, err := ns.OpenPacketSocket(ifindex, ethertype)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Send(frame)
}

// RecvAny returns the next frame received on any of the sockets (skipping
// their devices' own outgoing frames), copied into buf, with the index of
// its socket; it waits up to timeout (0: only what is queued already) and
// fails with ETIMEDOUT if nothing came. One poll(2) covers every socket.
func RecvAny(socks []*PacketSocket, buf []byte, timeout time.Duration) (int, []byte, error) {
	deadline := time.Now().Add(timeout)
	pfd := make([]unix.PollFd, len(socks))
	for {
		for i, s := range socks {
			for {
				n, from, err := unix.Recvfrom(s.fd.load(), buf, 0)
				if err != nil {
					if !errors.Is(err, unix.EAGAIN) {
						return i, nil, fmt.Errorf("receive frame on device %d: %w", s.ifindex, err)
					}
					break
				}
				if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
					continue
				}
				return i, buf[:n], nil
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return -1, nil, fmt.Errorf("receive frame: %w (nothing received within %v)", unix.ETIMEDOUT, timeout)
		}
		for i, s := range socks {
			pfd[i] = unix.PollFd{Fd: int32(s.fd.load()), Events: unix.POLLIN}
		}
		if _, err := unix.Poll(pfd, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return -1, nil, fmt.Errorf("poll: %w", err)
		}
	}
}
