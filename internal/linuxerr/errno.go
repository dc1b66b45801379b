package linuxerr

import "syscall"

// Linux errno numbers as include/uapi/asm-generic/errno-base.h and errno.h
// define them (the numbering of x86, arm64, riscv, s390, powerpc and
// loongarch). Helpers return their negation to programs, and programs
// compare against these numbers whatever OS runs them; darwin's EBADMSG,
// for one, is 94, not 74. They are plain integers, not syscall.Errno, so
// that they cannot end up in a Go error by accident: Go callers get the
// host's errno through Host.
const (
	ENOENT          = 2
	E2BIG           = 7
	EAGAIN          = 11
	ENOMEM          = 12
	EACCES          = 13
	EFAULT          = 14
	EBUSY           = 16
	EEXIST          = 17
	ENODEV          = 19
	EINVAL          = 22
	ENOSPC          = 28
	ERANGE          = 34
	EDEADLK         = 35
	EPROTO          = 71
	EBADMSG         = 74
	EPROTONOSUPPORT = 93
	EOPNOTSUPP      = 95
	EAFNOSUPPORT    = 97
	EADDRINUSE      = 98
	ENETUNREACH     = 101
	EALREADY        = 114

	// ENOTSUPP is the kernel-internal 524 (include/linux/errno.h) some
	// helpers and bpf(2) commands leak to userspace; it is not EOPNOTSUPP
	// and no host defines it.
	ENOTSUPP = 524
)

// Host is the host's syscall.Errno with the same name as the Linux errno
// n, for turning a program-visible result into a Go API error that
// errors.Is(err, syscall.ENOENT) recognises on every OS. A number without
// a host counterpart (ENOTSUPP) is kept as it is.
func Host(n int) syscall.Errno {
	switch n {
	case ENOENT:
		return syscall.ENOENT
	case E2BIG:
		return syscall.E2BIG
	case EAGAIN:
		return syscall.EAGAIN
	case ENOMEM:
		return syscall.ENOMEM
	case EACCES:
		return syscall.EACCES
	case EBUSY:
		return syscall.EBUSY
	case EFAULT:
		return syscall.EFAULT
	case EEXIST:
		return syscall.EEXIST
	case ENODEV:
		return syscall.ENODEV
	case EINVAL:
		return syscall.EINVAL
	case ENOSPC:
		return syscall.ENOSPC
	case ERANGE:
		return syscall.ERANGE
	case EDEADLK:
		return syscall.EDEADLK
	case EPROTO:
		return syscall.EPROTO
	case EBADMSG:
		return syscall.EBADMSG
	case EOPNOTSUPP:
		return syscall.EOPNOTSUPP
	case EAFNOSUPPORT:
		return syscall.EAFNOSUPPORT
	case EALREADY:
		return syscall.EALREADY
	case EPROTONOSUPPORT:
		return syscall.EPROTONOSUPPORT
	case EADDRINUSE:
		return syscall.EADDRINUSE
	case ENETUNREACH:
		return syscall.ENETUNREACH
	}
	return syscall.Errno(n)
}
