package ops

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx/kernel"
)

// errnoOf is the errno somewhere in err's chain, 0 if none.
func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// explained puts words before err, naming its errno first when it has one
// ("EBUSY: program 42 is held by link 7 ...: <the raw error>"); err stays
// in the chain, so errors.Is(err, unix.EBUSY) still holds.
func explained(err error, format string, args ...any) error {
	words := fmt.Sprintf(format, args...)
	if e := errnoOf(err); e != 0 {
		words = unix.ErrnoName(e) + ": " + words
	}
	return fmt.Errorf("%s (%w)", words, err)
}

// explainCommon covers the errnos every change can meet.
func explainCommon(err error, op string) error {
	switch errnoOf(err) {
	case unix.EPERM, unix.EACCES:
		if unix.Geteuid() != 0 {
			return explained(err, "%s needs root (CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN); run tcx as root, e.g. with sudo", op)
		}
		return explained(err, "%s was refused although tcx runs as root: a security module (lockdown, SELinux, AppArmor) or a read-only bpffs may forbid it", op)
	case unix.ENOMEM:
		return explained(err, "%s: the kernel is out of memory for BPF (or RLIMIT_MEMLOCK on kernels before 5.11)", op)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func explainNetNS(spec string, err error) error {
	path, name := resolveNetNSName(spec)
	switch errnoOf(err) {
	case unix.ENOENT:
		return explained(err, "unknown network namespace %q: %s does not exist (list them with `ip netns list`, or give /proc/PID/ns/net)", name, path)
	case unix.EINVAL:
		return explained(err, "%s is not a network namespace", path)
	case unix.EPERM, unix.EACCES:
		return explainCommon(err, "entering network namespace "+name)
	}
	return fmt.Errorf("open network namespace %s: %w", name, err)
}

func explainBPFFS(dir string, err error) error {
	switch errnoOf(err) {
	case unix.ENOENT, unix.EMEDIUMTYPE, unix.ENOTDIR:
		return explained(err, "bpffs is not mounted at %s, so nothing can be pinned there; mount it with `mount -t bpf bpf %s` (or pick another with --bpffs)", dir, dir)
	}
	return explainCommon(err, "checking bpffs "+dir)
}

func resolveNetNSName(spec string) (path, name string) { return kernel.ResolveNetNS(spec) }
