package engine

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// rootFS is one mount: a host directory out of which the guest reaches
// nothing. wazero's own DirFS joins the guest's path to the directory and
// lets the host resolve it, following symlinks wherever they point: a
// symlink in a mount, or one the guest made itself with path_symlink
// ("../../../etc/passwd"), let a guest read and write any file the host
// could. rootFS resolves every path with os.Root, which refuses any path
// that would leave the directory, through "..", a symlink or a symlink on
// the way, without a window between checking and opening. It also refuses
// to create a symlink that points outside the mount, so that the host's own
// tools, which follow symlinks, are not led out by the guest's either.
//
// Each operation opens the directory afresh: the guest's open files stay
// valid without it, and there is no handle to close when the instance goes.
type rootFS struct {
	experimentalsys.UnimplementedFS
	dir string // the host directory, absolute
}

func (r *rootFS) String() string { return r.dir }

// in runs fn on the mount's root.
func (r *rootFS) in(fn func(root *os.Root) error) experimentalsys.Errno {
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		return toErrno(err)
	}
	defer root.Close()
	return toErrno(fn(root))
}

// rel turns wazero's path (relative to the mount, "" or "." or "/" for the
// mount itself) into os.Root's.
func rel(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// toErrno maps an error to the WASI errno the guest sees. A path that would
// leave the mount reads as "not permitted": the guest learns nothing about
// what lies outside.
func toErrno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	if strings.Contains(err.Error(), "path escapes from parent") {
		return experimentalsys.EPERM
	}
	return experimentalsys.UnwrapOSError(err)
}

func (r *rootFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	name := rel(p)
	var f *os.File
	errno := r.in(func(root *os.Root) error {
		if flag&experimentalsys.O_NOFOLLOW != 0 {
			if info, err := root.Lstat(name); err == nil && info.Mode()&fs.ModeSymlink != 0 {
				return syscall.ELOOP
			}
		}
		var err error
		f, err = root.OpenFile(name, osOpenFlag(flag), perm)
		return err
	})
	if errno != 0 {
		return nil, errno
	}
	seeker, errno := seekerFor(f)
	if errno != 0 {
		_ = f.Close()
		return nil, errno
	}
	file := &rootFile{File: seeker, fs: r, name: name, f: f, flag: flag}
	if flag&experimentalsys.O_DIRECTORY != 0 {
		if isDir, errno := file.IsDir(); errno != 0 || !isDir {
			_ = f.Close()
			if errno == 0 {
				errno = experimentalsys.ENOTDIR
			}
			return nil, errno
		}
	}
	return file, 0
}

func osOpenFlag(flag experimentalsys.Oflag) int {
	var f int
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		f = os.O_RDWR
	case experimentalsys.O_WRONLY:
		f = os.O_WRONLY
	default:
		f = os.O_RDONLY
	}
	for _, m := range []struct {
		sys experimentalsys.Oflag
		os  int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND}, {experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL}, {experimentalsys.O_SYNC, os.O_SYNC}, {experimentalsys.O_TRUNC, os.O_TRUNC},
	} {
		if flag&m.sys != 0 {
			f |= m.os
		}
	}
	return f
}

func (r *rootFS) Lstat(p string) (st sys.Stat_t, errno experimentalsys.Errno) {
	errno = r.in(func(root *os.Root) error {
		info, err := root.Lstat(rel(p))
		if err == nil {
			st = sys.NewStat_t(info)
		}
		return err
	})
	return st, errno
}

func (r *rootFS) Stat(p string) (st sys.Stat_t, errno experimentalsys.Errno) {
	errno = r.in(func(root *os.Root) error {
		info, err := root.Stat(rel(p))
		if err == nil {
			st = sys.NewStat_t(info)
		}
		return err
	})
	return st, errno
}

func (r *rootFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	errno := r.in(func(root *os.Root) error { return root.Mkdir(rel(p), perm) })
	if errno == experimentalsys.ENOTDIR { // as wazero's DirFS: a missing parent
		errno = experimentalsys.ENOENT
	}
	return errno
}

func (r *rootFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	return r.in(func(root *os.Root) error { return root.Chmod(rel(p), perm) })
}

func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	return r.in(func(root *os.Root) error { return root.Rename(rel(from), rel(to)) })
}

// Rmdir removes a directory, and only a directory.
func (r *rootFS) Rmdir(p string) experimentalsys.Errno {
	return r.in(func(root *os.Root) error {
		info, err := root.Lstat(rel(p))
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return syscall.ENOTDIR
		}
		return root.Remove(rel(p))
	})
}

