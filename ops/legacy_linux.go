package ops

import (
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
)

// LegacyFirstPriority is the priority of the first classic filter tcx adds
// to a hook without any; later ones go one below the lowest (head, before)
// or one above the highest (tail, after), so both ends have room.
const LegacyFirstPriority = 1000

// legacyHandle is the handle of every filter tcx adds (one per priority).
const legacyHandle = 1

// legacyTarget finds the classic filter a REF names.
func legacyTarget(filters []kernel.ClassicFilter, ref Ref) (int, bool) {
	for i, f := range filters {
		switch {
		case ref.Kind == RefHead && i == 0, ref.Kind == RefTail && i == len(filters)-1,
			ref.Kind == RefID && f.ProgID == ref.ID, ref.Kind == RefPrio && uint32(f.Priority) == ref.ID:
			return i, true
		}
	}
	return 0, false
}

// legacyPriority emulates tcx's anchors with cls_bpf priorities (lower
// runs first): the priority a new filter gets and, for a replace, the
// handle it takes over.
func legacyPriority(filters []kernel.ClassicFilter, p Placement) (prio uint16, handle uint32, replace bool, err error) {
	sort.Slice(filters, func(i, j int) bool { return filters[i].Priority < filters[j].Priority })
	if len(filters) == 0 {
		if p.Mode == PlaceReplace || (p.Mode != "" && p.Ref.Kind != RefHead && p.Ref.Kind != RefTail) {
			return 0, 0, false, fmt.Errorf("ENOENT: %s: the hook has no classic filters (%w)", p.Ref, unix.ENOENT)
		}
		return LegacyFirstPriority, legacyHandle, false, nil
	}
	lo, hi := filters[0].Priority, filters[len(filters)-1].Priority
	switch {
	case p.Mode == "" || p.Ref.Kind == RefTail:
		if hi == 0xffff {
			return 0, 0, false, fmt.Errorf("ERANGE: the last classic filter has priority 65535; no room after it (%w)", unix.ERANGE)
		}
		return hi + 1, legacyHandle, false, nil
	case p.Ref.Kind == RefHead:
		if lo <= 1 {
			return 0, 0, false, fmt.Errorf("ERANGE: the first classic filter has priority 1; no room before it (%w)", unix.ERANGE)
		}
		return lo - 1, legacyHandle, false, nil
	case p.Ref.Kind == RefLink:
		return 0, 0, false, fmt.Errorf("REF %s: classic filters have no links; name them by id:N or prio:N", p.Ref)
	}
	i, ok := legacyTarget(filters, p.Ref)
	if !ok {
		return 0, 0, false, fmt.Errorf("ENOENT: %s is not a classic filter of this hook (%w)", p.Ref, unix.ENOENT)
	}
	t := filters[i]
	switch p.Mode {
	case PlaceReplace:
		return t.Priority, t.Handle, true, nil
	case PlaceBefore:
		if t.Priority <= 1 || (i > 0 && filters[i-1].Priority >= t.Priority-1) {
			return 0, 0, false, fmt.Errorf("EEXIST: no free priority just before %s (prio %d); tc runs equal priorities by handle, so tcx will not guess (%w)", p.Ref, t.Priority, unix.EEXIST)
		}
		return t.Priority - 1, legacyHandle, false, nil
	}
	if t.Priority == 0xffff || (i+1 < len(filters) && filters[i+1].Priority <= t.Priority+1) {
		return 0, 0, false, fmt.Errorf("EEXIST: no free priority just after %s (prio %d) (%w)", p.Ref, t.Priority, unix.EEXIST)
	}
	return t.Priority + 1, legacyHandle, false, nil
}

