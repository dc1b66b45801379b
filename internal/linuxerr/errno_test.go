package linuxerr_test

import (
	"syscall"
	"testing"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

// hostNames pairs every constant with the host errno of the same name.
var hostNames = []struct {
	name  string
	linux int
	host  syscall.Errno
}{
	{"ENOENT", linuxerr.ENOENT, syscall.ENOENT},
	{"E2BIG", linuxerr.E2BIG, syscall.E2BIG},
	{"EAGAIN", linuxerr.EAGAIN, syscall.EAGAIN},
	{"ENOMEM", linuxerr.ENOMEM, syscall.ENOMEM},
	{"EACCES", linuxerr.EACCES, syscall.EACCES},
	{"EFAULT", linuxerr.EFAULT, syscall.EFAULT},
	{"EEXIST", linuxerr.EEXIST, syscall.EEXIST},
	{"EINVAL", linuxerr.EINVAL, syscall.EINVAL},
	{"ENOSPC", linuxerr.ENOSPC, syscall.ENOSPC},
	{"ERANGE", linuxerr.ERANGE, syscall.ERANGE},
	{"EBADMSG", linuxerr.EBADMSG, syscall.EBADMSG},
	{"EOPNOTSUPP", linuxerr.EOPNOTSUPP, syscall.EOPNOTSUPP},
	{"EALREADY", linuxerr.EALREADY, syscall.EALREADY},
	{"EPROTONOSUPPORT", linuxerr.EPROTONOSUPPORT, syscall.EPROTONOSUPPORT},
	{"EADDRINUSE", linuxerr.EADDRINUSE, syscall.EADDRINUSE},
	{"ENETUNREACH", linuxerr.ENETUNREACH, syscall.ENETUNREACH},
}

func TestHost_SameName(t *testing.T) {
	for _, c := range hostNames {
		if got := linuxerr.Host(c.linux); got != c.host {
			t.Errorf("Host(%s=%d) = %d (%v), want the host's %s %d (%v)", c.name, c.linux, uintptr(got), got, c.name, uintptr(c.host), c.host)
		}
	}
}

func TestHost_ENOTSUPP(t *testing.T) {
	if got := linuxerr.Host(linuxerr.ENOTSUPP); got != syscall.Errno(524) {
		t.Errorf("Host(ENOTSUPP) = %d, want 524", uintptr(got))
	}
}
