//go:build !linux

package engine

// The synchronised-I/O open flags are dropped outside Linux, as wazero
// drops those a platform lacks.
const oDSYNC, oRSYNC = 0, 0

// futimens sets the times of the open file by the name it was opened
// under, through its mount: there is no portable futimens(2) in Go.
func futimens(f *rootFile, atim, mtim int64) error {
	if errno := f.fs.Utimens(f.name, atim, mtim); errno != 0 {
		return errno
	}
	return nil
}
