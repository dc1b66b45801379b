package port_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx/internal/testkit/dptraffic"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest"
	"github.com/tcxgo/tcx/kernel"
	"github.com/tcxgo/tcx/port"
)

func netns(t *testing.T) (*kernel.NetNS, string) {
	t.Helper()
	kerneltest.RequireKernel(t)
	ns, err := kernel.NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.FD())
}

func nsenter(t *testing.T, path string, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + path}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// readUntil reads p until match accepts a frame or the time is up.
func readUntil(t *testing.T, p port.Port, match func([]byte) bool) bool {
	t.Helper()
	found := make(chan bool, 1)
	go func() {
		b := port.NewBatch(16, 2048)
		for {
			if err := p.Read(b); err != nil {
				found <- false
				return
			}
			for _, f := range b.Frames[:b.N] {
				if match(f.Data) {
					found <- true
					return
				}
			}
		}
	}()
	select {
	case ok := <-found:
		return ok
	case <-time.After(5 * time.Second):
		return false
	}
}

// A TAP created in another namespace: a ping written into it is answered
// by that namespace's stack, and the reply is read back.
func TestTAP_PingThroughStack(t *testing.T) {
	ns, path := netns(t)
	p, err := port.OpenTAP("tcxtap0", port.Options{NetNS: path})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	nsenter(t, path, "ip", "addr", "add", "10.0.0.2/24", "dev", "tcxtap0")
	nsenter(t, path, "ip", "neigh", "add", "10.0.0.1", "lladdr", dptraffic.InsideMAC.String(), "dev", "tcxtap0")
	var tapMAC net.HardwareAddr
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName("tcxtap0")
		if err == nil {
			tapMAC = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ping := dptraffic.Ping(dptraffic.InsideIP, dptraffic.ServerIP, 7)
	copy(ping[0:6], tapMAC)
	if err := p.Write([]port.Frame{{Data: ping, Len: len(ping)}}); err != nil {
		t.Fatal(err)
	}
	if !readUntil(t, p, func(f []byte) bool {
		return len(f) > 34 && f[12] == 8 && f[13] == 0 && f[23] == 1 && f[34] == 0 // ICMP echo reply
	}) {
		t.Fatal("no echo reply read from the TAP")
	}
}

// AF_PACKET on one end of a veth pair: frames sent into the other end are
// read (in batches), frames written leave by it, and its own frames are
// not read back.
func TestAFPacket_Veth(t *testing.T) {
	ns, path := netns(t)
	ia, _, err := ns.AddVethPair("tva", "tvb")
	if err != nil {
		t.Fatal(err)
	}
	p, err := port.OpenAFPacket("tvb", port.Options{NetNS: path, Promisc: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	frame := dptraffic.UDP(dptraffic.InsideIP, dptraffic.ServerIP, 1, 2, []byte("afpacket"))
	for range 3 {
		if err := ns.SendFrame(ia, frame); err != nil {
			t.Fatal(err)
		}
	}
	if !readUntil(t, p, func(f []byte) bool { return bytes.Equal(f, frame) }) {
		t.Fatal("frame sent into the peer not read")
	}
	sock, err := ns.OpenPacketSocket(ia, 0x0800)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	out := dptraffic.UDP(dptraffic.ServerIP, dptraffic.InsideIP, 3, 4, []byte("written"))
	if err := p.Write([]port.Frame{{Data: out, Len: len(out)}, {Data: out, Len: len(out)}}); err != nil {
		t.Fatal(err)
	}
	got, err := sock.Recv(2 * time.Second)
	if err != nil || !bytes.Equal(got, out) {
		t.Fatalf("peer received %x, %v; want the written frame", got, err)
	}
}

// Without CAP_NET_RAW a packet socket cannot be opened, and the error says
// which capability is missing.
func TestAFPacket_NoCapability(t *testing.T) {
	kerneltest.RequireKernel(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its capabilities
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		p, err := port.OpenAFPacket("lo", port.Options{})
		if err == nil {
			p.Close()
		}
		errc <- err
	}()
	err := <-errc
	if err == nil {
		t.Fatal("opened a packet socket without CAP_NET_RAW")
	}
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "CAP_NET_RAW") || !strings.Contains(port.Explain(err), "CAP_NET_RAW") {
		t.Errorf("error %q (explained %q): want EPERM naming CAP_NET_RAW", err, port.Explain(err))
	}
}

func TestAFPacket_NoSuchInterface(t *testing.T) {
	kerneltest.RequireKernel(t)
	_, err := port.OpenAFPacket("tcx-nope0", port.Options{})
	if !errors.Is(err, unix.ENODEV) || port.Explain(err) == "" {
		t.Errorf("missing interface: %v", err)
	}
}
