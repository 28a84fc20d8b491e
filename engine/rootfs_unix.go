//go:build unix

package engine

import (
	"os"
	"syscall"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

// sysOpenFlag adds the open flags os has no name for, as DirFS does.
func sysOpenFlag(flag experimentalsys.Oflag) int {
	var f int
	for _, m := range []struct {
		sys experimentalsys.Oflag
		os  int
	}{
		{experimentalsys.O_DIRECTORY, syscall.O_DIRECTORY}, {experimentalsys.O_NONBLOCK, syscall.O_NONBLOCK},
		{experimentalsys.O_DSYNC, oDSYNC}, {experimentalsys.O_RSYNC, oRSYNC},
	} {
		if flag&m.sys != 0 {
			f |= m.os
		}
	}
	return f
}

// renameIn, rmdirIn and unlinkIn make the call itself on the directory
// that holds the name, which os.Root opened inside the mount: the last
// element is never followed (a symlink is renamed or removed, not its
// target), so nothing outside is reached, and the answers are the kernel's.
// os.Root's own Rename refuses to replace a directory, and its Remove picks
// between unlink and rmdir.
func renameIn(root *os.Root, from, to string) error {
	fromDir, fromBase := parentOf(from)
	toDir, toBase := parentOf(to)
	return inDir(root, fromDir, func(fromFd int) error {
		return inDir(root, toDir, func(toFd int) error { return unix.Renameat(fromFd, fromBase, toFd, toBase) })
	})
}

func rmdirIn(root *os.Root, name string) error {
	dir, base := parentOf(name)
	return inDir(root, dir, func(fd int) error { return unix.Unlinkat(fd, base, unix.AT_REMOVEDIR) })
}

func unlinkIn(root *os.Root, name string) error {
	dir, base := parentOf(name)
	return inDir(root, dir, func(fd int) error { return unix.Unlinkat(fd, base, 0) })
}

// inDir runs fn on a descriptor of the directory dir of the mount.
func inDir(root *os.Root, dir string, fn func(fd int) error) error {
	d, err := root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return withFd(d, fn)
}

// withFd runs fn on f's descriptor without taking it from Go's poller.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func setNonblock(f *os.File, enable bool) error {
	return withFd(f, func(fd int) error { return syscall.SetNonblock(fd, enable) })
}

// poll waits for f to be ready, as DirFS's files do (wazero polls only
// stdin this way; a file or directory is always ready).
func poll(f *os.File, flag experimentalsys.Pflag, timeoutMillis int32) (ready bool, errno experimentalsys.Errno) {
	var events int16
	if flag&experimentalsys.POLLIN != 0 {
		events |= unix.POLLIN
	}
	if flag&experimentalsys.POLLOUT != 0 {
		events |= unix.POLLOUT
	}
	err := withFd(f, func(fd int) error {
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, int(timeoutMillis))
		ready = n > 0
		return err
	})
	return ready, toErrno(err)
}
