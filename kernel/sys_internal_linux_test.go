package kernel

import (
	"testing"
	"unsafe"
)

// TestSysBPF_AttrLayout pins the attr structs to the sizes and offsets of
// include/uapi/linux/bpf.h, on every architecture the tests run on.
func TestSysBPF_AttrLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"pointer", unsafe.Sizeof(pointer{}), 8},
		{"prog_attach", unsafe.Sizeof(progAttachAttr{}), 32},
		{"prog_attach.expected_revision", unsafe.Offsetof(progAttachAttr{}.expectedRevision), 24},
		{"query", unsafe.Sizeof(progQueryAttr{}), 64},
		{"query.prog_ids", unsafe.Offsetof(progQueryAttr{}.progIDs), 16},
		{"query.count", unsafe.Offsetof(progQueryAttr{}.count), 24},
		{"query.prog_attach_flags", unsafe.Offsetof(progQueryAttr{}.progAttachFlags), 32},
		{"query.link_ids", unsafe.Offsetof(progQueryAttr{}.linkIDs), 40},
		{"query.link_attach_flags", unsafe.Offsetof(progQueryAttr{}.linkAttachFlags), 48},
		{"query.revision", unsafe.Offsetof(progQueryAttr{}.revision), 56},
		{"link_create", unsafe.Sizeof(linkCreateAttr{}), 32},
		{"link_create.tcx.relative_fd", unsafe.Offsetof(linkCreateAttr{}.relativeFDOrID), 16},
		{"link_create.tcx.expected_revision", unsafe.Offsetof(linkCreateAttr{}.expectedRevision), 24},
		{"link_update", unsafe.Sizeof(linkUpdateAttr{}), 16},
		{"link_detach", unsafe.Sizeof(linkDetachAttr{}), 4},
		{"obj", unsafe.Sizeof(objAttr{}), 24},
		{"obj.bpf_fd", unsafe.Offsetof(objAttr{}.bpfFD), 8},
		{"obj.path_fd", unsafe.Offsetof(objAttr{}.pathFD), 16},
		{"info", unsafe.Sizeof(infoAttr{}), 16},
		{"info.info", unsafe.Offsetof(infoAttr{}.info), 8},
		{"get_fd_by_id", unsafe.Sizeof(getIDAttr{}), 16},
		{"bpf_link_info", unsafe.Sizeof(linkInfo{}), 64},
		{"bpf_link_info.tcx.ifindex", unsafe.Offsetof(linkInfo{}.ifindex), 16},
		{"bpf_link_info.tcx.attach_type", unsafe.Offsetof(linkInfo{}.attachType), 20},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}
