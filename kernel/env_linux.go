package kernel

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
)

// Ifindex is the ifindex of the named device (ENODEV if there is none).
func (ns *NetNS) Ifindex(name string) (int, error) {
	var ifindex int
	err := ns.Do(func() error {
		l, err := ns.nl.LinkByName(name)
		if err != nil {
			return linkErr(err)
		}
		ifindex = l.Attrs().Index
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("find device %s: %w", name, err)
	}
	return ifindex, nil
}

// linkErr turns netlink's "not found" into the kernel's ENODEV.
func linkErr(err error) error {
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return fmt.Errorf("%w (%v)", unix.ENODEV, err)
	}
	return err
}

// AddVethPair creates the veth pair a <-> b and brings both ends up.
func (ns *NetNS) AddVethPair(a, b string) (ia, ib int, err error) {
	err = ns.Do(func() error {
		if err := ns.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}); err != nil {
			return err
		}
		for _, name := range []string{a, b} {
			l, err := ns.nl.LinkByName(name)
			if err != nil {
				return linkErr(err)
			}
			if err := ns.nl.LinkSetUp(l); err != nil {
				return err
			}
			if name == a {
				ia = l.Attrs().Index
			} else {
				ib = l.Attrs().Index
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("add veth pair %s/%s: %w", a, b, err)
	}
	return ia, ib, nil
}

// DeleteDevice removes a device (deleting a veth end removes the pair).
func (ns *NetNS) DeleteDevice(ifindex int) error {
	err := ns.Do(func() error {
		return ns.nl.LinkDel(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}})
	})
	if err != nil {
		return fmt.Errorf("delete device %d: %w", ifindex, err)
	}
	return nil
}

func qdisc(ifindex int, kind string) netlink.Qdisc {
	return &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: ifindex,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_INGRESS, // == HANDLE_CLSACT
		},
		QdiscType: kind,
	}
}

// AddQdisc adds a QdiscClsact or QdiscIngress qdisc ("tc qdisc add dev X kind").
func (ns *NetNS) AddQdisc(ifindex int, kind string) error {
	if err := ns.Do(func() error { return ns.nl.QdiscAdd(qdisc(ifindex, kind)) }); err != nil {
		return fmt.Errorf("add %s qdisc: %w", kind, err)
	}
	return nil
}

// DeleteQdisc removes the qdisc again.
func (ns *NetNS) DeleteQdisc(ifindex int, kind string) error {
	if err := ns.Do(func() error { return ns.nl.QdiscDel(qdisc(ifindex, kind)) }); err != nil {
		return fmt.Errorf("delete %s qdisc: %w", kind, err)
	}
	return nil
}

// bpfFilter is a direct-action cls_bpf filter on the dir hook of the
// device's clsact or ingress qdisc. fd < 0 leaves the program out.
func bpfFilter(ifindex int, dir tcx.Direction, prio uint16, handle uint32, fd int, name string) *netlink.BpfFilter {
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if dir == tcx.Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    parent,
			Handle:    handle,
			Priority:  prio,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           fd,
		Name:         name,
		DirectAction: true,
	}
}

// AddFilter attaches prog as a classic direct-action cls_bpf filter
// ("tc filter add dev X ingress|egress prio P handle H bpf da"). With the old
// ingress qdisc, both directions name its only (ingress) filter block, as in
// the kernel.
func (ns *NetNS) AddFilter(ifindex int, dir tcx.Direction, prio uint16, handle uint32, prog *Program) error {
	// A closed program goes out as the invalid fd, so cls_bpf reports EBADF.
	f := bpfFilter(ifindex, dir, prio, handle, int(rawFD(prog.FD())), prog.Name())
	if err := ns.Do(func() error { return ns.nl.FilterAdd(f) }); err != nil {
		return fmt.Errorf("add cls_bpf filter: %w", err)
	}
	return nil
}

// DeleteFilter removes the filter with that priority and handle.
func (ns *NetNS) DeleteFilter(ifindex int, dir tcx.Direction, prio uint16, handle uint32) error {
	f := bpfFilter(ifindex, dir, prio, handle, -1, "")
	if err := ns.Do(func() error { return ns.nl.FilterDel(f) }); err != nil {
		return fmt.Errorf("delete cls_bpf filter: %w", err)
	}
	return nil
}

// AddVethPairTo creates the veth pair a <-> b with a in this namespace and
// b in peer (the kernel registers b first, in peer), and brings both ends
// up.
func (ns *NetNS) AddVethPairTo(a string, peer *NetNS, b string) (ia, ib int, err error) {
	err = ns.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b, PeerNamespace: netlink.NsFd(peer.FD())}
		if err := ns.nl.LinkAdd(v); err != nil {
			return err
		}
		l, err := ns.nl.LinkByName(a)
		if err != nil {
			return linkErr(err)
		}
		ia = l.Attrs().Index
		return ns.nl.LinkSetUp(l)
	})
	if err == nil {
		err = peer.Do(func() error {
			l, err := peer.nl.LinkByName(b)
			if err != nil {
				return linkErr(err)
			}
			ib = l.Attrs().Index
			return peer.nl.LinkSetUp(l)
		})
	}
	if err != nil {
		return 0, 0, fmt.Errorf("add veth pair %s/%s across namespaces: %w", a, b, err)
	}
	return ia, ib, nil
}

// SetHardwareAddr sets the MAC address of a device (ip link set address).
func (ns *NetNS) SetHardwareAddr(ifindex int, addr [6]byte) error {
	err := ns.Do(func() error {
		l, err := ns.nl.LinkByIndex(ifindex)
		if err != nil {
			return linkErr(err)
		}
		return ns.nl.LinkSetHardwareAddr(l, addr[:])
	})
	if err != nil {
		return fmt.Errorf("set address of device %d: %w", ifindex, err)
	}
	return nil
}

// DisableIPv6 turns IPv6 off for the devices of the namespace, present
// and future (net.ipv6.conf.{all,default}.disable_ipv6 = 1): no link-local
// addresses, so no neighbour discovery or MLD traffic of the kernel's own
// on them.
func (ns *NetNS) DisableIPv6() error {
	err := ns.Do(func() error {
		// /proc/sys/net belongs to the namespace of the task that opens it.
		for _, c := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+c+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("disable ipv6: %w", err)
	}
	return nil
}
