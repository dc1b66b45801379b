package datapath_test

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tcxgo/tcx/kernel"
)

// noOffloads turns transmit checksum offload, TSO and GSO off on dev in
// ns (the legacy ETHTOOL_STXCSUM/STSO/SGSO requests, as ethtool -K does),
// so a packet socket on the veth peer reads finished frames within the
// MTU.
func noOffloads(t *testing.T, ns *kernel.NetNS, dev string) {
	t.Helper()
	const (
		ethtoolSTXCSUM = 0x17
		ethtoolSTSO    = 0x1f
		ethtoolSGSO    = 0x24
	)
	err := ns.Do(func() error {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		for _, cmd := range []uint32{ethtoolSTXCSUM, ethtoolSTSO, ethtoolSGSO} {
			val := struct{ cmd, data uint32 }{cmd, 0}
			var ifr struct {
				name [unix.IFNAMSIZ]byte
				data uintptr
				_    [16]byte
			}
			copy(ifr.name[:], dev)
			ifr.data = uintptr(unsafe.Pointer(&val))
			if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
				return errno
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ethtool -K %s tx off tso off gso off: %v", dev, err)
	}
}
