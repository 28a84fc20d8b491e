//go:build !unix

package engine

import (
	"os"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// Outside unix, os.Root does what it can: a directory cannot replace
// another, and the flags os has no name for are dropped.

func sysOpenFlag(experimentalsys.Oflag) int { return 0 }

func renameIn(root *os.Root, from, to string) error { return root.Rename(from, to) }

func rmdirIn(root *os.Root, name string) error {
	info, err := root.Lstat(name)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return root.Remove(name)
}

func unlinkIn(root *os.Root, name string) error {
	info, err := root.Lstat(name)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return experimentalsys.EISDIR
	}
	return root.Remove(name)
}

func setNonblock(*os.File, bool) error { return experimentalsys.ENOSYS }

func poll(*os.File, experimentalsys.Pflag, int32) (bool, experimentalsys.Errno) {
	return false, experimentalsys.ENOSYS
}
