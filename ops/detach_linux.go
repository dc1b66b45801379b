package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
)

// explainAttach turns the kernel's answer to an attach into words.
func (h *kernelHost) explainAttach(err error, dev string, dir tcx.Direction, req AttachRequest) error {
	hook := dev + " " + dir.String()
	switch errnoOf(err) {
	case unix.ESTALE:
		rev := "?"
		if ifx, ierr := h.ns.Ifindex(dev); ierr == nil {
			if c, qerr := h.b.QueryHook(ifx, dir.AttachType()); qerr == nil {
				rev = fmt.Sprint(c.Revision)
			}
		}
		return explained(err, "%s is at revision %s, not %d: someone changed the hook since you looked; check `tcx show %s` and retry with --expected-revision %s",
			hook, rev, req.ExpectedRevision, dev, rev)
	case unix.ENOENT:
		if req.Place.Mode != "" {
			return explained(err, "%s is not attached to %s (see `tcx show %s`)", req.Place.Ref, hook, dev)
		}
	case unix.ERANGE:
		return explained(err, "%s already holds %d programs, the kernel's limit", hook, tcx.MaxPrograms)
	case unix.EEXIST:
		return explained(err, "this program is attached to %s already", hook)
	case unix.EBUSY:
		if req.Place.Mode == PlaceReplace {
			return explained(err, "%s is held by a link and cannot be replaced plainly; use `tcx link update PIN OBJ`", req.Place.Ref)
		}
	case unix.EINVAL:
		if req.Place.Mode == PlaceReplace {
			return explained(err, "the kernel refused to replace %s on %s", req.Place.Ref, hook)
		}
	}
	return explainCommon(err, "attaching to "+hook)
}

// entryFor finds the chain entry a REF names (head/tail: first/last).
func entryFor(chain kernel.Hook, ref Ref) (tcx.Entry, bool) {
	n := len(chain.Entries)
	for i, e := range chain.Entries {
		switch {
		case ref.Kind == RefHead && i == 0, ref.Kind == RefTail && i == n-1,
			ref.Kind == RefID && e.ProgramID == ref.ID, ref.Kind == RefLink && e.LinkID == ref.ID:
			return e, true
		}
	}
	return tcx.Entry{}, false
}

