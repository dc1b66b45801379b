package kernel

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetNS is a network namespace: a private fresh one with its loopback
// device up (NewNetNS, for tests), or an existing one opened as it is
// (OpenNetNS: the caller's own, a named one, a path). One goroutine, locked to an OS thread that lives in the namespace and never
// leaves it, runs every request that depends on the caller's namespace
// (bpf(2) calls naming a device by ifindex, socket creation, netlink), so
// they are also serialised.
type NetNS struct {
	mu     sync.RWMutex // held for reading by Do, for writing by Close
	closed bool
	reqs   chan func()
	done   chan struct{}

	fd   int             // keeps the namespace alive; for other tools (setns)
	nl   *netlink.Handle // rtnetlink bound to the namespace
	tid  int             // the namespace's thread, for Path
	name string          // how the namespace was named when opened
}

// NewNetNS creates a fresh network namespace with lo up.
func NewNetNS() (*NetNS, error) {
	ns, err := startNetNS("", (*NetNS).enter)
	if err != nil {
		return nil, fmt.Errorf("create netns: %w", err)
	}
	return ns, nil
}

// startNetNS starts the namespace's thread, which runs enter first.
func startNetNS(name string, enter func(*NetNS) error) (*NetNS, error) {
	ns := &NetNS{reqs: make(chan func()), done: make(chan struct{}), fd: -1, name: name}
	started := make(chan error)
	go ns.serve(started, enter)
	if err := <-started; err != nil {
		return nil, err
	}
	return ns, nil
}

// serve is the namespace's thread. It never calls UnlockOSThread: when it
// returns, the runtime terminates the thread instead of handing a thread in
// a foreign namespace to other goroutines.
func (ns *NetNS) serve(started chan<- error, enter func(*NetNS) error) {
	defer close(ns.done)
	runtime.LockOSThread()
	ns.tid = unix.Gettid()
	if err := enter(ns); err != nil {
		ns.release()
		started <- err
		return
	}
	started <- nil
	for f := range ns.reqs {
		f()
	}
}

// enter moves the current (locked) thread into a new namespace and sets it up.
func (ns *NetNS) enter() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	ns.fd = fd
	// Sockets belong to the namespace of the thread that creates them, so
	// this handle talks to our namespace from whichever goroutine uses it.
	if ns.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	lo, err := ns.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := ns.nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

func (ns *NetNS) release() error {
	if ns.nl != nil {
		ns.nl.Close()
		ns.nl = nil
	}
	if ns.fd < 0 {
		return nil
	}
	err := unix.Close(ns.fd)
	ns.fd = -1
	return err
}

// Do runs f on the namespace's thread and returns its error; a panic in f
// is re-raised in the caller. f must not start goroutines that expect to be
// in the namespace, and must not call Do or Close.
func (ns *NetNS) Do(f func() error) error {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if ns.closed {
		return fmt.Errorf("netns: %w (closed)", unix.EBADF)
	}
	var (
		errc     = make(chan error, 1)
		panicked any
	)
	ns.reqs <- func() {
		defer func() {
			if r := recover(); r != nil {
				panicked = r
				errc <- nil
			}
		}()
		errc <- f()
	}
	err := <-errc
	if panicked != nil {
		panic(panicked)
	}
	return err
}

// FD is an fd of the namespace (for setns(2)), -1 once closed.
func (ns *NetNS) FD() int {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.fd
}

// Close stops the namespace's thread and drops this process's references;
// the kernel removes the namespace once no socket or device pins it.
// Closing twice fails with EBADF.
func (ns *NetNS) Close() error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return fmt.Errorf("close netns: %w", unix.EBADF)
	}
	ns.closed = true
	close(ns.reqs)
	<-ns.done
	if err := ns.release(); err != nil {
		return fmt.Errorf("close netns: %w", err)
	}
	return nil
}
