// MIPS Linux numbers its errnos its own way (EBADMSG is 77 there); the
// constants are the asm-generic ones every other Go port of Linux uses.

//go:build linux && !(mips || mipsle || mips64 || mips64le)

package linuxerr_test

import "testing"

// On Linux the host is Linux: every constant is the kernel's number of
// its name (syscall's, generated from the kernel headers), and Host, which
// TestHost_SameName checks by name, is the identity.
func TestConstants_MatchLinux(t *testing.T) {
	for _, c := range hostNames {
		if c.linux != int(c.host) {
			t.Errorf("%s = %d, Linux has %d", c.name, c.linux, int(c.host))
		}
	}
}