func (h *kernelHost) Detach(ctx context.Context, req DetachRequest) (*DetachResult, error) {
	dir, err := parseDirection(req.Direction)
	if err != nil {
		return nil, err
	}
	dev, err := h.device(req.Device)
	if err != nil {
		return nil, err
	}
	if err := h.probe([]kernel.Device{dev}); err != nil {
		return nil, err
	}
	if req.Legacy || req.Ref.Kind == RefPrio || h.noTCX {
		return h.detachLegacy(req, dev, dir)
	}
	ref, err := resolvePin(req.Ref)
	if err != nil {
		return nil, err
	}
	hook := dev.Name + " " + dir.String()
	chain, err := h.b.QueryHook(dev.Ifindex, dir.AttachType())
	if err != nil {
		return nil, explainCommon(err, "reading "+hook)
	}
	e, ok := entryFor(chain, ref)
	if !ok {
		hint := ""
		if filters, _ := h.ns.ClassicFilters(dev.Ifindex, dir); ref.Kind == RefID {
			for _, f := range filters {
				if f.ProgID == ref.ID {
					hint = fmt.Sprintf("; it is a classic cls_bpf filter (prio %d): add --legacy", f.Priority)
				}
			}
		}
		return nil, fmt.Errorf("ENOENT: %s is not attached to %s (see `tcx show %s`)%s (%w)", req.Ref, hook, dev.Name, hint, unix.ENOENT)
	}
	res := &DetachResult{Device: dev.Name, Direction: dir.String(), ProgID: e.ProgramID, LinkID: e.LinkID}
	recs, _ := h.records.All()
	ix := newIndex(recs)
	if ref.Kind == RefLink || (e.LinkID != 0 && (ref.Kind == RefHead || ref.Kind == RefTail)) {
		l, err := h.b.LinkByID(e.LinkID)
		if err != nil {
			return nil, explainCommon(err, fmt.Sprintf("opening link %d", e.LinkID))
		}
		defer l.Close()
		if err := l.Detach(); err != nil {
			return nil, explainCommon(err, fmt.Sprintf("detaching link %d", e.LinkID))
		}
		res.Mode = KindLink
		h.dropLinkPins(res, ix.links[e.LinkID])
		return res, nil
	}
	// A plain detach: the kernel is the judge of whether the program is
	// held by a link (EBUSY).
	prog, err := h.b.ProgramByID(e.ProgramID)
	if err != nil {
		return nil, explainCommon(err, fmt.Sprintf("opening program %d", e.ProgramID))
	}
	defer prog.Close()
	if err := h.b.Detach(dev.Ifindex, dir, prog, tcx.DetachOptions{}); err != nil {
		if errnoOf(err) == unix.EBUSY && e.LinkID != 0 {
			pins := h.scanPins().links[e.LinkID]
			where := "not pinned"
			if len(pins) > 0 {
				where = "pinned at " + strings.Join(pins, ", ")
			}
			return nil, explained(err, "program %d is held by link %d (%s); detach the link instead: tcx detach %s %s link:%d",
				e.ProgramID, e.LinkID, where, dev.Name, dir, e.LinkID)
		}
		return nil, explainCommon(err, "detaching program "+fmt.Sprint(e.ProgramID)+" from "+hook)
	}
	res.Mode = KindPlain
	if o := ix.plainAt(h.inode, dev.Ifindex, dir.String(), e.ProgramID); o != nil {
		h.records.Delete(o)
	}
	return res, nil
}

// dropLinkPins removes the pin tcx made for a link it detached and its
// record; pins others made stay (listed as kept: the link is defunct but
// alive until they go).
func (h *kernelHost) dropLinkPins(res *DetachResult, o *Owner) {
	pins := h.scanPins().links[res.LinkID]
	for _, p := range pins {
		if o != nil && p == o.Pin {
			if err := os.Remove(p); err == nil {
				res.RemovedPins = append(res.RemovedPins, p)
				continue
			}
		}
		res.KeptPins = append(res.KeptPins, p)
	}
	if len(res.KeptPins) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("link %d is detached (defunct) but still alive while pinned; remove the pins to free it: rm %s", res.LinkID, strings.Join(res.KeptPins, " ")))
	}
	if o != nil {
		h.records.Delete(o)
	}
}

// openPinnedLink opens the link pinned at path.
func (h *kernelHost) openPinnedLink(pin string) (*kernel.Link, kernel.LinkDesc, error) {
	abs, err := filepath.Abs(pin)
	if err != nil {
		return nil, kernel.LinkDesc{}, err
	}
	l, err := h.b.OpenPinnedLink(abs)
	if err != nil {
		return nil, kernel.LinkDesc{}, explainPin(abs, err)
	}
	link := l.(*kernel.Link)
	d, err := kernel.LinkInfoByID(link.ID())
	if err != nil {
		link.Close()
		return nil, kernel.LinkDesc{}, err
	}
	return link, d, nil
}

// deviceName names a link's device: a link knows only its ifindex, in a
// namespace it does not tell, so the name comes from tcx's record.
func deviceName(ifindex uint32, o *Owner) string {
	if o != nil && o.Ifindex == int(ifindex) {
		return o.Device
	}
	return fmt.Sprintf("ifindex %d", ifindex)
}

func (h *kernelHost) linkRecord(id uint32) *Owner {
	recs, _ := h.records.All()
	return newIndex(recs).links[id]
}

