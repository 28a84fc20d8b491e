package engine

import (
	"io/fs"
	"path"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// readOnlyFS is a read-only mount. It answers as a read-only filesystem
// does (mount -o ro): EROFS for a change, where wazero's sysfs.ReadFS says
// ENOSYS ("Function not implemented") to an open for writing, and lets an
// O_CREAT asking only to read through, creating the file. Reads, and what
// is not a change (fd flags), are the mount's own.
type readOnlyFS struct {
	experimentalsys.UnimplementedFS
	fs *rootFS
}

func (r *readOnlyFS) String() string { return r.fs.String() }

const writeModes = experimentalsys.O_WRONLY | experimentalsys.O_RDWR

// OpenFile opens for reading. An open that would write, create or
// truncate fails as open(2) fails on a read-only filesystem: what does not
// exist, or is not what was asked for, says so first (ENOENT, ENOTDIR,
// ELOOP, EEXIST for O_EXCL, EISDIR for a directory), then EROFS. O_CREAT of
// a file that exists opens it, as it would anywhere.
func (r *readOnlyFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	changes := flag&(writeModes|experimentalsys.O_CREAT|experimentalsys.O_TRUNC) != 0
	f, errno := r.fs.OpenFile(p, flag&^(writeModes|experimentalsys.O_CREAT|experimentalsys.O_EXCL|experimentalsys.O_TRUNC), perm)
	switch {
	case errno == experimentalsys.ENOENT && flag&experimentalsys.O_CREAT != 0:
		return nil, r.createErr(p)
	case errno != 0:
		return nil, errno
	case !changes:
		return &readOnlyFile{f.(*rootFile)}, 0
	}
	isDir, errno := f.IsDir()
	switch {
	case errno != 0:
	case flag&(experimentalsys.O_CREAT|experimentalsys.O_EXCL) == experimentalsys.O_CREAT|experimentalsys.O_EXCL:
		errno = experimentalsys.EEXIST
	case isDir:
		errno = experimentalsys.EISDIR
	case flag&(writeModes|experimentalsys.O_TRUNC) != 0:
		errno = experimentalsys.EROFS
	default: // O_CREAT of a file that exists, to read it
		return &readOnlyFile{f.(*rootFile)}, 0
	}
	_ = f.Close()
	return nil, errno
}

// createErr is why p, which does not exist, cannot be created: its
// directory's error if it has no directory, else EROFS.
func (r *readOnlyFS) createErr(p string) experimentalsys.Errno {
	dir := path.Dir(strings.TrimRight(rel(p), "/"))
	st, errno := r.fs.Stat(dir)
	switch {
	case errno != 0:
		return errno
	case !st.Mode.IsDir():
		return experimentalsys.ENOTDIR
	}
	return experimentalsys.EROFS
}

func (r *readOnlyFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) { return r.fs.Lstat(p) }
func (r *readOnlyFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno)  { return r.fs.Stat(p) }
func (r *readOnlyFS) Readlink(p string) (string, experimentalsys.Errno)  { return r.fs.Readlink(p) }

func (r *readOnlyFS) Mkdir(string, fs.FileMode) experimentalsys.Errno { return experimentalsys.EROFS }
func (r *readOnlyFS) Chmod(string, fs.FileMode) experimentalsys.Errno { return experimentalsys.EROFS }
func (r *readOnlyFS) Rename(string, string) experimentalsys.Errno     { return experimentalsys.EROFS }
func (r *readOnlyFS) Rmdir(string) experimentalsys.Errno              { return experimentalsys.EROFS }
func (r *readOnlyFS) Link(string, string) experimentalsys.Errno       { return experimentalsys.EROFS }
func (r *readOnlyFS) Symlink(string, string) experimentalsys.Errno    { return experimentalsys.EROFS }
func (r *readOnlyFS) Unlink(string) experimentalsys.Errno             { return experimentalsys.EROFS }
func (r *readOnlyFS) Utimens(string, int64, int64) experimentalsys.Errno {
	return experimentalsys.EROFS
}

// readOnlyFile is a file of a read-only mount, opened to read. Writes fail
// as on any file opened to read (EBADF, EISDIR for a directory), as in
// wazero's ReadFS; so do fd_sync and fd_datasync, as there. Setting its
// times is a change: EROFS.
type readOnlyFile struct{ *rootFile }

var _ experimentalsys.PollableFile = (*readOnlyFile)(nil)

func (f readOnlyFile) Write([]byte) (int, experimentalsys.Errno)         { return 0, f.writeErr() }
func (f readOnlyFile) Pwrite([]byte, int64) (int, experimentalsys.Errno) { return 0, f.writeErr() }
func (f readOnlyFile) Truncate(int64) experimentalsys.Errno              { return f.writeErr() }
func (f readOnlyFile) Sync() experimentalsys.Errno                       { return experimentalsys.EBADF }
func (f readOnlyFile) Datasync() experimentalsys.Errno                   { return experimentalsys.EBADF }
func (f readOnlyFile) Utimens(int64, int64) experimentalsys.Errno        { return experimentalsys.EROFS }
func (f readOnlyFile) writeErr() experimentalsys.Errno                   { return f.fileErr(experimentalsys.EBADF) }
