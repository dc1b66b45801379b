package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
)

// Config says where a kernel Host works.
type Config struct {
	// NetNS is the namespace: "" or "host" the caller's own, NAME one of
	// /run/netns, or a path such as /proc/PID/ns/net.
	NetNS string
	// BPFFS is the bpffs tcx pins into (DefaultBPFFS if empty); links go
	// under BPFFS/tcx. Pins are looked for in every mounted bpffs, or only
	// in BPFFS when it was given.
	BPFFS string
	// MapPinDir is where LIBBPF_PIN_BY_NAME maps are pinned and reused
	// (libbpf's pin_root_path); empty: BPFFS itself, libbpf's default.
	MapPinDir string
	// StateDir holds the ownership records (DefaultStateDir if empty).
	StateDir string
	// SetVariables applies AttachRequest.Set and UpdateRequest.Set; nil:
	// requests with Set fail.
	SetVariables SetVariables
}

// kernelHost is Host over this machine's kernel.
type kernelHost struct {
	cfg      Config
	scanAll  bool // look for pins in every mounted bpffs
	ns       *kernel.NetNS
	b        *kernel.Backend
	inode    uint64
	records  *Records
	progInfo map[uint32]kernel.ProgInfo
	noTCX    bool // the kernel has no tcx (probe)
}

var _ Host = (*kernelHost)(nil)

// OpenKernel opens the namespace cfg names; nothing changes until a
// request that changes something.
func OpenKernel(cfg Config) (Host, error) {
	h := &kernelHost{cfg: cfg, progInfo: map[uint32]kernel.ProgInfo{}}
	if h.cfg.BPFFS == "" {
		h.cfg.BPFFS, h.scanAll = DefaultBPFFS, true
	}
	if h.cfg.MapPinDir == "" {
		h.cfg.MapPinDir = h.cfg.BPFFS
	}
	if h.cfg.StateDir == "" {
		h.cfg.StateDir = DefaultStateDir
	}
	h.records = NewRecords(h.cfg.StateDir)
	ns, err := kernel.OpenNetNS(cfg.NetNS)
	if err != nil {
		return nil, explainNetNS(cfg.NetNS, err)
	}
	h.ns = ns
	if h.inode, err = ns.Inode(); err != nil {
		ns.Close()
		return nil, err
	}
	if h.b, err = kernel.New(ns, kernel.Options{PinDir: h.cfg.BPFFS}); err != nil {
		ns.Close()
		return nil, err
	}
	return h, nil
}

func (h *kernelHost) Close() error {
	return errors.Join(h.b.Close(), h.ns.Close())
}

func (h *kernelHost) netns() NetNS { return NetNS{Name: h.ns.Name(), Inode: h.inode} }

// nsKey names the namespace in default pin paths.
func (h *kernelHost) nsKey() string {
	_, name := kernel.ResolveNetNS(h.cfg.NetNS)
	if name == "host" || (filepath.Base(name) == name && name != "") {
		return name
	}
	return fmt.Sprintf("ns-%d", h.inode)
}

func (h *kernelHost) setVariables(spec *ebpf.CollectionSpec, sets []string) error {
	if len(sets) == 0 {
		return nil
	}
	if h.cfg.SetVariables == nil {
		return errors.New("--set: this host cannot set global variables")
	}
	return h.cfg.SetVariables(spec, sets)
}

// LinkDir is where tcx pins the links it creates by default.
func LinkDir(bpffs string) string { return filepath.Join(bpffs, "tcx") }

// pinTable is every pin found in bpffs, by object.
type pinTable struct {
	links, progs map[uint32][]string
	linkInfo     map[uint32]kernel.LinkDesc
}

func (h *kernelHost) scanPins() pinTable {
	t := pinTable{links: map[uint32][]string{}, progs: map[uint32][]string{}, linkInfo: map[uint32]kernel.LinkDesc{}}
	roots := []string{h.cfg.BPFFS}
	if h.scanAll {
		roots = bpffsMounts()
	}
	walkPins(roots, func(path string) {
		p, err := kernel.PinnedObject(path)
		if err != nil {
			return
		}
		switch p.Kind {
		case kernel.PinnedLink:
			t.links[p.ID] = append(t.links[p.ID], path)
			t.linkInfo[p.ID] = p.Link
		case kernel.PinnedProg:
			t.progs[p.ID] = append(t.progs[p.ID], path)
		}
	})
	return t
}

