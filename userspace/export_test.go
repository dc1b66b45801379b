package userspace

// The errnos that differ between systems, for the tests to expect; on
// Linux, errors_linux_test.go pins them to the kernel's.
var (
	ErrBadFDState = errBadFDState
	ErrNoLink     = errNoLink
)
