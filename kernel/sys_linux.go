package kernel

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpf(2) commands (enum bpf_cmd in include/uapi/linux/bpf.h).
const (
	cmdObjPin         = 6
	cmdObjGet         = 7
	cmdProgAttach     = 8
	cmdProgDetach     = 9
	cmdProgGetFDByID  = 13
	cmdObjGetInfoByFD = 15
	cmdProgQuery      = 16
	cmdLinkCreate     = 28
	cmdLinkUpdate     = 29
	cmdLinkGetFDByID  = 30
	cmdLinkDetach     = 34
)

// badFD is what a closed handle sends: no process can have fd 0xffffffff
// open, so the kernel itself fails the request with EBADF at the step where
// it resolves that fd.
const badFD = ^uint32(0)

// The attr structs below are the members of union bpf_attr used by tcx, field
// for field. The kernel zero-fills everything past the size we pass.

// progAttachAttr is the BPF_PROG_ATTACH / BPF_PROG_DETACH member.
type progAttachAttr struct {
	targetIfindex    uint32
	attachBPFFD      uint32
	attachType       uint32
	attachFlags      uint32
	replaceBPFFD     uint32
	relativeFDOrID   uint32
	expectedRevision uint64
}

// progQueryAttr is the BPF_PROG_QUERY member.
type progQueryAttr struct {
	targetIfindex   uint32
	attachType      uint32
	queryFlags      uint32
	attachFlags     uint32
	progIDs         pointer
	count           uint32
	_               uint32
	progAttachFlags pointer
	linkIDs         pointer
	linkAttachFlags pointer
	revision        uint64
}

// linkCreateAttr is the BPF_LINK_CREATE member with its tcx union arm.
type linkCreateAttr struct {
	progFD           uint32
	targetIfindex    uint32
	attachType       uint32
	flags            uint32
	relativeFDOrID   uint32
	_                uint32
	expectedRevision uint64
}

// linkUpdateAttr is the BPF_LINK_UPDATE member.
type linkUpdateAttr struct {
	linkFD    uint32
	newProgFD uint32
	flags     uint32
	oldProgFD uint32
}

// linkDetachAttr is the BPF_LINK_DETACH member.
type linkDetachAttr struct {
	linkFD uint32
}

// objAttr is the BPF_OBJ_PIN / BPF_OBJ_GET member.
type objAttr struct {
	pathname  pointer
	bpfFD     uint32
	fileFlags uint32
	pathFD    int32
	_         uint32
}

// infoAttr is the BPF_OBJ_GET_INFO_BY_FD member.
type infoAttr struct {
	bpfFD   uint32
	infoLen uint32
	info    pointer
}

// getIDAttr is the BPF_*_GET_FD_BY_ID member.
type getIDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
	_         uint32
}

// linkInfo is the head of struct bpf_link_info with its tcx union arm.
type linkInfo struct {
	typ        uint32
	id         uint32
	progID     uint32
	_          uint32
	ifindex    uint32
	attachType uint32
	_          [40]byte
}

// sysBPF issues bpf(cmd, attr, size) and returns the result (an fd for the
// commands that create one) or the raw errno.
func sysBPF[T any](cmd uintptr, attr *T) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// newFD makes sure a freshly returned fd is never 0: bpf(2) reads fd 0 in
// most fields as "no object", so a handle must not live there (only possible
// when the process closed its stdin).
func newFD(raw int) (int, error) {
	if raw != 0 {
		return raw, nil
	}
	dup, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 1)
	unix.Close(0)
	if err != nil {
		return -1, err
	}
	return dup, nil
}

// bytePtr is the address of a NUL-terminated copy of s.
func bytePtr(s string) (pointer, error) {
	b, err := unix.BytePtrFromString(s)
	if err != nil {
		return pointer{}, err
	}
	return pointer{p: unsafe.Pointer(b)}, nil
}

// slicePtr is the address of the first element of s, or NULL if s is empty.
func slicePtr(s []uint32) pointer {
	if len(s) == 0 {
		return pointer{}
	}
	return pointer{p: unsafe.Pointer(&s[0])}
}