func (h *kernelHost) UpdateLink(ctx context.Context, req UpdateRequest) (*UpdateResult, error) {
	link, d, err := h.openPinnedLink(req.Pin)
	if err != nil {
		return nil, err
	}
	defer link.Close()
	spec, progName, err := loadObject(req.Object, req.Program)
	if err != nil {
		return nil, err
	}
	if err := h.setVariables(spec, req.Set); err != nil {
		return nil, err
	}
	owner, err := newOwner(KindLink, req.Object, progName, req.Command, "", time.Now())
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", req.Object, err)
	}
	var u undo
	defer u.finish()
	coll, loaded, err := h.load(spec, progName, &u)
	if err != nil {
		return nil, err
	}
	prog := coll.Programs[progName]
	old := h.linkRecord(d.ID)
	res := &UpdateResult{LinkID: d.ID, Device: deviceName(d.Ifindex, old), Direction: attachDir(d.AttachType),
		Old: h.program(d.ProgID, pinTable{}, holders{}), New: loaded.Program}
	if old != nil {
		owner.Label, owner.NetNS, owner.Pin = old.Label, old.NetNS, old.Pin
	} else {
		owner.NetNS, owner.Pin = h.netns(), req.Pin
	}
	owner.LinkID, owner.ProgID, owner.Device, owner.Ifindex, owner.Direction = d.ID, prog.ID(), res.Device, int(d.Ifindex), res.Direction
	owner.MapPins = loaded.MapPins
	// The record goes first: a kernel refusal is then undone by putting
	// the old record back, and the link never runs an unrecorded program.
	if err := h.records.Put(owner); err != nil {
		return nil, fmt.Errorf("%w (nothing was updated)", err)
	}
	u.add(func() {
		if old != nil {
			h.records.Put(old)
		} else {
			h.records.Delete(owner)
		}
	})
	if err := link.Update(prog, tcx.UpdateOptions{}); err != nil {
		if errnoOf(err) == unix.ENOLINK {
			return nil, explained(err, "link %d is defunct (its device is gone or it was detached); nothing would run the new program. Remove the pin: rm %s", d.ID, req.Pin)
		}
		return nil, explainCommon(err, fmt.Sprintf("updating link %d", d.ID))
	}
	u.ok = true
	return res, nil
}

func (h *kernelHost) DetachLink(ctx context.Context, pin string) (*DetachResult, error) {
	link, d, err := h.openPinnedLink(pin)
	if err != nil {
		return nil, err
	}
	defer link.Close()
	o := h.linkRecord(d.ID)
	res := &DetachResult{Mode: KindLink, LinkID: d.ID, ProgID: d.ProgID, Device: deviceName(d.Ifindex, o), Direction: attachDir(d.AttachType)}
	if d.Ifindex == 0 {
		res.Defunct = true
		if o != nil {
			res.Device = o.Device
		}
	} else if err := link.Detach(); err != nil {
		return nil, explainCommon(err, fmt.Sprintf("detaching link %d", d.ID))
	}
	abs, _ := filepath.Abs(pin)
	if err := os.Remove(abs); err != nil {
		return nil, explainCommon(err, "removing pin "+abs)
	}
	res.RemovedPins = []string{abs}
	res.KeptPins = h.scanPins().links[d.ID]
	if len(res.KeptPins) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("other pins keep the defunct link %d alive: %s", d.ID, strings.Join(res.KeptPins, " ")))
	}
	if o != nil {
		h.records.Delete(o)
	}
	return res, nil
}

// resolvePin turns a pin:PATH REF into the link:N or id:N of what the pin
// holds; other REFs are returned as they are.
func resolvePin(ref Ref) (Ref, error) {
	if ref.Kind != RefPin {
		return ref, nil
	}
	obj, err := kernel.PinnedObject(ref.Path)
	if err != nil {
		return Ref{}, explainPin(ref.Path, err)
	}
	switch obj.Kind {
	case kernel.PinnedLink:
		return Ref{Kind: RefLink, ID: obj.ID}, nil
	case kernel.PinnedProg:
		return Ref{Kind: RefID, ID: obj.ID}, nil
	}
	return Ref{}, fmt.Errorf("REF %s: the pin holds a map, not a program or link", ref)
}
