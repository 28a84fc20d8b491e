package engine

import (
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
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
// Otherwise it answers every call as DirFS does, errno for errno
// (TestWASIFilesystemMatchesWazero runs the same calls through both).
//
// Each operation opens the directory afresh: the guest's open files stay
// valid without it, and there is no handle to close when the instance goes.
type rootFS struct {
	experimentalsys.UnimplementedFS
	dir string // the host directory, absolute
}

// newMountFS is the filesystem of one mount of host directory dir.
func newMountFS(dir string, readOnly bool) experimentalsys.FS {
	fsys := &rootFS{dir: dir}
	if readOnly {
		return &readOnlyFS{fs: fsys}
	}
	return fsys
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
	f, errno := r.open(rel(p), flag, perm)
	if errno != 0 {
		return nil, errno
	}
	file := &rootFile{fs: r, name: rel(p), f: f, flag: flag}
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

// open opens name in the mount. os.Root follows a symlink in the last
// element as in any other (inside the mount), so O_NOFOLLOW is checked
// here, answering as the kernel does: ENOTDIR when a directory was asked
// for, ELOOP otherwise, and O_CREAT|O_EXCL's EEXIST before either.
func (r *rootFS) open(name string, flag experimentalsys.Oflag, perm fs.FileMode) (f *os.File, errno experimentalsys.Errno) {
	errno = r.in(func(root *os.Root) error {
		if flag&experimentalsys.O_NOFOLLOW != 0 && flag&(experimentalsys.O_CREAT|experimentalsys.O_EXCL) != experimentalsys.O_CREAT|experimentalsys.O_EXCL {
			if info, err := root.Lstat(name); err == nil && info.Mode()&fs.ModeSymlink != 0 {
				if flag&experimentalsys.O_DIRECTORY != 0 {
					return syscall.ENOTDIR
				}
				return syscall.ELOOP
			}
		}
		var err error
		f, err = root.OpenFile(name, osOpenFlag(flag), perm)
		return err
	})
	return f, errno
}

// osOpenFlag maps the flags as wazero's DirFS does.
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
	return f | sysOpenFlag(flag)
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

// Rename renames as rename(2) does, replacing an empty directory with a
// directory (os.Root.Rename, like os.Rename, refuses to).
func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	from, to = rel(from), rel(to)
	switch {
	case from == to:
		return 0 // as DirFS
	// The mount itself has no name inside the mount: answer as rename(2)
	// does for a directory and a name inside it.
	case from == ".":
		return experimentalsys.EINVAL // a directory into itself
	case to == ".":
		if _, errno := r.Lstat(from); errno != 0 {
			return errno
		}
		return experimentalsys.ENOTEMPTY // onto a directory that holds it
	}
	return r.in(func(root *os.Root) error { return renameIn(root, from, to) })
}

// Rmdir removes a directory, and only a directory, as rmdir(2) does. The
// mount itself stays: it is not empty, or the directory that holds it is
// not the guest's to change (EACCES); DirFS would remove it.
func (r *rootFS) Rmdir(p string) experimentalsys.Errno {
	if rel(p) == "." {
		return r.in(func(root *os.Root) error {
			d, err := root.Open(".")
			if err != nil {
				return err
			}
			defer d.Close()
			if names, _ := d.Readdirnames(1); len(names) > 0 {
				return experimentalsys.ENOTEMPTY
			}
			return experimentalsys.EACCES
		})
	}
	return r.in(func(root *os.Root) error { return rmdirIn(root, rel(p)) })
}

// Unlink removes anything but a directory, as unlink(2) does.
func (r *rootFS) Unlink(p string) experimentalsys.Errno {
	errno := r.in(func(root *os.Root) error { return unlinkIn(root, rel(p)) })
	if errno == experimentalsys.EPERM { // as DirFS: Linux's answer for a directory
		errno = experimentalsys.EISDIR
	}
	return errno
}

// parentOf splits name into the directory that holds it and its last
// element, which keeps any trailing slash (rename(2) and its kin give a
// trailing slash a meaning of its own).
func parentOf(name string) (dir, base string) {
	i := strings.LastIndex(strings.TrimRight(name, "/"), "/")
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}

func (r *rootFS) Link(oldName, newName string) experimentalsys.Errno {
	return r.in(func(root *os.Root) error { return root.Link(rel(oldName), rel(newName)) })
}

// Symlink creates a symlink only if its target, read from the link's
// directory, stays inside the mount.
func (r *rootFS) Symlink(target, link string) experimentalsys.Errno {
	// A guest's symlink must lead inside the mount for whoever follows it,
	// the host's own tools included, wherever it or its directory is
	// renamed to later: so it is relative and never climbs. A lexical check
	// of where it points today is not enough: with r -> ".", the target
	// "r/../outside" looks like "outside" under the mount, and is its
	// parent's "outside" to a resolver that follows r first.
	if path.IsAbs(target) || slices.Contains(strings.Split(target, "/"), "..") {
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

// Utimens sets the times of p, following a symlink. As DirFS, it does
// nothing at all when both times are left as they are.
func (r *rootFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return 0
	}
	return r.in(func(root *os.Root) error { return root.Chtimes(rel(p), toTime(atim), toTime(mtim)) })
}

// toTime converts a WASI timestamp; the zero time leaves it unchanged.
func toTime(ns int64) time.Time {
	if ns == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
