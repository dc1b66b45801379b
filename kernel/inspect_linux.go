package kernel

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
)

// Attach types of the other multi-program hooks a device may have
// (enum bpf_attach_type): netkit's primary and peer chains.
const (
	AttachNetkitPrimary = 54 // BPF_NETKIT_PRIMARY
	AttachNetkitPeer    = 55 // BPF_NETKIT_PEER
)

// Link types (enum bpf_link_type) a device's hooks can hold.
const (
	LinkTypeXDP    = 6  // BPF_LINK_TYPE_XDP
	LinkTypeNetkit = 13 // BPF_LINK_TYPE_NETKIT
)

// bpfFSMagic is statfs(2)'s f_type of a bpffs.
const bpfFSMagic = 0xcafe4a11

// Device is one network device as rtnetlink lists it, with its XDP
// attachment (program ID 0: none).
type Device struct {
	Ifindex int
	Name    string
	Kind    string // veth, netkit, device (physical), ...
	Up      bool
	// XDPProgID and XDPMode (netlink's XDP_ATTACHED_*: 1 driver, 2 generic,
	// 3 offload, 4 several) describe the device's XDP program.
	XDPProgID uint32
	XDPMode   uint32
	// NetkitPrimary is set for netkit devices: true on the primary end.
	Netkit, NetkitPrimary bool
}

func device(l netlink.Link) Device {
	a := l.Attrs()
	d := Device{Ifindex: a.Index, Name: a.Name, Kind: l.Type(), Up: a.Flags&1 != 0}
	if a.Xdp != nil && a.Xdp.Attached {
		d.XDPProgID, d.XDPMode = a.Xdp.ProgId, a.Xdp.AttachMode
	}
	if nk, ok := l.(*netlink.Netkit); ok {
		d.Netkit, d.NetkitPrimary = true, nk.IsPrimary()
	}
	return d
}