func (h *kernelHost) attachLegacy(req AttachRequest, dev kernel.Device, dir tcx.Direction, spec *ebpf.CollectionSpec, progName string, owner *Owner, notes []string) (*AttachResult, error) {
	if req.ExpectedRevision != 0 {
		return nil, fmt.Errorf("--expected-revision: classic cls_bpf hooks have no revision (legacy mode)")
	}
	filters, err := h.ns.ClassicFilters(dev.Ifindex, dir)
	if err != nil {
		return nil, explainCommon(err, "listing classic filters")
	}
	p := req.Place
	if p.Ref.Kind == RefPin {
		obj, err := kernel.PinnedObject(p.Ref.Path)
		if err != nil || obj.Kind != kernel.PinnedProg {
			return nil, fmt.Errorf("REF %s: with --legacy a pin must hold a program", p.Ref)
		}
		p.Ref = Ref{Kind: RefID, ID: obj.ID}
	}
	prio, handle, replace, err := legacyPriority(filters, p)
	if err != nil {
		return nil, err
	}
	var u undo
	defer u.finish()
	coll, res, err := h.load(spec, progName, &u)
	if err != nil {
		return nil, err
	}
	prog := coll.Programs[progName]
	created, err := h.ns.EnsureClsact(dev.Ifindex)
	if err != nil {
		return nil, explainCommon(err, "adding a clsact qdisc to "+dev.Name)
	}
	if created {
		u.add(func() { h.ns.DeleteQdisc(dev.Ifindex, kernel.QdiscClsact) })
		notes = append(notes, "added a clsact qdisc to "+dev.Name)
	}
	if replace {
		err = h.ns.ReplaceFilter(dev.Ifindex, dir, prio, handle, prog)
	} else {
		err = h.ns.AddFilter(dev.Ifindex, dir, prio, handle, prog)
	}
	if err != nil {
		return nil, explainCommon(err, fmt.Sprintf("adding a cls_bpf filter (prio %d) to %s %s", prio, dev.Name, dir))
	}
	if !replace {
		u.add(func() { h.ns.DeleteFilter(dev.Ifindex, dir, prio, handle) })
	}
	owner.Kind, owner.ProgID, owner.Priority, owner.Handle, owner.MapPins = KindClassic, prog.ID(), prio, handle, res.MapPins
	if err := h.records.Put(owner); err != nil {
		return nil, fmt.Errorf("%w (the attach was undone)", err)
	}
	u.ok = true
	notes = append(notes, fmt.Sprintf("before/after are emulated by filter priorities (lower runs first); this filter has priority %d, handle %d", prio, handle))
	res.Mode, res.Device, res.Direction, res.Priority, res.Notes = KindClassic, dev.Name, dir.String(), prio, notes
	after, _ := h.ns.ClassicFilters(dev.Ifindex, dir)
	for i, f := range after {
		if f.Priority == prio {
			res.Position = i
		}
	}
	return res, nil
}

func (h *kernelHost) detachLegacy(req DetachRequest, dev kernel.Device, dir tcx.Direction) (*DetachResult, error) {
	filters, err := h.ns.ClassicFilters(dev.Ifindex, dir)
	if err != nil {
		return nil, explainCommon(err, "listing classic filters")
	}
	ref := req.Ref
	if ref.Kind == RefPin {
		obj, err := kernel.PinnedObject(ref.Path)
		if err != nil || obj.Kind != kernel.PinnedProg {
			return nil, fmt.Errorf("REF %s: with --legacy a pin must hold a program", ref)
		}
		ref = Ref{Kind: RefID, ID: obj.ID}
	}
	if ref.Kind == RefLink {
		return nil, fmt.Errorf("REF %s: classic filters have no links; name them by id:N or prio:N", ref)
	}
	i, ok := legacyTarget(filters, ref)
	if !ok {
		return nil, fmt.Errorf("ENOENT: %s is not a classic cls_bpf filter of %s %s (see `tcx show %s`) (%w)", req.Ref, dev.Name, dir, dev.Name, unix.ENOENT)
	}
	f := filters[i]
	if err := h.ns.DeleteFilter(dev.Ifindex, dir, f.Priority, f.Handle); err != nil {
		return nil, explainCommon(err, fmt.Sprintf("deleting cls_bpf filter prio %d", f.Priority))
	}
	recs, _ := h.records.All()
	if o := newIndex(recs).classicAt(h.inode, dev.Ifindex, dir.String(), f.Priority, f.ProgID); o != nil {
		h.records.Delete(o)
	}
	return &DetachResult{Mode: KindClassic, Device: dev.Name, Direction: dir.String(), ProgID: f.ProgID, Priority: f.Priority,
		Notes: []string{"legacy: deleted the cls_bpf filter; the clsact qdisc stays"}}, nil
}
