package engine

import (
	"io"
	"os"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// rootFile is a file or directory the guest opened in a rootFS. It answers
// as the file wazero's DirFS opens does (its osFile), errno for errno.
type rootFile struct {
	experimentalsys.UnimplementedFile
	fs     *rootFS
	name   string // as opened in fs
	f      *os.File
	flag   experimentalsys.Oflag
	closed bool

	// The stat fields that cannot change while the file is open.
	cached bool
	dev    uint64
	ino    sys.Inode
	isDir  bool
}

var _ experimentalsys.PollableFile = (*rootFile)(nil)

func (f *rootFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	info, err := f.f.Stat()
	if err != nil {
		errno := toErrno(err)
		if errno == experimentalsys.EIO { // as DirFS
			errno = experimentalsys.EBADF
		}
		return sys.Stat_t{}, errno
	}
	st := sys.NewStat_t(info)
	f.cached, f.dev, f.ino, f.isDir = true, st.Dev, st.Ino, st.Mode.IsDir()
	return st, 0
}

func (f *rootFile) cachedStat() experimentalsys.Errno {
	if f.cached {
		return 0
	}
	_, errno := f.Stat()
	return errno
}

func (f *rootFile) Dev() (uint64, experimentalsys.Errno) {
	errno := f.cachedStat()
	return f.dev, errno
}

func (f *rootFile) Ino() (sys.Inode, experimentalsys.Errno) {
	errno := f.cachedStat()
	return f.ino, errno
}

func (f *rootFile) IsDir() (bool, experimentalsys.Errno) {
	errno := f.cachedStat()
	return f.isDir, errno
}

func (f *rootFile) IsAppend() bool { return f.flag&experimentalsys.O_APPEND != 0 }

// SetAppend turns O_APPEND on or off. Go fixes an *os.File's append mode
// when it opens it, so, as DirFS does, the file is opened again by its name,
// through the mount, at the same offset, and kept only if it is the same
// file (ENOENT if the name has gone or now names another).
func (f *rootFile) SetAppend(enable bool) experimentalsys.Errno {
	flag := f.flag &^ experimentalsys.O_APPEND
	if enable {
		flag |= experimentalsys.O_APPEND
	}
	if errno := f.fileErr(f.reopen(flag)); errno != 0 {
		return errno
	}
	f.flag = flag
	return 0
}

func (f *rootFile) reopen(flag experimentalsys.Oflag) experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	isDir, errno := f.IsDir()
	if errno != 0 {
		return errno
	}
	var offset int64
	if !isDir {
		var err error
		if offset, err = f.f.Seek(0, io.SeekCurrent); err != nil {
			return toErrno(err)
		}
	}
	nf, errno := f.fs.open(f.name, flag&^(experimentalsys.O_CREAT|experimentalsys.O_TRUNC), 0)
	if errno != 0 {
		return errno
	}
	was, err1 := f.f.Stat()
	now, err2 := nf.Stat()
	switch {
	case err1 != nil || err2 != nil:
		errno = experimentalsys.EBADF
	case !os.SameFile(was, now):
		errno = experimentalsys.ENOENT
	case !isDir:
		if _, err := nf.Seek(offset, io.SeekStart); err != nil {
			errno = toErrno(err)
		}
	}
	if errno != 0 {
		_ = nf.Close()
		return errno
	}
	_ = f.f.Close()
	f.f = nf
	return 0
}

// IsNonblock reports O_NONBLOCK as the guest last set it, as DirFS does.
func (f *rootFile) IsNonblock() bool { return f.flag&experimentalsys.O_NONBLOCK != 0 }

func (f *rootFile) SetNonblock(enable bool) experimentalsys.Errno {
	if enable {
		f.flag |= experimentalsys.O_NONBLOCK
	} else {
		f.flag &^= experimentalsys.O_NONBLOCK
	}
	if f.closed {
		return experimentalsys.EBADF
	}
	return f.fileErr(toErrno(setNonblock(f.f, enable)))
}

func (f *rootFile) Poll(flag experimentalsys.Pflag, timeoutMillis int32) (bool, experimentalsys.Errno) {
	if f.closed {
		return false, experimentalsys.EBADF
	}
	return poll(f.f, flag, timeoutMillis)
}

// fileErr turns the errno of a call meant for a file into DirFS's: EBADF
// once closed, EISDIR on a directory.
func (f *rootFile) fileErr(errno experimentalsys.Errno) experimentalsys.Errno {
	if errno == 0 {
		return 0
	}
	if f.closed {
		return experimentalsys.EBADF
	}
	if isDir, err := f.IsDir(); err != 0 {
		return err
	} else if isDir {
		return experimentalsys.EISDIR
	}
	return errno
}

func (f *rootFile) Read(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Read(buf)
	return n, f.fileErr(toErrno(err)) // io.EOF is no errno
}

func (f *rootFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.ReadAt(buf, off)
	return n, f.fileErr(toErrno(err))
}

// fileOffset is int64 under another name: go vet takes any method
// Seek(int64, int) for io.Seeker's and wants it to return an error, where
// sys.File's returns an Errno.
type fileOffset = int64

// Seek moves the offset. Seeking a directory to 0 rewinds it: os.File drops
// what it had read of it and the next Readdir lists it again, entries added
// since included (the guest cannot seek a directory; wazero does this for
// fd_readdir from cookie 0).
func (f *rootFile) Seek(offset fileOffset, whence int) (int64, experimentalsys.Errno) {
	if uint(whence) > io.SeekEnd {
		return 0, experimentalsys.EINVAL
	}
	n, err := f.f.Seek(offset, whence)
	errno := toErrno(err)
	if errno == experimentalsys.EISDIR && offset == 0 && whence == io.SeekStart {
		errno = 0
	}
	return n, f.fileErr(errno)
}

// Readdir reads the next n entries (all of them when n <= 0), each with its
// inode, as DirFS does.
func (f *rootFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if f.closed {
		return nil, experimentalsys.EBADF
	}
	infos, err := f.f.Readdir(n)
	if errno := toErrno(err); errno != 0 && err != io.EOF {
		if isDir, e := f.IsDir(); e != 0 {
			return nil, e
		} else if !isDir || errno == experimentalsys.EINVAL || errno == experimentalsys.ENOTDIR {
			return nil, experimentalsys.EBADF
		}
		return nil, errno
	}
	dirents := make([]experimentalsys.Dirent, 0, len(infos))
	for _, info := range infos {
		dirents = append(dirents, experimentalsys.Dirent{Name: info.Name(), Type: info.Mode().Type(), Ino: sys.NewStat_t(info).Ino})
	}
	return dirents, 0
}

func (f *rootFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Write(buf)
	return n, f.fileErr(toErrno(err))
}

func (f *rootFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.WriteAt(buf, off)
	return n, f.fileErr(toErrno(err))
}

func (f *rootFile) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	return f.fileErr(toErrno(f.f.Truncate(size)))
}

func (f *rootFile) Sync() experimentalsys.Errno     { return toErrno(f.f.Sync()) }
func (f *rootFile) Datasync() experimentalsys.Errno { return toErrno(f.f.Sync()) }

// Utimens sets the times of the open file itself, wherever it has been
// moved since (futimens(2)).
func (f *rootFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	return toErrno(futimens(f, atim, mtim))
}

func (f *rootFile) Close() experimentalsys.Errno {
	if f.closed {
		return 0
	}
	f.closed = true
	return toErrno(f.f.Close())
}
