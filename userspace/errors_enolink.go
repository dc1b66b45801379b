//go:build !openbsd

package userspace

import "syscall"

// errNoLink is ENOLINK, what a defunct link answers to an update.
const errNoLink = syscall.ENOLINK
