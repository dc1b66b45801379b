package kernel

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
)

// ClassicFilter is a cls_bpf filter on a clsact (or ingress) hook.
type ClassicFilter struct {
	Priority     uint16
	Handle       uint32
	ProgID       uint32
	Name         string // the name tc shows: the program's or the section's
	DirectAction bool
}

// ClassicQdisc is the kind of the device's ingress-side qdisc (QdiscClsact,
// QdiscIngress) or "" when it has none.
func (ns *NetNS) ClassicQdisc(ifindex int) (string, error) {
	var kind string
	err := ns.Do(func() error {
		l, err := ns.nl.LinkByIndex(ifindex)
		if err != nil {
			return linkErr(err)
		}
		qs, err := ns.nl.QdiscList(l)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if q.Attrs().Parent == netlink.HANDLE_INGRESS {
				kind = q.Type()
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("list qdiscs: %w", err)
	}
	return kind, nil
}

// ClassicFilters lists the cls_bpf filters of the dir hook in the order tc
// runs them (priority, then handle). A device without clsact has none.
func (ns *NetNS) ClassicFilters(ifindex int, dir tcx.Direction) ([]ClassicFilter, error) {
	kind, err := ns.ClassicQdisc(ifindex)
	if err != nil || kind == "" || (kind == QdiscIngress && dir == tcx.Egress) {
		return nil, err
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if dir == tcx.Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	var out []ClassicFilter
	err = ns.Do(func() error {
		l, err := ns.nl.LinkByIndex(ifindex)
		if err != nil {
			return linkErr(err)
		}
		fs, err := ns.nl.FilterList(l, parent)
		if err != nil {
			return err
		}
		for _, f := range fs {
			bf, ok := f.(*netlink.BpfFilter)
			if !ok {
				continue
			}
			a := bf.Attrs()
			out = append(out, ClassicFilter{Priority: a.Priority, Handle: a.Handle, ProgID: uint32(bf.Id), Name: bf.Name, DirectAction: bf.DirectAction})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list cls_bpf filters: %w", err)
	}
	return out, nil
}

// EnsureClsact adds a clsact qdisc unless the device has one, and says
// whether it did. A device with the old ingress qdisc cannot get one
// (EEXIST), as with tc.
func (ns *NetNS) EnsureClsact(ifindex int) (bool, error) {
	err := ns.AddQdisc(ifindex, QdiscClsact)
	if errors.Is(err, unix.EEXIST) {
		kind, qerr := ns.ClassicQdisc(ifindex)
		if qerr == nil && kind == QdiscClsact {
			return false, nil
		}
	}
	return err == nil, err
}

// ReplaceFilter puts prog in place of the filter with that priority and
// handle ("tc filter replace ... bpf da").
func (ns *NetNS) ReplaceFilter(ifindex int, dir tcx.Direction, prio uint16, handle uint32, prog *Program) error {
	f := bpfFilter(ifindex, dir, prio, handle, int(rawFD(prog.FD())), prog.Name())
	if err := ns.Do(func() error { return ns.nl.FilterReplace(f) }); err != nil {
		return fmt.Errorf("replace cls_bpf filter: %w", err)
	}
	return nil
}
