package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ownNetNS is the process's own network namespace.
const ownNetNS = "/proc/self/ns/net"

// NetNSDir is where `ip netns add NAME` keeps named namespaces.
const NetNSDir = "/run/netns"

// OpenNetNS opens an existing network namespace without changing it: ""
// (or "host") is the caller's own, a name without a slash is NetNSDir/NAME
// (the ip-netns convention), anything else a path such as /proc/PID/ns/net.
// Nothing is created, brought up or deleted; Close only drops this
// process's reference.
func OpenNetNS(spec string) (*NetNS, error) {
	path, name := ResolveNetNS(spec)
	ns, err := startNetNS(name, func(ns *NetNS) error { return ns.join(path) })
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	return ns, nil
}

// ResolveNetNS is the path OpenNetNS opens for spec and the name it shows.
func ResolveNetNS(spec string) (path, name string) {
	switch {
	case spec == "" || spec == "host":
		return ownNetNS, "host"
	case !strings.Contains(spec, "/"):
		return filepath.Join(NetNSDir, spec), spec
	}
	return spec, spec
}

// join moves the current (locked) thread into the namespace at path.
func (ns *NetNS) join(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ns.fd = fd
	// The process's own namespace needs no setns (which would need
	// CAP_SYS_ADMIN even there): the thread is in it already.
	if path != ownNetNS {
		// setns refuses anything that is not a network namespace with EINVAL.
		if err := unix.Setns(fd, unix.CLONE_NEWNET); errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("setns: %w (not a network namespace)", err)
		} else if err != nil {
			return fmt.Errorf("setns: %w", err)
		}
	}
	if ns.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	return nil
}

// Name is how the namespace was opened ("host", a name or a path); empty
// for a fresh private namespace.
func (ns *NetNS) Name() string { return ns.name }

// Path is a path other processes (and OpenNetNS) can open the namespace by
// while it is open: the /proc entry of its thread.
func (ns *NetNS) Path() string {
	return fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), ns.tid)
}

// Inode is the namespace's inode number, which identifies it system-wide
// (what `ip netns identify` and `lsns` compare).
func (ns *NetNS) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(ns.FD(), &st); err != nil {
		return 0, fmt.Errorf("netns inode: %w", err)
	}
	return st.Ino, nil
}
