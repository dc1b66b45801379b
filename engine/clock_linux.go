package engine

import (
	"time"

	"golang.org/x/sys/unix"
)

// hostTAI is the host's CLOCK_TAI, what bpf_ktime_get_tai_ns reads.
func hostTAI() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_TAI, &ts); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return uint64(ts.Nano())
}