func (h *kernelHost) program(id uint32, pins pinTable, hold holders) Program {
	pi, ok := h.progInfo[id]
	if !ok {
		var err error
		if pi, err = kernel.ProgramInfoByID(id); err != nil {
			pi = kernel.ProgInfo{ID: id, Name: "?"}
		}
		h.progInfo[id] = pi
	}
	return Program{ID: id, Name: pi.Name, Tag: pi.Tag, Type: progTypeName(pi.Type), LoadedAt: pi.LoadedAt.UTC().Round(0),
		Pins: pins.progs[id], Holders: hold.progs[id]}
}

func (h *kernelHost) Show(ctx context.Context, dev string) (*Snapshot, error) {
	var devs []kernel.Device
	if dev != "" {
		d, err := h.device(dev)
		if err != nil {
			return nil, err
		}
		devs = []kernel.Device{d}
	} else {
		var err error
		if devs, err = h.ns.Devices(); err != nil {
			return nil, err
		}
	}
	if err := h.probe(devs); err != nil {
		return nil, err
	}
	recs, _ := h.records.All()
	return h.snapshot(devs, h.scanPins(), scanHolders(), newIndex(recs)), nil
}

// probe asks the kernel about the first device's tcx hook once: without
// privileges nothing can be read (EPERM, explained); a kernel without tcx
// answers EINVAL, and then only the classic side is shown.
func (h *kernelHost) probe(devs []kernel.Device) error {
	if len(devs) == 0 {
		return nil
	}
	_, err := h.b.QueryHook(devs[0].Ifindex, tcx.AttachTCXIngress)
	switch errnoOf(err) {
	case 0:
	case syscall.EINVAL:
		h.noTCX = true
	case syscall.EPERM, syscall.EACCES:
		return explainCommon(err, "reading BPF hooks")
	}
	return nil
}

func (h *kernelHost) device(name string) (kernel.Device, error) {
	d, err := h.ns.DeviceByName(name)
	if errors.Is(err, syscall.ENODEV) {
		return d, fmt.Errorf("ENODEV: no device %q in network namespace %s (see `ip -n NS link` or `tcx show --netns NS`): %w", name, h.ns.Name(), err)
	}
	return d, err
}

func (h *kernelHost) snapshot(devs []kernel.Device, pins pinTable, hold holders, ix index) *Snapshot {
	s := &Snapshot{Schema: SchemaShow, NetNS: h.netns(), Devices: []Device{}}
	if h.noTCX {
		s.Notes = append(s.Notes, "this kernel has no tcx (BPF_PROG_QUERY: EINVAL); only classic cls_bpf filters, XDP and netkit are shown")
	}
	for _, kd := range devs {
		d := Device{Ifindex: kd.Ifindex, Name: kd.Name, Kind: kd.Kind}
		for _, dir := range []tcx.Direction{tcx.Ingress, tcx.Egress} {
			hk := d.Hook(dir.String())
			hk.TCX, hk.Classic = []Attachment{}, []ClassicFilter{}
			var chain kernel.Hook
			if !h.noTCX {
				var err error
				if chain, err = h.b.QueryHook(kd.Ifindex, dir.AttachType()); err != nil {
					s.Notes = append(s.Notes, fmt.Sprintf("%s %s: tcx query failed: %v", kd.Name, dir, err))
				}
			}
			hk.Revision = chain.Revision
			hk.TCX = h.attachments(chain, kd.Ifindex, dir.String(), pins, hold, ix)
			hk.Qdisc, _ = h.ns.ClassicQdisc(kd.Ifindex)
			filters, err := h.ns.ClassicFilters(kd.Ifindex, dir)
			if err != nil {
				s.Notes = append(s.Notes, fmt.Sprintf("%s %s: cls_bpf filters unreadable: %v", kd.Name, dir, err))
			}
			for _, f := range filters {
				c := ClassicFilter{Priority: f.Priority, Handle: f.Handle, DirectAction: f.DirectAction, Name: f.Name,
					Program: h.program(f.ProgID, pins, hold)}
				c.Owner = ix.classicAt(h.inode, kd.Ifindex, dir.String(), f.Priority, f.ProgID)
				c.Foreign = c.Owner == nil
				hk.Classic = append(hk.Classic, c)
			}
		}
		if kd.XDPProgID != 0 {
			d.XDP = &XDP{Mode: xdpMode(kd.XDPMode), Program: h.program(kd.XDPProgID, pins, hold)}
		}
		if kd.Netkit && kd.NetkitPrimary {
			nk := &Netkit{}
			for _, c := range []struct {
				at  uint32
				out *Chain
			}{{kernel.AttachNetkitPrimary, &nk.Primary}, {kernel.AttachNetkitPeer, &nk.Peer}} {
				chain, err := h.b.QueryHook(kd.Ifindex, c.at)
				if err != nil {
					s.Notes = append(s.Notes, fmt.Sprintf("%s netkit: query failed: %v", kd.Name, err))
				}
				c.out.Revision = chain.Revision
				c.out.Programs = h.attachments(chain, kd.Ifindex, "netkit", pins, hold, ix)
			}
			d.Netkit = nk
		}
		s.Devices = append(s.Devices, d)
	}
	return s
}