// Unlink removes anything but a directory.
func (r *rootFS) Unlink(p string) experimentalsys.Errno {
	return r.in(func(root *os.Root) error {
		info, err := root.Lstat(rel(p))
		if err != nil {
			return err
		}
		if info.IsDir() {
			return syscall.EISDIR
		}
		return root.Remove(rel(p))
	})
}

func (r *rootFS) Link(oldName, newName string) experimentalsys.Errno {
	return r.in(func(root *os.Root) error { return root.Link(rel(oldName), rel(newName)) })
}

// Symlink creates a symlink only if its target, read from the link's
// directory, stays inside the mount.
func (r *rootFS) Symlink(target, link string) experimentalsys.Errno {
	if path.IsAbs(target) {
		return experimentalsys.EPERM
	}
	if to := path.Join(path.Dir(rel(link)), target); to == ".." || strings.HasPrefix(to, "../") {
		return experimentalsys.EPERM
	}
	return r.in(func(root *os.Root) error { return root.Symlink(target, rel(link)) })
}

func (r *rootFS) Readlink(p string) (target string, errno experimentalsys.Errno) {
	errno = r.in(func(root *os.Root) (err error) {
		target, err = root.Readlink(rel(p))
		return err
	})
	return target, errno
}

func (r *rootFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	return r.in(func(root *os.Root) error { return root.Chtimes(rel(p), toTime(atim), toTime(mtim)) })
}

// toTime converts a WASI timestamp; the zero time leaves it unchanged.
func toTime(ns int64) time.Time {
	if ns == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// rootFile is a file or directory the guest opened in a rootFS.
//
// Its Seek is wazero's own, from the file wazero's AdaptFS makes around the
// same *os.File (see seekerFor): go vet insists that a method named Seek
// return an error, and sys.File's returns an Errno. Every other method is
// rootFile's.
type rootFile struct {
	experimentalsys.File
	fs   *rootFS
	name string
	f    *os.File
	flag experimentalsys.Oflag
}

// seekerFor wraps f in wazero's fs.File adapter, for its Seek.
func seekerFor(f *os.File) (experimentalsys.File, experimentalsys.Errno) {
	return (&sysfs.AdaptFS{FS: openedFS{f}}).OpenFile(".", experimentalsys.O_RDONLY, 0)
}

// openedFS is an fs.FS whose only file is one already open.
type openedFS struct{ f *os.File }

func (o openedFS) Open(string) (fs.File, error) { return o.f, nil }

func (f *rootFile) SetAppend(bool) experimentalsys.Errno { return experimentalsys.ENOSYS }

func (f *rootFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	info, err := f.f.Stat()
	if err != nil {
		return sys.Stat_t{}, toErrno(err)
	}
	return sys.NewStat_t(info), 0
}

func (f *rootFile) Dev() (uint64, experimentalsys.Errno) {
	st, errno := f.Stat()
	return st.Dev, errno
}

func (f *rootFile) Ino() (sys.Inode, experimentalsys.Errno) {
	st, errno := f.Stat()
	return st.Ino, errno
}

func (f *rootFile) IsDir() (bool, experimentalsys.Errno) {
	st, errno := f.Stat()
	return st.Mode.IsDir(), errno
}

func (f *rootFile) IsAppend() bool { return f.flag&experimentalsys.O_APPEND != 0 }

func (f *rootFile) Read(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Read(buf)
	return n, toErrno(err) // io.EOF is no errno
}

func (f *rootFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	n, err := f.f.ReadAt(buf, off)
	return n, toErrno(err)
}

func (f *rootFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	entries, err := f.f.ReadDir(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, toErrno(err)
	}
	dirents := make([]experimentalsys.Dirent, 0, len(entries))
	for _, e := range entries {
		d := experimentalsys.Dirent{Name: e.Name(), Type: e.Type()}
		if info, err := e.Info(); err == nil {
			d.Ino = sys.NewStat_t(info).Ino
		}
		dirents = append(dirents, d)
	}
	return dirents, 0
}

func (f *rootFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Write(buf)
	return n, toErrno(err)
}

func (f *rootFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	n, err := f.f.WriteAt(buf, off)
	return n, toErrno(err)
}

func (f *rootFile) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	return toErrno(f.f.Truncate(size))
}

func (f *rootFile) Sync() experimentalsys.Errno     { return toErrno(f.f.Sync()) }
func (f *rootFile) Datasync() experimentalsys.Errno { return toErrno(f.f.Sync()) }

// Utimens sets the times through the mount, by the name the file was opened
// under: inside the mount whatever has happened to it since.
func (f *rootFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	return f.fs.Utimens(f.name, atim, mtim)
}

func (f *rootFile) Close() experimentalsys.Errno { return toErrno(f.f.Close()) }
