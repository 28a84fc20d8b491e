//go:build unix

package engine

import (
	"os"

	"golang.org/x/sys/unix"
)

// readable reports whether a read of f would return at once: it has data,
// or its end or an error, waiting. false when that cannot be told.
func readable(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	_ = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ready = err == nil && n > 0 && fds[0].Revents != 0
	})
	return ready
}
