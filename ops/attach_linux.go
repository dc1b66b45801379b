package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
	"github.com/tcxgo/tcx/kernel"
)

func parseDirection(s string) (tcx.Direction, error) {
	switch s {
	case "ingress":
		return tcx.Ingress, nil
	case "egress":
		return tcx.Egress, nil
	}
	return 0, fmt.Errorf("hook %q: want ingress or egress", s)
}

// undo collects the steps that revert a change made so far and the
// handles to close at the end. finish reverts (in reverse) unless the
// request succeeded, so a failed request leaves nothing behind, then
// closes.
type undo struct {
	revert, close []func()
	ok            bool
}

func (u *undo) add(f func())    { u.revert = append(u.revert, f) }
func (u *undo) closer(f func()) { u.close = append(u.close, f) }
func (u *undo) finish() {
	if !u.ok {
		for i := len(u.revert) - 1; i >= 0; i-- {
			u.revert[i]()
		}
	}
	for i := len(u.close) - 1; i >= 0; i-- {
		u.close[i]()
	}
}

// mkdirAll is os.MkdirAll that remembers the directories it created.
func mkdirAll(dir string, u *undo) error {
	var missing []string
	for d := dir; !exists(d); d = filepath.Dir(d) {
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			return err
		}
		d := missing[i]
		u.add(func() { os.Remove(d) })
	}
	return nil
}

// checkBPFFS fails unless the nearest existing ancestor of path is in a
// mounted bpffs (pins cannot live anywhere else).
func checkBPFFS(path string) error {
	d := path
	for !exists(d) && d != filepath.Dir(d) {
		d = filepath.Dir(d)
	}
	if err := kernel.IsBPFFS(d); err != nil {
		return explainBPFFS(d, err)
	}
	return nil
}

// anchor turns a placement into a tcx anchor; u closes the handles it
// opened once the request is done.
func (h *kernelHost) anchor(p Placement, u *undo) (tcx.Anchor, error) {
	if p.Mode == "" || p.Ref.Kind == RefTail {
		return tcx.Tail(), nil
	}
	if p.Ref.Kind == RefHead {
		return tcx.Head(), nil
	}
	if p.Ref.Kind == RefPrio {
		return nil, fmt.Errorf("REF %s names a classic cls_bpf filter; use --legacy to attach among classic filters", p.Ref)
	}
	ref, err := resolvePin(p.Ref)
	if err != nil {
		return nil, err
	}
	before := p.Mode == PlaceBefore
	switch {
	case p.Mode == PlaceReplace && ref.Kind == RefID:
		prog, err := h.b.ProgramByID(ref.ID)
		if err != nil {
			return nil, explained(err, "REF %s: there is no program %d", p.Ref, ref.ID)
		}
		u.closer(func() { prog.Close() })
		return tcx.ReplaceProgram(prog), nil
	case p.Mode == PlaceReplace:
		return nil, fmt.Errorf("--replace %s: only a plain attachment (id:N) can be replaced; to swap a link's program use `tcx link update PIN OBJ`", p.Ref)
	case ref.Kind == RefID && before:
		return tcx.BeforeProgramByID(ref.ID), nil
	case ref.Kind == RefID:
		return tcx.AfterProgramByID(ref.ID), nil
	case before:
		return tcx.BeforeLinkByID(ref.ID), nil
	}
	return tcx.AfterLinkByID(ref.ID), nil
}

func explainPin(path string, err error) error {
	switch errnoOf(err) {
	case unix.ENOENT:
		return explained(err, "nothing is pinned at %s", path)
	case unix.EINVAL:
		return explained(err, "%s is not a pinned BPF link", path)
	}
	return explainCommon(err, "opening pin "+path)
}

