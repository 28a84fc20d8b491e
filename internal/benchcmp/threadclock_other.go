//go:build !linux

package benchcmp

import "time"

// threadCPU is not available here: callers use wall-clock time.
func threadCPU() (time.Duration, bool) { return 0, false }
