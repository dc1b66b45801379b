package datapath_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx/datapath"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/port"
	"github.com/tcxgo/tcx/userspace"
)

// rxNS is a namespace without IPv6 (no router or listener reports on the
// links) and its path for port.Options.NetNS.
func rxNS(t *testing.T) (*kernel.NetNS, string) {
	t.Helper()
	kerneltest.RequireKernel(t)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.FD())
	if err := ns.Do(func() error {
		// /proc/sys/net is the namespace of the thread that opens it.
		for _, c := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+c+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ns, path
}

func inNS(t *testing.T, path string, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + path}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// rxFrame is a broadcast frame of n bytes with a local experimental
// EtherType the stack ignores.
func rxFrame(n int) []byte {
	f := make([]byte, n)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 7, 0x88, 0xb5})
	return f
}

// sendRaw sends frames from a packet socket on iface inside ns: the
// kernel transmits them on iface as they are.
func sendRaw(t *testing.T, ns *kernel.NetNS, iface string, frames [][]byte) {
	t.Helper()
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return fmt.Errorf("send %d bytes on %s: %w", len(f), iface, err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// rxDatapath runs a datapath of one device (MTU 1500, no programs) on
// wire until send has run and the device has seen want frames in all, and
// returns its counters.
func rxDatapath(t *testing.T, wire port.Port, want uint64, send func()) datapath.Counters {
	t.Helper()
	rt := userspace.New()
	idx, err := rt.AddDevice("d0")
	if err != nil {
		t.Fatal(err)
	}
	dp, err := datapath.New(datapath.Config{Runtime: rt, Devices: []*datapath.Device{{Name: "d0", Ifindex: idx, MTU: 1500, Wire: wire}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()
	send()
	deadline := time.Now().Add(10 * time.Second) // a hang guard: the frames are queued already
	for {
		c := dp.Stats()[0]
		if c.RxFrames+c.RxErrors >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return dp.Stats()[0]
}

// sizes sent into a device of MTU 1500: frames of up to 1518 bytes
// (Ethernet header and one VLAN tag) are received, longer ones are
// receive errors.
var (
	rxGood     = []int{60, 60, 1000, 1518, 1518}
	rxOversize = []int{1519, 1600, 4000, 9000}
)

func rxFrames() [][]byte {
	var fs [][]byte
	for i := range max(len(rxGood), len(rxOversize)) {
		if i < len(rxGood) {
			fs = append(fs, rxFrame(rxGood[i]))
		}
		if i < len(rxOversize) {
			fs = append(fs, rxFrame(rxOversize[i]))
		}
	}
	return fs
}

func checkRx(t *testing.T, what string, c datapath.Counters, good, bad int) {
	t.Helper()
	if c.RxErrors != uint64(bad) || c.RxFrames < uint64(good) || c.Delivered != c.RxFrames {
		t.Errorf("%s: rx %d, rx errors %d, delivered %d; want at least %d received and delivered, %d errors", what, c.RxFrames, c.RxErrors, c.Delivered, good, bad)
	}
	t.Logf("datapath rx errors: %s: %d frames received, %d receive errors (sent %d good, %d bad)", what, c.RxFrames, c.RxErrors, good, bad)
}

// Frames over the MTU arriving on a veth read by an AF_PACKET port: the
// veth ends allow 9000 bytes, the userspace device 1500.
func TestRxErrors_AFPacketOversize(t *testing.T) {
	ns, path := rxNS(t)
	inNS(t, path, "ip", "link", "add", "rxa", "mtu", "9000", "type", "veth", "peer", "name", "rxb", "mtu", "9000")
	inNS(t, path, "ip", "link", "set", "rxa", "up")
	inNS(t, path, "ip", "link", "set", "rxb", "up")
	wire, err := port.OpenAFPacket("rxa", port.Options{NetNS: path, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	fs := rxFrames()
	c := rxDatapath(t, wire, uint64(len(fs)), func() { sendRaw(t, ns, "rxb", fs) })
	checkRx(t, "afpacket on veth", c, len(rxGood), len(rxOversize))
}

// Frames over the MTU the kernel transmits on a TAP (MTU 9000) read by
// the TAP port of a userspace device of MTU 1500.
func TestRxErrors_TAPOversize(t *testing.T) {
	ns, path := rxNS(t)
	wire, err := port.OpenTAP("rxtap", port.Options{NetNS: path, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	inNS(t, path, "ip", "link", "set", "rxtap", "mtu", "9000", "up")
	fs := rxFrames()
	c := rxDatapath(t, wire, uint64(len(fs)), func() { sendRaw(t, ns, "rxtap", fs) })
	checkRx(t, "tap", c, len(rxGood), len(rxOversize))
}

// Frames under 14 bytes: an Ethernet device never carries one (packet
// sockets refuse to send it: dev_validate_header wants min_header_len,
// ETH_HLEN), but an AF_PACKET port may be opened on an L3 device. A TUN
// device passes what is written into it up its receive path, where the
// port's packet socket sees it before IPv4 rejects it: 10 bytes arrive.
func TestRxErrors_AFPacketShort(t *testing.T) {
	ns, path := rxNS(t)
	var tun *os.File
	if err := ns.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq("rxtun")
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return err
		}
		tun = os.NewFile(uintptr(fd), "rxtun")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	inNS(t, path, "ip", "link", "set", "rxtun", "up")
	// Packets starting with an IPv4 version nibble; the port reads them as
	// frames from byte 0 (a TUN device has no link-layer header).
	short, long := []int{1, 10, 13}, []int{14, 40}
	wire, err := port.OpenAFPacket("rxtun", port.Options{NetNS: path, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	c := rxDatapath(t, wire, uint64(len(short)+len(long)), func() {
		for _, n := range append(append([]int{}, short...), long...) {
			p := make([]byte, n)
			p[0] = 0x45
			if _, err := tun.Write(p); err != nil {
				t.Fatalf("write %d bytes into the TUN: %v", n, err)
			}
		}
	})
	checkRx(t, "afpacket on tun", c, len(long), len(short))
}

// The kernel refuses to send an Ethernet frame under 14 bytes, which is
// why TestRxErrors_AFPacketShort needs an L3 device: if this changes, a
// veth or TAP port can carry short frames and needs its own test.
func TestRxErrors_EthernetRefusesShort(t *testing.T) {
	ns, path := rxNS(t)
	inNS(t, path, "ip", "link", "add", "rxa", "type", "veth", "peer", "name", "rxb")
	inNS(t, path, "ip", "link", "set", "rxb", "up")
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName("rxb")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, rxFrame(13), 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6})
	})
	if !errors.Is(err, unix.EINVAL) {
		t.Fatalf("sending 13 bytes on a veth: %v, want EINVAL", err)
	}
}
