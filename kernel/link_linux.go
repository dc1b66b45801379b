package kernel

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
)

// fdHandle is an owned fd. Close swaps in -1, which later requests send as
// badFD, so the kernel reports EBADF for a closed handle.
type fdHandle struct{ raw atomic.Int64 }

func (f *fdHandle) load() int { return int(f.raw.Load()) }

func (f *fdHandle) close() error {
	fd := f.raw.Swap(-1)
	if fd < 0 {
		return unix.EBADF
	}
	return unix.Close(int(fd))
}

// Link is a tcx link handle: one link fd.
type Link struct {
	fd     fdHandle
	id     uint32
	pinDir string

	mu     sync.Mutex
	pinned string // path of the last Pin, or the path it was opened from
}

var _ tcx.Link = (*Link)(nil)

// newLink takes ownership of fd, a link fd fresh from the kernel, and checks
// that it is a tcx link.
func newLink(fd int, pinDir, pinned string) (*Link, error) {
	fd, err := newFD(fd)
	if err != nil {
		return nil, err
	}
	l := &Link{pinDir: pinDir, pinned: pinned}
	l.fd.raw.Store(int64(fd))
	if pinned != "" {
		// BPF_OBJ_GET opens any pinned object; only a link's fd reads as
		// link info.
		target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil || target != "anon_inode:bpf-link" {
			l.fd.close()
			return nil, fmt.Errorf("%w (pinned object is not a link)", unix.EINVAL)
		}
	}
	info, err := l.info()
	if err == nil && info.typ != tcx.LinkTypeTCX {
		err = fmt.Errorf("%w (link type %d is not tcx)", unix.EINVAL, info.typ)
	}
	if err != nil {
		l.fd.close()
		return nil, err
	}
	l.id = info.id
	return l, nil
}

// ID is the kernel's link ID.
func (l *Link) ID() uint32 { return l.id }

// FD is the link's file descriptor, -1 once closed.
func (l *Link) FD() int { return l.fd.load() }

func (l *Link) String() string { return fmt.Sprintf("tcx link %d", l.id) }

func (l *Link) info() (linkInfo, error) {
	var info linkInfo
	attr := infoAttr{bpfFD: rawFD(l.fd.load()), infoLen: uint32(unsafe.Sizeof(info)), info: pointer{p: unsafe.Pointer(&info)}}
	_, err := sysBPF(cmdObjGetInfoByFD, &attr)
	return info, err
}

// Info is BPF_OBJ_GET_INFO_BY_FD; Ifindex is 0 once the link is defunct.
func (l *Link) Info() (tcx.LinkInfo, error) {
	info, err := l.info()
	if err != nil {
		return tcx.LinkInfo{}, fmt.Errorf("tcx link info: %w", err)
	}
	return tcx.LinkInfo{ID: info.id, ProgramID: info.progID, Ifindex: info.ifindex, AttachType: info.attachType}, nil
}

// Update is BPF_LINK_UPDATE: new_prog_fd = prog, flags verbatim,
// old_prog_fd = opts.Old (nil: 0). The link names its device itself, so this
// needs no namespace.
func (l *Link) Update(prog tcx.Program, opts tcx.UpdateOptions) error {
	attr := linkUpdateAttr{
		linkFD:    rawFD(l.fd.load()),
		newProgFD: objFD(prog),
		flags:     uint32(opts.Flags),
		oldProgFD: objFD(opts.Old),
	}
	if _, err := sysBPF(cmdLinkUpdate, &attr); err != nil {
		return fmt.Errorf("update tcx link: %w", err)
	}
	return nil
}

// Detach is BPF_LINK_DETACH: the link stays open but defunct.
func (l *Link) Detach() error {
	attr := linkDetachAttr{linkFD: rawFD(l.fd.load())}
	if _, err := sysBPF(cmdLinkDetach, &attr); err != nil {
		return fmt.Errorf("detach tcx link: %w", err)
	}
	return nil
}

// Pin is BPF_OBJ_PIN; a relative path is resolved in the backend's bpffs.
// As in cilium/ebpf, pinning again moves the handle's pin (the new pin is
// made before the old one goes) and pinning to its current path is a no-op.
func (l *Link) Pin(path string) error {
	path = pinPath(l.pinDir, path)
	name, err := bytePtr(path)
	if err != nil {
		return fmt.Errorf("pin tcx link: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	attr := objAttr{pathname: name, bpfFD: rawFD(l.fd.load())}
	_, err = sysBPF(cmdObjPin, &attr)
	if errors.Is(err, unix.EEXIST) && path == l.pinned {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pin tcx link: %w", err)
	}
	old := l.pinned
	l.pinned = path
	if old != "" {
		if err := unix.Unlink(old); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("pin tcx link: remove old pin: %w", err)
		}
	}
	return nil
}

// Unpin removes the pin this handle made or was opened from; without one it
// does nothing. A closed handle fails with EBADF.
func (l *Link) Unpin() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd.load() < 0 {
		return fmt.Errorf("unpin tcx link: %w", unix.EBADF)
	}
	if l.pinned == "" {
		return nil
	}
	if err := unix.Unlink(l.pinned); err != nil {
		return fmt.Errorf("unpin tcx link: %w", err)
	}
	l.pinned = ""
	return nil
}

// Close closes the link fd; the link is released (detached) when no fd and
// no pin holds it any more. A second Close fails with EBADF.
func (l *Link) Close() error {
	if err := l.fd.close(); err != nil {
		return fmt.Errorf("close tcx link: %w", err)
	}
	return nil
}
