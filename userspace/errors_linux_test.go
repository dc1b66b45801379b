package userspace

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestErrno_Linux: on Linux the runtime answers with the kernel's own
// errnos, including the two other systems lack.
func TestErrno_Linux(t *testing.T) {
	if errBadFDState != unix.EBADFD || errNoLink != unix.ENOLINK {
		t.Fatalf("EBADFD stand-in %v, ENOLINK stand-in %v", errBadFDState, errNoLink)
	}
}
