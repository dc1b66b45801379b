package userspace

import "syscall"

// errNoLink stands for Linux's ENOLINK (a defunct link), which OpenBSD does
// not have; ENXIO ("device not configured") is its nearest meaning there.
const errNoLink = syscall.ENXIO
