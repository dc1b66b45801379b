package userspace

import (
	"fmt"
	"syscall"
)

// Errno values as the kernel returns them; errors wrap them so that
// errors.Is(err, unix.EXXX) holds. The two some systems lack,
// errBadFDState (EBADFD) and errNoLink (ENOLINK), are in the errors_*.go
// files, so the package builds everywhere.
const (
	errBadFD   = syscall.EBADF
	errInval   = syscall.EINVAL
	errNoDev   = syscall.ENODEV
	errNoEnt   = syscall.ENOENT
	errExist   = syscall.EEXIST
	errPerm    = syscall.EPERM
	errAgain   = syscall.EAGAIN
	errNotSupp = syscall.EOPNOTSUPP
	errNoSpace = syscall.ENOSPC
)

// opError is "op: cause" around an errno.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