func (h *kernelHost) attachments(chain kernel.Hook, ifindex int, dir string, pins pinTable, hold holders, ix index) []Attachment {
	out := []Attachment{}
	for i, e := range chain.Entries {
		a := Attachment{Position: i, Program: h.program(e.ProgramID, pins, hold)}
		if e.LinkID != 0 {
			a.Link = &Link{ID: e.LinkID, Pins: nonNil(pins.links[e.LinkID]), Holders: nonNilH(hold.links[e.LinkID])}
			a.Owner = ix.link(e.LinkID, e.ProgramID)
		} else {
			a.Owner = ix.plainAt(h.inode, ifindex, dir, e.ProgramID)
		}
		a.Foreign = a.Owner == nil
		out = append(out, a)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilH(s []Holder) []Holder {
	if s == nil {
		return []Holder{}
	}
	return s
}

func xdpMode(m uint32) string {
	switch m {
	case 1:
		return "driver"
	case 2:
		return "generic"
	case 3:
		return "offload"
	case 4:
		return "multi"
	}
	return fmt.Sprintf("mode %d", m)
}

// Doctor looks at every device of the namespace, every defunct tcx link
// pinned or held anywhere, and the ownership records.
func (h *kernelHost) Doctor(ctx context.Context) (*Report, error) {
	devs, err := h.ns.Devices()
	if err != nil {
		return nil, err
	}
	if err := h.probe(devs); err != nil {
		return nil, err
	}
	pins, hold := h.scanPins(), scanHolders()
	recs, bad := h.records.All()
	ix := newIndex(recs)
	snap := h.snapshot(devs, pins, hold, ix)
	var defunct []DefunctLink
	seen := map[uint32]bool{}
	consider := func(id uint32, d kernel.LinkDesc) {
		if seen[id] || d.Type != tcx.LinkTypeTCX || d.Ifindex != 0 {
			return
		}
		seen[id] = true
		dl := DefunctLink{ID: id, ProgID: d.ProgID, Direction: attachDir(d.AttachType), Pins: pins.links[id], Holders: hold.links[id], Owner: ix.links[id]}
		defunct = append(defunct, dl)
	}
	for id, d := range pins.linkInfo {
		consider(id, d)
	}
	// Links that only a process holds are that process's business, and go
	// when it exits; they are reported when doctor looks at the whole host
	// (every bpffs), not when it was pointed at one bpffs.
	for id := range hold.links {
		if d, err := kernel.LinkInfoByID(id); err == nil && (h.scanAll || ix.links[id] != nil) {
			consider(id, d)
		}
	}
	sort.Slice(defunct, func(i, j int) bool { return defunct[i].ID < defunct[j].ID })
	return diagnose(snap, defunct, h.records, recs, bad), nil
}

func attachDir(at uint32) string {
	switch at {
	case tcx.AttachTCXIngress:
		return "ingress"
	case tcx.AttachTCXEgress:
		return "egress"
	}
	return fmt.Sprintf("attach type %d", at)
}

// exists says whether a path exists (pins and directories a request must
// not overwrite or must remove again).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