// Devices lists every device of the namespace in ifindex order.
func (ns *NetNS) Devices() ([]Device, error) {
	var out []Device
	err := ns.Do(func() error {
		links, err := ns.nl.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			out = append(out, device(l))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// DeviceByName is one device (ENODEV if there is none).
func (ns *NetNS) DeviceByName(name string) (Device, error) {
	var d Device
	err := ns.Do(func() error {
		l, err := ns.nl.LinkByName(name)
		if err != nil {
			return linkErr(err)
		}
		d = device(l)
		return nil
	})
	if err != nil {
		return Device{}, fmt.Errorf("find device %s: %w", name, err)
	}
	return d, nil
}

// Hook is a multi-program hook's chain as BPF_PROG_QUERY reports it.
type Hook struct {
	Entries  []tcx.Entry
	Revision uint64
}

// QueryHook reads the whole chain of any mprog hook by attach type (tcx
// ingress/egress, netkit primary/peer), read-only.
func (b *Backend) QueryHook(ifindex int, attachType uint32) (Hook, error) {
	for {
		attr := progQueryAttr{targetIfindex: uint32(ifindex), attachType: attachType}
		if _, err := inNS(b.ns, cmdProgQuery, &attr); err != nil {
			return Hook{}, fmt.Errorf("query hook: %w", err)
		}
		n := attr.count
		progs, links := make([]uint32, n+1), make([]uint32, n+1)
		attr = progQueryAttr{targetIfindex: uint32(ifindex), attachType: attachType, count: n,
			progIDs: slicePtr(progs), linkIDs: slicePtr(links)}
		_, err := inNS(b.ns, cmdProgQuery, &attr)
		if errors.Is(err, unix.ENOSPC) {
			continue // the chain grew between the two queries
		}
		if err != nil {
			return Hook{}, fmt.Errorf("query hook: %w", err)
		}
		h := Hook{Revision: attr.revision, Entries: make([]tcx.Entry, attr.count)}
		for i := range h.Entries {
			h.Entries[i] = tcx.Entry{ProgramID: progs[i], LinkID: links[i]}
		}
		return h, nil
	}
}

// ProgInfo is what the kernel tells about a loaded program.
type ProgInfo struct {
	ID       uint32
	Name     string
	Tag      string
	Type     ebpf.ProgramType
	LoadedAt time.Time
	UID      uint32
}

// ProgramInfoByID describes the program with that ID (ENOENT: no such
// program).
func ProgramInfoByID(id uint32) (ProgInfo, error) {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ProgInfo{}, fmt.Errorf("program %d: %w", id, err)
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ProgInfo{}, fmt.Errorf("program %d info: %w", id, err)
	}
	pi := ProgInfo{ID: id, Name: info.Name, Tag: info.Tag, Type: info.Type}
	if d, ok := info.LoadTime(); ok {
		pi.LoadedAt = bootTime().Add(d)
	}
	pi.UID, _ = info.CreatedByUID()
	return pi, nil
}

// bootTime is the wall-clock time of boot, the origin of the kernel's
// load_time (CLOCK_BOOTTIME).
func bootTime() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// LinkDesc is what the kernel tells about a link of a device hook.
type LinkDesc struct {
	ID, Type, ProgID uint32
	// Ifindex is 0 once the link is defunct (detached, device gone).
	Ifindex    uint32
	AttachType uint32
}

// LinkInfoByID describes the link with that ID (ENOENT: no such link).
func LinkInfoByID(id uint32) (LinkDesc, error) {
	attr := getIDAttr{id: id}
	fd, err := sysBPF(cmdLinkGetFDByID, &attr)
	if err != nil {
		return LinkDesc{}, fmt.Errorf("link %d: %w", id, err)
	}
	defer unix.Close(fd)
	return linkDescFD(fd)
}

func linkDescFD(fd int) (LinkDesc, error) {
	var info linkInfo
	attr := infoAttr{bpfFD: uint32(fd), infoLen: uint32(unsafe.Sizeof(info)), info: pointer{p: unsafe.Pointer(&info)}}
	if _, err := sysBPF(cmdObjGetInfoByFD, &attr); err != nil {
		return LinkDesc{}, fmt.Errorf("link info: %w", err)
	}
	d := LinkDesc{ID: info.id, Type: info.typ, ProgID: info.progID}
	if info.typ == tcx.LinkTypeTCX || info.typ == LinkTypeNetkit {
		d.Ifindex, d.AttachType = info.ifindex, info.attachType
	}
	return d, nil
}

// Object kinds a bpffs pin can hold.
const (
	PinnedLink = "link"
	PinnedProg = "prog"
	PinnedMap  = "map"
)

// Pinned is the object behind a bpffs pin.
type Pinned struct {
	Kind string // PinnedLink, PinnedProg or PinnedMap
	ID   uint32
	Link LinkDesc // for a link
}

// PinnedObject opens the pin (BPF_OBJ_GET), says what it holds
// and closes it again.
func PinnedObject(path string) (Pinned, error) {
	name, err := bytePtr(path)
	if err != nil {
		return Pinned{}, fmt.Errorf("open pin %s: %w", path, err)
	}
	attr := objAttr{pathname: name}
	fd, err := sysBPF(cmdObjGet, &attr)
	if err != nil {
		return Pinned{}, fmt.Errorf("open pin %s: %w", path, err)
	}
	defer unix.Close(fd)
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return Pinned{}, fmt.Errorf("open pin %s: %w", path, err)
	}
	var p Pinned
	switch target {
	case "anon_inode:bpf-link", "anon_inode:bpf_link":
		d, err := linkDescFD(fd)
		if err != nil {
			return Pinned{}, fmt.Errorf("pin %s: %w", path, err)
		}
		return Pinned{Kind: PinnedLink, ID: d.ID, Link: d}, nil
	case "anon_inode:bpf-prog":
		p.Kind = PinnedProg
	case "anon_inode:bpf-map":
		p.Kind = PinnedMap
	default:
		return Pinned{}, fmt.Errorf("pin %s: %w (%s)", path, unix.EINVAL, target)
	}
	// bpf_prog_info and bpf_map_info both start with type, id.
	var head struct{ typ, id uint32 }
	iattr := infoAttr{bpfFD: uint32(fd), infoLen: uint32(unsafe.Sizeof(head)), info: pointer{p: unsafe.Pointer(&head)}}
	if _, err := sysBPF(cmdObjGetInfoByFD, &iattr); err != nil {
		return Pinned{}, fmt.Errorf("pin %s info: %w", path, err)
	}
	p.ID = head.id
	return p, nil
}

// IsBPFFS fails unless path is a mounted bpffs: ENOENT when it does not
// exist, ENOTDIR when it is no directory, EMEDIUMTYPE when it is a
// directory of another file system.
func IsBPFFS(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("bpffs %s: %w", path, err)
	}
	if uint32(st.Type) != bpfFSMagic {
		return fmt.Errorf("bpffs %s: %w (not a bpf file system)", path, unix.EMEDIUMTYPE)
	}
	return nil
}

// LinkByID opens a new handle to the tcx link with that ID
// (BPF_LINK_GET_FD_BY_ID); links of other types fail with EINVAL.
func (b *Backend) LinkByID(id uint32) (*Link, error) {
	attr := getIDAttr{id: id}
	fd, err := sysBPF(cmdLinkGetFDByID, &attr)
	if err != nil {
		return nil, fmt.Errorf("open link by id %d: %w", id, err)
	}
	l, err := newLink(fd, b.pinDir, "")
	if err != nil {
		return nil, fmt.Errorf("open link by id %d: %w", id, err)
	}
	return l, nil
}

// AddNetkitPair creates the netkit pair primary <-> peer (L3 mode, both
// ends forwarding by default) and brings both ends up.
func (ns *NetNS) AddNetkitPair(primary, peer string) error {
	err := ns.Do(func() error {
		nk := &netlink.Netkit{LinkAttrs: netlink.LinkAttrs{Name: primary}, Mode: netlink.NETKIT_MODE_L3,
			Policy: netlink.NETKIT_POLICY_FORWARD, PeerPolicy: netlink.NETKIT_POLICY_FORWARD}
		nk.SetPeerAttrs(&netlink.LinkAttrs{Name: peer})
		if err := ns.nl.LinkAdd(nk); err != nil {
			return err
		}
		for _, name := range []string{primary, peer} {
			l, err := ns.nl.LinkByName(name)
			if err != nil {
				return linkErr(err)
			}
			if err := ns.nl.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add netkit pair %s/%s: %w", primary, peer, err)
	}
	return nil
}
