//go:build !linux

package kernel

import (
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx"
)

// errUnsupported is every answer off Linux: tcx exists only there.
var errUnsupported = fmt.Errorf("kernel backend: %w (tcx needs Linux)", syscall.ENOTSUP)

// Supported reports that the kernel backend needs Linux.
func Supported() error { return errUnsupported }

// Route is a route to install in a namespace's routing table.
type Route struct {
	Dst       netip.Prefix
	Gateway   netip.Addr
	Ifindex   int
	Table     int
	Metric    int
	Blackhole bool
	Type      int
	Src       netip.Addr
	MTULock   int
}

func (ns *NetNS) AddAddr(ifindex int, p netip.Prefix) error                { return errUnsupported }
func (ns *NetNS) AddRoute(r Route) error                                   { return errUnsupported }
func (ns *NetNS) AddNeigh(ifindex int, addr netip.Addr, mac [6]byte) error { return errUnsupported }

// Rule is a fib rule to install in a namespace.
type Rule struct {
	Priority   int
	IPv6       bool
	Src, Dst   netip.Prefix
	Iif, Oif   string
	Mark, Mask uint32
	Invert     bool
	Action     int
	Table      int
}

func (ns *NetNS) AddRule(r Rule) error                           { return errUnsupported }
func (ns *NetNS) SetIPv4Forwarding(on bool) error                { return errUnsupported }
func (ns *NetNS) SetIPv6Forwarding(on bool) error                { return errUnsupported }
func (ns *NetNS) SetMTU(ifindex, mtu int) error                  { return errUnsupported }
func (ns *NetNS) SetDeviceForwarding(name string, on bool) error { return errUnsupported }

// Release has no Linux kernel to name off Linux.
func Release() (string, error) { return "", errUnsupported }

// NetNS is a network namespace; none can exist off Linux.
type NetNS struct{}

func NewNetNS() (*NetNS, error)                                   { return nil, errUnsupported }
func (ns *NetNS) Do(f func() error) error                         { return errUnsupported }
func (ns *NetNS) FD() int                                         { return -1 }
func (ns *NetNS) Close() error                                    { return errUnsupported }
func (ns *NetNS) Ifindex(name string) (int, error)                { return 0, errUnsupported }
func (ns *NetNS) AddVethPair(a, b string) (ia, ib int, err error) { return 0, 0, errUnsupported }
func (ns *NetNS) DeleteDevice(ifindex int) error                  { return errUnsupported }
func (ns *NetNS) AddVethPairTo(a string, peer *NetNS, b string) (ia, ib int, err error) {
	return 0, 0, errUnsupported
}
func (ns *NetNS) SetHardwareAddr(ifindex int, addr [6]byte) error { return errUnsupported }
func (ns *NetNS) DisableIPv6() error                              { return errUnsupported }
func (ns *NetNS) AddQdisc(ifindex int, kind string) error         { return errUnsupported }
func (ns *NetNS) DeleteQdisc(ifindex int, kind string) error      { return errUnsupported }
func (ns *NetNS) AddFilter(ifindex int, dir tcx.Direction, prio uint16, handle uint32, prog *Program) error {
	return errUnsupported
}
func (ns *NetNS) DeleteFilter(ifindex int, dir tcx.Direction, prio uint16, handle uint32) error {
	return errUnsupported
}
func (ns *NetNS) Ping(timeout time.Duration) error { return errUnsupported }
func (ns *NetNS) OpenPacketSocket(ifindex int, ethertype uint16) (*PacketSocket, error) {
	return nil, errUnsupported
}
func (ns *NetNS) SendFrame(ifindex int, frame []byte) error { return errUnsupported }

// PacketSocket is a raw packet socket; none can exist off Linux.
type PacketSocket struct{}

func (s *PacketSocket) Send(frame []byte) error                    { return errUnsupported }
func (s *PacketSocket) Recv(timeout time.Duration) ([]byte, error) { return nil, errUnsupported }
func (s *PacketSocket) Close() error                               { return errUnsupported }
func RecvAny(socks []*PacketSocket, buf []byte, timeout time.Duration) (int, []byte, error) {
	return -1, nil, errUnsupported
}

// Backend is the kernel backend; none can exist off Linux.
type Backend struct{}

var _ tcx.Backend = (*Backend)(nil)

func New(ns *NetNS, opts Options) (*Backend, error) { return nil, errUnsupported }
func (b *Backend) NetNS() *NetNS                    { return nil }
func (b *Backend) PinDir() string                   { return "" }
func (b *Backend) Close() error                     { return errUnsupported }
func (b *Backend) Attach(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.AttachOptions) error {
	return errUnsupported
}
func (b *Backend) Detach(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.DetachOptions) error {
	return errUnsupported
}
func (b *Backend) Query(ifindex int, dir tcx.Direction, opts tcx.QueryOptions) (tcx.QueryResult, error) {
	return tcx.QueryResult{}, errUnsupported
}
func (b *Backend) CreateLink(ifindex int, dir tcx.Direction, prog tcx.Program, opts tcx.LinkOptions) (tcx.Link, error) {
	return nil, errUnsupported
}
func (b *Backend) OpenPinnedLink(path string) (tcx.Link, error) { return nil, errUnsupported }
func (b *Backend) LoadCollection(spec *ebpf.CollectionSpec, opts LoadOptions) (*Collection, error) {
	return nil, errUnsupported
}
func (b *Backend) NewMap(spec *ebpf.MapSpec) (*Map, error) { return nil, errUnsupported }
func (b *Backend) ProgramByID(id uint32) (*Program, error) { return nil, errUnsupported }

// Link is a tcx link handle; none can exist off Linux.
type Link struct{}

var _ tcx.Link = (*Link)(nil)

func (l *Link) ID() uint32                                            { return 0 }
func (l *Link) String() string                                        { return "tcx link" }
func (l *Link) FD() int                                               { return -1 }
func (l *Link) Info() (tcx.LinkInfo, error)                           { return tcx.LinkInfo{}, errUnsupported }
func (l *Link) Update(prog tcx.Program, opts tcx.UpdateOptions) error { return errUnsupported }
func (l *Link) Detach() error                                         { return errUnsupported }
func (l *Link) Pin(path string) error                                 { return errUnsupported }
func (l *Link) Unpin() error                                          { return errUnsupported }
func (l *Link) Close() error                                          { return errUnsupported }

// Socket is a socket opened in a namespace; none can exist off Linux.
type Socket struct {
	Family        uint16
	Protocol      uint8
	Listening     bool
	Accepted      bool
	V6Only        bool
	Local, Remote netip.AddrPort
	Cookie        uint64
	NetnsCookie   uint64
	FD            int
	TCP           *TCPInfo
}

// TCPInfo is the part of TCP_INFO that struct bpf_tcp_sock also shows.
type TCPInfo struct {
	State, Retransmits                               uint8
	SndMss, Unacked, Sacked, Lost, Retrans           uint32
	SndSsthresh, SndCwnd, TotalRetrans               uint32
	BytesAcked, BytesReceived                        uint64
	SegsOut, SegsIn, MinRtt, DataSegsIn, DataSegsOut uint32
	Delivered, DeliveredCE, DsackDups                uint32
}

func (s *Socket) Close() error                                    { return errUnsupported }
func (ns *NetNS) Listen(network, address string) (*Socket, error) { return nil, errUnsupported }
func (ns *NetNS) Connect(l *Socket) (client, server *Socket, err error) {
	return nil, nil, errUnsupported
}
