//go:build !linux

package engine

import "time"

// hostTAI stands in for CLOCK_TAI off Linux: the real-time clock, which is
// what CLOCK_TAI reads on a Linux host whose TAI offset nobody set.
func hostTAI() uint64 { return uint64(time.Now().UnixNano()) }
