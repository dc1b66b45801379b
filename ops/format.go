package ops

import (
	"fmt"
	"io"
	"strings"
	"time"
)

const timeLayout = "2006-01-02 15:04:05Z"

func when(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format(timeLayout)
}

// WriteSnapshot prints a snapshot for people: per device, each hook's tcx
// chain in run order, then its classic filters, XDP and netkit chains.
func WriteSnapshot(w io.Writer, s *Snapshot) {
	fmt.Fprintf(w, "netns %s (inode %d)\n", s.NetNS.Name, s.NetNS.Inode)
	for _, d := range s.Devices {
		fmt.Fprintf(w, "\n%s (ifindex %d, %s)", d.Name, d.Ifindex, d.Kind)
		if empty(d) {
			fmt.Fprintln(w, ": no BPF programs")
			continue
		}
		fmt.Fprintln(w)
		for _, dir := range []string{"ingress", "egress"} {
			h := d.Hook(dir)
			if len(h.TCX) == 0 {
				fmt.Fprintf(w, "  %-7s tcx: none (revision %d)\n", dir, h.Revision)
			} else {
				fmt.Fprintf(w, "  %-7s tcx revision %d, %d program(s) in run order:\n", dir, h.Revision, len(h.TCX))
				writeAttachments(w, h.TCX)
			}
			if len(h.Classic) > 0 {
				fmt.Fprintf(w, "  %-7s classic cls_bpf on %s, after tcx (only when tcx returns TCX_NEXT):\n", dir, h.Qdisc)
				for _, c := range h.Classic {
					da := ""
					if c.DirectAction {
						da = " direct-action"
					}
					fmt.Fprintf(w, "    prio %d handle %d: %s%s\n", c.Priority, c.Handle, progLine(c.Program), da)
					writeOwner(w, "      ", c.Owner, c.Foreign)
				}
			}
		}
		if d.XDP != nil {
			fmt.Fprintf(w, "  xdp     %s (%s)\n", progLine(d.XDP.Program), d.XDP.Mode)
		}
		if d.Netkit != nil {
			fmt.Fprintf(w, "  netkit primary revision %d:\n", d.Netkit.Primary.Revision)
			writeAttachments(w, d.Netkit.Primary.Programs)
			fmt.Fprintf(w, "  netkit peer revision %d:\n", d.Netkit.Peer.Revision)
			writeAttachments(w, d.Netkit.Peer.Programs)
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
}

func empty(d Device) bool {
	return len(d.Ingress.TCX) == 0 && len(d.Egress.TCX) == 0 && len(d.Ingress.Classic) == 0 &&
		len(d.Egress.Classic) == 0 && d.XDP == nil && d.Netkit == nil
}

func progLine(p Program) string {
	return fmt.Sprintf("prog %d %s (%s, tag %s, loaded %s)", p.ID, p.Name, p.Type, p.Tag, when(p.LoadedAt))
}

func writeAttachments(w io.Writer, as []Attachment) {
	for _, a := range as {
		fmt.Fprintf(w, "    %2d  %s\n", a.Position, progLine(a.Program))
		if a.Link == nil {
			fmt.Fprintf(w, "        plain attachment (no link)\n")
		} else {
			pins := "not pinned"
			if len(a.Link.Pins) > 0 {
				pins = "pinned at " + strings.Join(a.Link.Pins, ", ")
			}
			fmt.Fprintf(w, "        link %d, %s\n", a.Link.ID, pins)
			if len(a.Link.Holders) > 0 {
				fmt.Fprintf(w, "        held open by %s\n", strings.Join(holderNames(a.Link.Holders), ", "))
			}
		}
		writeOwner(w, "        ", a.Owner, a.Foreign)
	}
}

func writeOwner(w io.Writer, indent string, o *Owner, foreign bool) {
	if o == nil {
		if foreign {
			fmt.Fprintf(w, "%sforeign: not attached by tcx (no ownership record)\n", indent)
		}
		return
	}
	label := ""
	if o.Label != "" {
		label = fmt.Sprintf(", label %q", o.Label)
	}
	fmt.Fprintf(w, "%sattached by %s (pid %d) at %s%s\n", indent, o.User, o.PID, when(o.Time), label)
	fmt.Fprintf(w, "%sfrom %s (sha256 %.12s…), program %s\n", indent, o.Object, o.SHA256, o.Program)
	fmt.Fprintf(w, "%scommand: %s\n", indent, shortCommand(o.Command))
}

// WriteAttach prints what an attach did.
func WriteAttach(w io.Writer, r *AttachResult) {
	switch r.Mode {
	case KindLink:
		fmt.Fprintf(w, "attached %s to %s %s at position %d (revision %d) with tcx link %d\n",
			progShort(r.Program), r.Device, r.Direction, r.Position, r.Revision, r.LinkID)
		fmt.Fprintf(w, "pinned link at %s: it stays attached after tcx exits; `tcx link detach %s` removes it\n", r.Pin, r.Pin)
	case KindPlain:
		fmt.Fprintf(w, "attached %s to %s %s at position %d (revision %d) without a link\n",
			progShort(r.Program), r.Device, r.Direction, r.Position, r.Revision)
	case KindClassic:
		fmt.Fprintf(w, "attached %s to %s %s as classic cls_bpf filter prio %d (position %d among classic filters)\n",
			progShort(r.Program), r.Device, r.Direction, r.Priority, r.Position)
	}
	for _, p := range r.MapPins {
		fmt.Fprintf(w, "pinned map %s\n", p)
	}
	for _, p := range r.MapReused {
		fmt.Fprintf(w, "reused pinned map %s\n", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func progShort(p Program) string {
	return fmt.Sprintf("program %s (id %d, tag %s)", p.Name, p.ID, p.Tag)
}

// WriteDetach prints what a detach did.
func WriteDetach(w io.Writer, r *DetachResult) {
	switch r.Mode {
	case KindLink:
		if r.Defunct {
			fmt.Fprintf(w, "tcx link %d (program %d, %s %s) was defunct already: its device is gone or it was detached\n", r.LinkID, r.ProgID, r.Device, r.Direction)
			break
		}
		fmt.Fprintf(w, "detached tcx link %d (program %d) from %s %s\n", r.LinkID, r.ProgID, r.Device, r.Direction)
	case KindPlain:
		fmt.Fprintf(w, "detached program %d from %s %s\n", r.ProgID, r.Device, r.Direction)
	case KindClassic:
		fmt.Fprintf(w, "deleted classic cls_bpf filter prio %d (program %d) from %s %s\n", r.Priority, r.ProgID, r.Device, r.Direction)
	}
	for _, p := range r.RemovedPins {
		fmt.Fprintf(w, "removed pin %s\n", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// WriteUpdate prints what a link update did.
func WriteUpdate(w io.Writer, r *UpdateResult) {
	fmt.Fprintf(w, "tcx link %d on %s %s now runs %s (was %s)\n", r.LinkID, r.Device, r.Direction, progShort(r.New), progShort(r.Old))
}

// WriteReport prints doctor's findings, problems first.
func WriteReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "netns %s (inode %d): %d problem(s), %d warning(s)\n", r.NetNS.Name, r.NetNS.Inode, r.Problems, r.Warnings)
	for _, sev := range []string{SevProblem, SevWarning} {
		for _, f := range r.Findings {
			if f.Severity != sev {
				continue
			}
			fmt.Fprintf(w, "\n%s [%s] %s\n", f.Severity, f.Check, f.Message)
			if f.Fix != "" {
				fmt.Fprintf(w, "  fix: %s\n", f.Fix)
			}
		}
	}
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "no problems found")
	}
}
