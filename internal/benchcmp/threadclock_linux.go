package benchcmp

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time the calling OS thread has used. On a shared
// machine it leaves out the time the thread waited for a core, which
// wall-clock time counts: a guest call timed on it is disturbed by other
// load only through the caches, not by being descheduled.
func threadCPU() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
