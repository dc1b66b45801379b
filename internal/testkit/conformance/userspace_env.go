package conformance

import (
	"fmt"
	"net"
	"sync/atomic"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/internal/testkit/kerneltest/probes"
	"github.com/tcxgo/tcx/userspace"
)

// userspaceEnv runs a scenario on a fresh userspace runtime. Its probe
// programs are Go functions (the bytecode engine is not needed to check
// chain semantics): each records that it ran and returns its verdict.
type userspaceEnv struct {
	rt    *userspace.Runtime
	seen  [probes.MaxProbe + 1]atomic.Bool
	frame []byte
}

// NewUserspaceEnv creates a userspace Env: a new runtime with lo at ifindex 1.
func NewUserspaceEnv() (Env, error) {
	frame, err := pingFrame()
	if err != nil {
		return nil, fmt.Errorf("userspace env: %w", err)
	}
	return &userspaceEnv{rt: userspace.New(), frame: frame}, nil
}

// pingFrame is a UDP datagram from 127.0.0.1 to 127.0.0.1, what the kernel
// Env's Ping sends over lo.
func pingFrame() ([]byte, error) {
	eth := &layers.Ethernet{
		SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{
		Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(127, 0, 0, 1), DstIP: net.IPv4(127, 0, 0, 1),
	}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 40001}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload("tcx-go ping")); err != nil {
		return nil, fmt.Errorf("build ping frame: %w", err)
	}
	return buf.Bytes(), nil
}

func (e *userspaceEnv) Name() string         { return "userspace" }
func (e *userspaceEnv) Backend() tcx.Backend { return e.rt }
func (e *userspaceEnv) Loopback() int        { return 1 }

func (e *userspaceEnv) Probe(n int, verdict int32) (tcx.Program, error) {
	if n < 0 || n > probes.MaxProbe {
		return nil, fmt.Errorf("probe %d: %w (out of range)", n, unix.EINVAL)
	}
	seen := &e.seen[n]
	return e.rt.NewProgram(probes.Probe{N: n}.Name(), userspace.RunnerFunc(func(*userspace.Packet) int32 {
		seen.Store(true)
		return verdict
	}))
}

func (e *userspaceEnv) Seen(n int) (bool, error) {
	if n < 0 || n > probes.MaxProbe {
		return false, fmt.Errorf("seen %d: %w (out of range)", n, unix.EINVAL)
	}
	return e.seen[n].Load(), nil
}

func (e *userspaceEnv) ResetSeen() error {
	for i := range e.seen {
		e.seen[i].Store(false)
	}
	return nil
}

// Ping transmits the frame out of lo: egress hook, loopback, ingress hook.
// Like the kernel's ping it fails unless the frame reached the local stack.
func (e *userspaceEnv) Ping() error {
	out := e.rt.Transmit(e.Loopback(), e.frame)
	if out.Fate != userspace.Delivered {
		return fmt.Errorf("ping 127.0.0.1: %w (%v on ifindex %d, verdict %d)", unix.ETIMEDOUT, out.Fate, out.Ifindex, out.Verdict)
	}
	return nil
}

func (e *userspaceEnv) AddVeth(a, b string) (int, int, error) { return e.rt.AddVethPair(a, b) }
func (e *userspaceEnv) DeleteDevice(ifindex int) error        { return e.rt.DeleteDevice(ifindex) }

func (e *userspaceEnv) AddQdisc(ifindex int, q Qdisc) error {
	kind := userspace.QdiscClsact
	if q == Ingress {
		kind = userspace.QdiscIngress
	}
	return e.rt.AddQdisc(ifindex, kind)
}

func (e *userspaceEnv) DeleteQdisc(ifindex int, _ Qdisc) error { return e.rt.DeleteQdisc(ifindex) }

func (e *userspaceEnv) AddClassicFilter(ifindex int, dir tcx.Direction, prog tcx.Program) error {
	return e.rt.AddFilter(ifindex, dir, userspace.Filter{Priority: 1, Handle: 1, Program: prog})
}

func (e *userspaceEnv) DeleteClassicFilter(ifindex int, dir tcx.Direction) error {
	return e.rt.DeleteFilter(ifindex, dir, 1, 1)
}

func (e *userspaceEnv) ProgramAlive(id uint32) (bool, error) { return alive(e.rt.ProgramByID(id)) }

// PinPath is an absolute path in the runtime's flat pin namespace.
func (e *userspaceEnv) PinPath(name string) string { return "/sys/fs/bpf/" + name }

// Close has nothing to release: the runtime is garbage once unreferenced.
func (e *userspaceEnv) Close() error { return nil }
