// MIPS Linux numbers its errnos its own way (EBADMSG is 77 there); the
// constants are the asm-generic ones every other Go port of Linux uses.

//go:build linux && !(mips || mipsle || mips64 || mips64le)

package linuxerr_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx/internal/linuxerr"
)

func TestConstants_MatchLinux(t *testing.T) {
	for _, c := range []struct {
		name  string
		got   int
		linux unix.Errno
	}{
		{"ENOENT", linuxerr.ENOENT, unix.ENOENT},
		{"E2BIG", linuxerr.E2BIG, unix.E2BIG},
		{"EAGAIN", linuxerr.EAGAIN, unix.EAGAIN},
		{"ENOMEM", linuxerr.ENOMEM, unix.ENOMEM},
		{"EACCES", linuxerr.EACCES, unix.EACCES},
		{"EFAULT", linuxerr.EFAULT, unix.EFAULT},
		{"EEXIST", linuxerr.EEXIST, unix.EEXIST},
		{"EINVAL", linuxerr.EINVAL, unix.EINVAL},
		{"ENOSPC", linuxerr.ENOSPC, unix.ENOSPC},
		{"ERANGE", linuxerr.ERANGE, unix.ERANGE},
		{"EBADMSG", linuxerr.EBADMSG, unix.EBADMSG},
		{"EOPNOTSUPP", linuxerr.EOPNOTSUPP, unix.EOPNOTSUPP},
		{"EALREADY", linuxerr.EALREADY, unix.EALREADY},
	} {
		if c.got != int(c.linux) {
			t.Errorf("%s = %d, Linux has %d", c.name, c.got, int(c.linux))
		}
		// On Linux the host is Linux: Host must be the identity.
		if h := linuxerr.Host(c.got); h != c.linux {
			t.Errorf("Host(%s) = %d, want %d", c.name, uintptr(h), uintptr(c.linux))
		}
	}
}
