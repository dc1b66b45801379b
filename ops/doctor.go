package ops

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tcxgo/tcx"
)

// Report is what doctor found. Problems counts the findings of severity
// SevProblem; warnings do not make doctor fail.
type Report struct {
	Schema   string    `json:"schema"`
	NetNS    NetNS     `json:"netns"`
	Findings []Finding `json:"findings"`
	Problems int       `json:"problems"`
	Warnings int       `json:"warnings"`
}

// Finding is one thing doctor found, with what to do about it.
type Finding struct {
	Check     string   `json:"check"`
	Severity  string   `json:"severity"`
	Device    string   `json:"device,omitempty"`
	Direction string   `json:"direction,omitempty"`
	LinkID    uint32   `json:"link_id,omitempty"`
	ProgID    uint32   `json:"prog_id,omitempty"`
	Pins      []string `json:"pins,omitempty"`
	Holders   []Holder `json:"holders,omitempty"`
	Record    string   `json:"record,omitempty"`
	Message   string   `json:"message"`
	Fix       string   `json:"fix,omitempty"`
}

// Severities and checks of a Finding.
const (
	SevProblem = "problem"
	SevWarning = "warning"

	CheckDefunctLink  = "defunct-link"
	CheckDuplicate    = "duplicate-program"
	CheckTCXClassic   = "tcx-and-classic"
	CheckHookLimit    = "hook-limit"
	CheckStaleRecord  = "stale-record"
	CheckBadRecord    = "unreadable-record"
	CheckUnreadable   = "unreadable-hook"
	nearLimitFraction = 8 // warn within this many programs of tcx.MaxPrograms
)

// DefunctLink is a tcx link whose hook is gone (device deleted or link
// detached) but which pins or fds keep alive.
type DefunctLink struct {
	ID, ProgID uint32
	Direction  string
	Pins       []string
	Holders    []Holder
	Owner      *Owner
}

