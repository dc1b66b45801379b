//go:build !linux && !windows && !solaris

package userspace

import "syscall"

// errBadFDState stands for Linux's EBADFD, which this system does not
// have. EBADF is its nearest errno (the handle is no open descriptor);
// Linux's number (77) would mean something else here (ENOLCK on the BSDs
// and macOS).
const errBadFDState = syscall.EBADF
