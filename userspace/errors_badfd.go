//go:build linux || windows || solaris

package userspace

import "syscall"

// errBadFDState is what bpf_obj_get_info_by_fd answers for an fd that is
// not open: EBADFD ("file descriptor in bad state"), not EBADF. Go's
// syscall package has it on these systems.
const errBadFDState = syscall.EBADFD