// diagnose runs doctor's checks over a snapshot of every device of a
// namespace, the defunct links found system-wide and the ownership records.
func diagnose(snap *Snapshot, defunct []DefunctLink, records *Records, recs []*Owner, badRecs []string) *Report {
	r := &Report{Schema: SchemaDoctor, NetNS: snap.NetNS, Findings: []Finding{}}
	add := func(f Finding) { r.Findings = append(r.Findings, f) }
	for _, d := range defunct {
		f := Finding{Check: CheckDefunctLink, Severity: SevProblem, LinkID: d.ID, ProgID: d.ProgID,
			Direction: d.Direction, Pins: d.Pins, Holders: d.Holders}
		keep := append(append([]string{}, d.Pins...), holderNames(d.Holders)...)
		f.Message = fmt.Sprintf("tcx link %d (program %d, %s) is defunct: its device is gone or it was detached, yet %s keep%s it (and its program) alive",
			d.ID, d.ProgID, d.Direction, strings.Join(keep, ", "), plural(len(keep) == 1))
		if d.Owner != nil {
			f.Device = d.Owner.Device
			f.Message += fmt.Sprintf("; tcx attached it to %s %s at %s", d.Owner.Device, d.Owner.Direction, d.Owner.Time.Format("2006-01-02 15:04:05Z"))
		}
		if len(d.Pins) > 0 {
			f.Fix = "rm " + strings.Join(d.Pins, " ")
		}
		add(f)
	}
	live := map[string]bool{} // attachments seen, by record key
	for _, dev := range snap.Devices {
		for _, dir := range []string{"ingress", "egress"} {
			h := dev.Hook(dir)
			count := map[uint32][]string{}
			for _, a := range h.TCX {
				what := fmt.Sprintf("tcx position %d", a.Position)
				if a.Link != nil {
					what += fmt.Sprintf(" (link %d)", a.Link.ID)
					live[(&Owner{Kind: KindLink, LinkID: a.Link.ID}).key()] = true
				} else {
					live[(&Owner{Kind: KindPlain, NetNS: snap.NetNS, Ifindex: dev.Ifindex, Direction: dir, ProgID: a.Program.ID}).key()] = true
				}
				count[a.Program.ID] = append(count[a.Program.ID], what)
			}
			for _, c := range h.Classic {
				live[(&Owner{Kind: KindClassic, NetNS: snap.NetNS, Ifindex: dev.Ifindex, Direction: dir, Priority: c.Priority}).key()+fmt.Sprint(c.Program.ID)] = true
				count[c.Program.ID] = append(count[c.Program.ID], fmt.Sprintf("cls_bpf prio %d handle %d", c.Priority, c.Handle))
			}
			ids := make([]uint32, 0, len(count))
			for id := range count {
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			for _, id := range ids {
				if w := count[id]; len(w) > 1 {
					add(Finding{Check: CheckDuplicate, Severity: SevProblem, Device: dev.Name, Direction: dir, ProgID: id,
						Message: fmt.Sprintf("program %d runs %d times on %s %s: %s", id, len(w), dev.Name, dir, strings.Join(w, ", ")),
						Fix:     "detach all but one of them (tcx detach " + dev.Name + " " + dir + " REF)"})
				}
			}
			if len(h.TCX) > 0 && len(h.Classic) > 0 {
				add(Finding{Check: CheckTCXClassic, Severity: SevWarning, Device: dev.Name, Direction: dir,
					Message: fmt.Sprintf("%s %s has %d tcx program(s) and %d classic cls_bpf filter(s): tcx runs first; the cls_bpf filters run only when every tcx program returns TCX_NEXT (TC_ACT_UNSPEC), and not at all once a tcx program returns a verdict",
						dev.Name, dir, len(h.TCX), len(h.Classic)),
					Fix: "move the cls_bpf programs to tcx (tcx attach ...) or make sure the tcx programs end with TCX_NEXT"})
			}
			switch n := len(h.TCX); {
			case n >= tcx.MaxPrograms:
				add(Finding{Check: CheckHookLimit, Severity: SevProblem, Device: dev.Name, Direction: dir,
					Message: fmt.Sprintf("%s %s holds %d tcx programs, the kernel's limit: every further attach fails with ERANGE", dev.Name, dir, n)})
			case n >= tcx.MaxPrograms-nearLimitFraction:
				add(Finding{Check: CheckHookLimit, Severity: SevWarning, Device: dev.Name, Direction: dir,
					Message: fmt.Sprintf("%s %s holds %d tcx programs, near the kernel's limit of %d", dev.Name, dir, n, tcx.MaxPrograms)})
			}
		}
	}
	for _, o := range recs {
		if o.NetNS.Inode != snap.NetNS.Inode {
			continue // another namespace's record
		}
		k := o.key()
		if o.Kind == KindClassic {
			k += fmt.Sprint(o.ProgID)
		}
		if live[k] {
			continue
		}
		what := fmt.Sprintf("program %d", o.ProgID)
		if o.Kind == KindLink {
			what = fmt.Sprintf("link %d (program %d)", o.LinkID, o.ProgID)
		}
		add(Finding{Check: CheckStaleRecord, Severity: SevProblem, Device: o.Device, Direction: o.Direction, LinkID: o.LinkID, ProgID: o.ProgID,
			Record:  o.key(),
			Message: fmt.Sprintf("ownership record of %s on %s %s (%s, %s) names an attachment that is gone", what, o.Device, o.Direction, o.Object, o.Time.Format("2006-01-02 15:04:05Z")),
			Fix:     "rm " + records.Path(o)})
	}
	for _, b := range badRecs {
		add(Finding{Check: CheckBadRecord, Severity: SevWarning, Message: "unreadable ownership record " + b})
	}
	for _, n := range snap.Notes {
		add(Finding{Check: CheckUnreadable, Severity: SevWarning, Message: n})
	}
	for _, f := range r.Findings {
		if f.Severity == SevProblem {
			r.Problems++
		} else {
			r.Warnings++
		}
	}
	return r
}

func holderNames(hs []Holder) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = fmt.Sprintf("%s[%d] fd %d", h.Comm, h.PID, h.FD)
	}
	return out
}

func plural(one bool) string {
	if one {
		return "s"
	}
	return ""
}
