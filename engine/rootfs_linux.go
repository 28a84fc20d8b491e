package engine

import (
	"syscall"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

// The synchronised-I/O open flags, which not every unix has.
const oDSYNC, oRSYNC = syscall.O_DSYNC, syscall.O_RSYNC

// futimens sets the times of the open file, as DirFS does: utimensat(2)
// on the descriptor with no path.
func futimens(f *rootFile, atim, mtim int64) error {
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return nil
	}
	times := [2]unix.Timespec{timespec(atim), timespec(mtim)}
	return withFd(f.f, func(fd int) error {
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&times)), 0, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	})
}

func timespec(ns int64) unix.Timespec {
	if ns == experimentalsys.UTIME_OMIT {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(ns)
}