func (h *kernelHost) Attach(ctx context.Context, req AttachRequest) (*AttachResult, error) {
	dir, err := parseDirection(req.Direction)
	if err != nil {
		return nil, err
	}
	if req.Plain && req.Pin != "" {
		return nil, errors.New("--pin pins a link, and --plain attaches without one; give one of them")
	}
	if req.Place.Mode == PlaceReplace && !req.Plain && !req.Legacy {
		return nil, fmt.Errorf("--replace %s replaces a plain attachment, so it needs --plain; to swap the program of a link use `tcx link update PIN OBJ`", req.Place.Ref)
	}
	dev, err := h.device(req.Device)
	if err != nil {
		return nil, err
	}
	spec, progName, err := loadObject(req.Object, req.Program)
	if err != nil {
		return nil, err
	}
	if err := h.setVariables(spec, req.Set); err != nil {
		return nil, err
	}
	owner, err := newOwner(KindLink, req.Object, progName, req.Command, req.Label, time.Now())
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", req.Object, err)
	}
	owner.NetNS, owner.Device, owner.Ifindex, owner.Direction = h.netns(), dev.Name, dev.Ifindex, dir.String()
	if err := h.records.Writable(); err != nil {
		return nil, err
	}
	var notes []string
	legacy := req.Legacy
	if !legacy {
		if _, err := h.b.QueryHook(dev.Ifindex, dir.AttachType()); errnoOf(err) == unix.EINVAL {
			legacy = true
			notes = append(notes, "this kernel has no tcx (BPF_PROG_QUERY of the tcx hook: EINVAL); falling back to clsact + cls_bpf")
		}
	} else {
		notes = append(notes, "--legacy: classic clsact + cls_bpf (direct-action) instead of tcx")
	}
	if legacy {
		return h.attachLegacy(req, dev, dir, spec, progName, owner, notes)
	}

	var u undo
	defer u.finish()
	if !req.Plain {
		check := LinkDir(h.cfg.BPFFS)
		if req.Pin != "" {
			check = req.Pin
		}
		if err := checkBPFFS(check); err != nil {
			return nil, err
		}
		if req.Pin != "" && exists(req.Pin) {
			return nil, fmt.Errorf("EEXIST: --pin %s: something is pinned there already (%w)", req.Pin, unix.EEXIST)
		}
	}
	at, err := h.anchor(req.Place, &u)
	if err != nil {
		return nil, err
	}
	coll, res, err := h.load(spec, progName, &u)
	if err != nil {
		return nil, err
	}
	prog := coll.Programs[progName]
	res.Device, res.Direction, res.Notes = dev.Name, dir.String(), notes
	if req.Plain {
		owner.Kind = KindPlain
		if err := tcx.AttachProgram(h.b, dev.Ifindex, dir, prog, at, req.ExpectedRevision); err != nil {
			return nil, h.explainAttach(err, dev.Name, dir, req)
		}
		u.add(func() { h.b.Detach(dev.Ifindex, dir, prog, tcx.DetachOptions{}) })
		res.Mode = KindPlain
		res.Notes = append(res.Notes, fmt.Sprintf("attached without a link: program %d stays on %s %s until `tcx detach %s %s id:%d`", prog.ID(), dev.Name, dir, dev.Name, dir, prog.ID()))
	} else {
		l, err := tcx.AttachLink(h.b, dev.Ifindex, dir, prog, at, req.ExpectedRevision)
		if err != nil {
			return nil, h.explainAttach(err, dev.Name, dir, req)
		}
		link := l.(*kernel.Link)
		// Closing the last fd of an unpinned link detaches it: the undo.
		u.closer(func() { link.Close() })
		pin := req.Pin
		if pin == "" {
			pin = filepath.Join(LinkDir(h.cfg.BPFFS), h.nsKey(), fmt.Sprintf("%s-%s-%s-%d", dev.Name, dir, progName, link.ID()))
		}
		if err := mkdirAll(filepath.Dir(pin), &u); err != nil {
			return nil, explainCommon(err, "creating pin directory "+filepath.Dir(pin))
		}
		if err := link.Pin(pin); err != nil {
			return nil, explainCommon(err, "pinning link at "+pin)
		}
		u.add(func() { link.Unpin() })
		res.Mode, res.LinkID, res.Pin = KindLink, link.ID(), pin
		owner.LinkID, owner.Pin = link.ID(), pin
	}
	owner.ProgID, owner.MapPins = prog.ID(), res.MapPins
	if err := h.records.Put(owner); err != nil {
		return nil, fmt.Errorf("%w (the attach was undone)", err)
	}
	u.ok = true
	if chain, err := h.b.QueryHook(dev.Ifindex, dir.AttachType()); err == nil {
		res.Revision = chain.Revision
		for i, e := range chain.Entries {
			if e.ProgramID == prog.ID() {
				res.Position = i
			}
		}
	}
	return res, nil
}

// load loads the object with its pinned-by-name maps; the undo closes it
// and removes map pins it created.
func (h *kernelHost) load(spec *ebpf.CollectionSpec, progName string, u *undo) (*kernel.Collection, *AttachResult, error) {
	res := &AttachResult{}
	pinDir := ""
	if maps := pinnedMaps(spec); len(maps) > 0 {
		pinDir = h.cfg.MapPinDir
		if err := checkBPFFS(pinDir); err != nil {
			return nil, nil, fmt.Errorf("maps %s are pinned by name: %w", strings.Join(maps, ", "), err)
		}
		if err := mkdirAll(pinDir, u); err != nil {
			return nil, nil, explainCommon(err, "creating map pin directory "+pinDir)
		}
	}
	coll, err := h.b.LoadCollection(spec, kernel.LoadOptions{PinPath: pinDir})
	if err != nil {
		return nil, nil, explainLoad(err, progName)
	}
	u.add(func() { coll.RemoveNewPins() })
	// The collection's fds go in any case: attachments and pins hold on
	// to what they need.
	u.closer(func() { coll.Close() })
	res.MapPins = append(res.MapPins, coll.NewPins...)
	for _, m := range pinnedMaps(spec) {
		if p := filepath.Join(pinDir, m); !contains(coll.NewPins, p) {
			res.MapReused = append(res.MapReused, p)
		}
	}
	res.Program = h.program(coll.Programs[progName].ID(), pinTable{}, holders{})
	return coll, res, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func explainLoad(err error, prog string) error {
	switch errnoOf(err) {
	case unix.EPERM, unix.EACCES:
		if unix.Geteuid() != 0 {
			return explainCommon(err, "loading BPF programs")
		}
		return explained(err, "the kernel refused program %s (verifier or permissions); its log is above the errno", prog)
	case unix.EINVAL:
		return explained(err, "the kernel refused program %s as invalid (the verifier's log follows)", prog)
	}
	return explainCommon(err, "loading program "+prog)
}
