package userspace

import (
	"fmt"
	"syscall"
)

// Errno values as the kernel returns them; errors wrap them so that
// errors.Is(err, unix.EXXX) holds.
const (
	errBadFD   = syscall.EBADF
	errInval   = syscall.EINVAL
	errNoDev   = syscall.ENODEV
	errNoEnt   = syscall.ENOENT
	errExist   = syscall.EEXIST
	errNoLink  = syscall.ENOLINK
	errPerm    = syscall.EPERM
	errAgain   = syscall.EAGAIN
	errNotSupp = syscall.EOPNOTSUPP
)

// opError is "op: cause" around an errno.
func opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
