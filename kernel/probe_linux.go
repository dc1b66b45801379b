package kernel

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx"
)

// Supported reports whether this process can use the kernel backend: load a
// SCHED_CLS program, reach the tcx link code (a link on ifindex 0xffffffff
// must fail with ENODEV: the attach type is known and the device lookup ran)
// and create a network namespace. The error says which step failed; kernels
// without tcx answer EINVAL, missing privileges EPERM.
func Supported() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "tcx_probe",
		Type:         ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "MIT",
	})
	if err != nil {
		return fmt.Errorf("kernel backend unsupported: load sched_cls program: %w", err)
	}
	defer prog.Close()
	attr := linkCreateAttr{progFD: uint32(prog.FD()), targetIfindex: ^uint32(0), attachType: tcx.AttachTCXIngress}
	fd, err := sysBPF(cmdLinkCreate, &attr)
	if err == nil {
		unix.Close(fd)
		return fmt.Errorf("kernel backend unsupported: tcx link on ifindex %#x succeeded", attr.targetIfindex)
	}
	if !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("kernel backend unsupported: create tcx link: %w", err)
	}
	ns, err := NewNetNS()
	if err != nil {
		return fmt.Errorf("kernel backend unsupported: %w", err)
	}
	return ns.Close()
}

// Release returns the running kernel's release string (uname -r), which
// tests comparing a model with this kernel use to pick the behaviour of
// its version.
func Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
