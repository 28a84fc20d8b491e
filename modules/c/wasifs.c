/*
 * wasifs: a WASI command that makes the filesystem calls of WASI preview 1
 * exactly as a script says, one raw __wasi_* call a line, and prints each
 * call's errno and results. engine/wasifs_test.go runs the same script under
 * wazero's own sysfs and under wasmpool's mounts and compares the two
 * transcripts and the trees left behind, so the output holds nothing that
 * differs between two copies of a tree: inodes and devices are printed as
 * the order in which the guest first saw them (#1, #2, ...; 0 stays 0), a
 * directory entry's inode as whether it is the entry's, and times as
 * nanoseconds, which the test normalises.
 *
 * The script is stdin. One operation a line, tokens separated by spaces; a
 * token starting with '#' starts a comment. A line starting with '!' is an
 * escape attempt, one starting with '~' a known difference: both run as
 * usual, and the test judges them on their own. An FD token is a preopen's
 * guest path ("/rw"), a slot ("$name", set by open) or a number.
 * "" is the empty string. Each line is echoed, then " => ERRNO" and results.
 *
 *   open $S DIR PATH OFLAGS FDFLAGS RIGHTS LOOKUP   path_open
 *        OFLAGS  c(reat) d(irectory) e(xcl) t(runc), or -
 *        FDFLAGS a(ppend) d(sync) n(onblock) r(sync) s(ync), or -
 *        RIGHTS  r, w, rw, all, - (none), or a number
 *        LOOKUP  f (follow symlinks) or -
 *   close FD | sync FD | datasync FD
 *   read FD N | pread FD N OFF | write FD TEXT | pwrite FD OFF TEXT
 *   seek FD OFF set|cur|end | tell FD
 *   fdstat FD | setflags FD FDFLAGS | setrights FD BASE INHERITING
 *   fstat FD | setsize FD N | settimes FD ATIM MTIM FSTFLAGS (a A m M, or -)
 *   advise FD OFF LEN ADVICE | allocate FD OFF LEN | renumber FD TO
 *   readdir FD COOKIE BUFLEN      one fd_readdir call, its entries raw
 *   ls FD BUFLEN                  fd_readdir from cookie 0 to the end
 *   prestat FD
 *   mkdir DIR PATH | rmdir DIR PATH | unlink DIR PATH
 *   rename DIR PATH DIR PATH | link DIR LOOKUP PATH DIR PATH
 *   symlink TARGET DIR PATH | readlink DIR PATH BUFLEN
 *   stat DIR LOOKUP PATH | utimes DIR LOOKUP PATH ATIM MTIM FSTFLAGS
 *   libcls PATH                   opendir, readdir to the end, rewinddir,
 *                                 readdir again (wasi-libc's dirent.h)
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static const char *errnames[] = {
    "ESUCCESS", "E2BIG", "EACCES", "EADDRINUSE", "EADDRNOTAVAIL", "EAFNOSUPPORT", "EAGAIN",
    "EALREADY", "EBADF", "EBADMSG", "EBUSY", "ECANCELED", "ECHILD", "ECONNABORTED",
    "ECONNREFUSED", "ECONNRESET", "EDEADLK", "EDESTADDRREQ", "EDOM", "EDQUOT", "EEXIST",
    "EFAULT", "EFBIG", "EHOSTUNREACH", "EIDRM", "EILSEQ", "EINPROGRESS", "EINTR", "EINVAL",
    "EIO", "EISCONN", "EISDIR", "ELOOP", "EMFILE", "EMLINK", "EMSGSIZE", "EMULTIHOP",
    "ENAMETOOLONG", "ENETDOWN", "ENETRESET", "ENETUNREACH", "ENFILE", "ENOBUFS", "ENODEV",
    "ENOENT", "ENOEXEC", "ENOLCK", "ENOLINK", "ENOMEM", "ENOMSG", "ENOPROTOOPT", "ENOSPC",
    "ENOSYS", "ENOTCONN", "ENOTDIR", "ENOTEMPTY", "ENOTRECOVERABLE", "ENOTSOCK", "ENOTSUP",
    "ENOTTY", "ENXIO", "EOVERFLOW", "EOWNERDEAD", "EPERM", "EPIPE", "EPROTO",
    "EPROTONOSUPPORT", "EPROTOTYPE", "ERANGE", "EROFS", "ESPIPE", "ESRCH", "ESTALE",
    "ETIMEDOUT", "ETXTBSY", "EXDEV", "ENOTCAPABLE",
};

static const char *filetypes[] = {"unknown", "block", "char", "dir", "file", "dgram", "stream", "symlink"};

/* Static, not on the stack: wasm-ld's default stack is 64 KiB in all. */
static char script[1 << 18];
static uint8_t buf[1 << 16];
static char line[4096];

#define MAXTOK 16
static char *tok[MAXTOK];
static int ntok;

static void fail(const char *why) {
    printf(" !! %s\n", why);
    fflush(stdout);
    exit(2);
}

static const char *arg(int i) {
    if (i >= ntok) fail("too few arguments");
    return strcmp(tok[i], "\"\"") == 0 ? "" : tok[i];
}

static uint64_t num(int i) {
    const char *s = arg(i);
    char *end;
    int neg = s[0] == '-';
    uint64_t v = strtoull(neg ? s + 1 : s, &end, 0);
    if (*end != 0 || end == s + neg) fail("not a number");
    return neg ? (uint64_t)(-(int64_t)v) : v;
}

/* Named slots of open descriptors. */
#define MAXSLOT 64
static char slotname[MAXSLOT][32];
static __wasi_fd_t slotfd[MAXSLOT];
static int nslot;

static void setslot(const char *name, __wasi_fd_t fd) {
    for (int i = 0; i < nslot; i++)
        if (strcmp(slotname[i], name) == 0) { slotfd[i] = fd; return; }
    if (nslot == MAXSLOT || strlen(name) >= sizeof slotname[0]) fail("too many slots");
    strcpy(slotname[nslot], name);
    slotfd[nslot++] = fd;
}

/* Preopens, found as wasi-libc finds them: fd_prestat_get from 3 up. */
#define MAXPRE 16
static char prename[MAXPRE][256];
static __wasi_fd_t prefd[MAXPRE];
static int npre;

static void findpreopens(void) {
    for (__wasi_fd_t fd = 3; npre < MAXPRE; fd++) {
        __wasi_prestat_t ps;
        if (__wasi_fd_prestat_get(fd, &ps) != 0) return;
        size_t n = ps.u.dir.pr_name_len;
        if (n >= sizeof prename[0]) continue;
        if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)prename[npre], n) != 0) continue;
        prename[npre][n] = 0;
        prefd[npre++] = fd;
    }
}

static __wasi_fd_t fdarg(int i) {
    const char *s = arg(i);
    if (s[0] == '$') {
        for (int j = 0; j < nslot; j++)
            if (strcmp(slotname[j], s + 1) == 0) return slotfd[j];
        fail("unknown slot");
    }
    if (s[0] == '/') {
        for (int j = 0; j < npre; j++)
            if (strcmp(prename[j], s) == 0) return prefd[j];
        fail("unknown preopen");
    }
    return (__wasi_fd_t)num(i);
}

/* Inodes and devices differ between two copies of a tree; the order in
 * which the guest first sees them does not. */
#define MAXIDS 1024
static uint64_t inos[MAXIDS], devs[MAXIDS];
static int ninos, ndevs;

static int escaping; /* on a '!' line: what it sees is not numbered */

static void printid(uint64_t *seen, int *n, uint64_t v) {
    if (v == 0) {
        printf("#0");
        return;
    }
    for (int i = 0; i < *n; i++)
        if (seen[i] == v) {
            printf("#%d", i + 1);
            return;
        }
    if (escaping) {
        printf("#?");
        return;
    }
    if (*n == MAXIDS) fail("too many inodes");
    seen[(*n)++] = v;
    printf("#%d", *n);
}

static const char *ftype(uint8_t t) { return t < 8 ? filetypes[t] : "?"; }

static uint16_t letters(const char *s, const char *set, const uint16_t *bits) {
    uint16_t v = 0;
    if (strcmp(s, "-") == 0) return 0;
    for (; *s; s++) {
        const char *p = strchr(set, *s);
        if (!p) fail("unknown flag letter");
        v |= bits[p - set];
    }
    return v;
}

static const uint16_t oflagbits[] = {__WASI_OFLAGS_CREAT, __WASI_OFLAGS_DIRECTORY, __WASI_OFLAGS_EXCL, __WASI_OFLAGS_TRUNC};
static const uint16_t fdflagbits[] = {__WASI_FDFLAGS_APPEND, __WASI_FDFLAGS_DSYNC, __WASI_FDFLAGS_NONBLOCK, __WASI_FDFLAGS_RSYNC, __WASI_FDFLAGS_SYNC};
static const uint16_t fstbits[] = {__WASI_FSTFLAGS_ATIM, __WASI_FSTFLAGS_ATIM_NOW, __WASI_FSTFLAGS_MTIM, __WASI_FSTFLAGS_MTIM_NOW};

static uint16_t oflags(int i) { return letters(arg(i), "cdet", oflagbits); }
static uint16_t fdflags(int i) { return letters(arg(i), "adnrs", fdflagbits); }
static uint16_t fstflags(int i) { return letters(arg(i), "aAmM", fstbits); }

static __wasi_lookupflags_t lookup(int i) {
    const char *s = arg(i);
    if (strcmp(s, "f") == 0) return __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
    if (strcmp(s, "-") == 0) return 0;
    fail("lookup is f or -");
    return 0;
}

static __wasi_rights_t rights(int i) {
    const char *s = arg(i);
    if (strcmp(s, "r") == 0) return __WASI_RIGHTS_FD_READ;
    if (strcmp(s, "w") == 0) return __WASI_RIGHTS_FD_WRITE;
    if (strcmp(s, "rw") == 0) return __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE;
    if (strcmp(s, "all") == 0) return ~(__wasi_rights_t)0;
    if (strcmp(s, "-") == 0) return 0;
    return num(i);
}

static void printdata(const uint8_t *p, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') putchar(p[i]);
        else printf("\\x%02x", p[i]);
    }
    putchar('"');
}

static void printstat(const __wasi_filestat_t *st) {
    printf(" type=%s nlink=%llu ino=", ftype(st->filetype), (unsigned long long)st->nlink);
    printid(inos, &ninos, st->ino);
    printf(" dev=");
    printid(devs, &ndevs, st->dev);
    /* A directory's size is the filesystem's business, not WASI's. */
    if (st->filetype != __WASI_FILETYPE_DIRECTORY) printf(" size=%llu", (unsigned long long)st->size);
    printf(" atim=%llu mtim=%llu", (unsigned long long)st->atim, (unsigned long long)st->mtim);
}

/* inocheck says whether an entry's d_ino is its inode: that of the
 * directory for ".", what path_filestat_get says for a name. (An inode
 * number freed by an unlink may be reused, differently in two trees, so
 * entries are not numbered as stat's inodes are.) */
static const char *inocheck(__wasi_fd_t dir, const char *name, uint64_t ino) {
    static char path[4096];
    __wasi_filestat_t st;
    __wasi_errno_t e;
    if (strcmp(name, "..") == 0) return ino == 0 ? "ino0" : "ino";
    if (strcmp(name, ".") == 0) e = __wasi_fd_filestat_get(dir, &st);
    else {
        snprintf(path, sizeof path, "%s", name);
        e = __wasi_path_filestat_get(dir, 0, path, &st);
    }
    if (e != 0) return "gone";
    return st.ino == ino ? "ino" : "ino-wrong";
}

/* printdirents prints the entries of one fd_readdir buffer; it returns the
 * cookie after the last whole entry (or `cookie` if none was whole). */
static uint64_t printdirents(__wasi_fd_t dir, const uint8_t *b, size_t used, uint64_t cookie, int *count) {
    size_t off = 0;
    while (off + sizeof(__wasi_dirent_t) <= used) {
        __wasi_dirent_t d;
        memcpy(&d, b + off, sizeof d);
        off += sizeof d;
        if (off + d.d_namlen > used) {
            printf(" [truncated %u]", d.d_namlen);
            break;
        }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)d.d_namlen, (const char *)(b + off));
        printf(" ");
        printdata(b + off, d.d_namlen);
        printf(":%s:%llu:%s", ftype(d.d_type), (unsigned long long)d.d_next, inocheck(dir, name, d.d_ino));
        off += d.d_namlen;
        cookie = d.d_next;
        (*count)++;
    }
    return cookie;
}

static void result(__wasi_errno_t e) { printf(" => %s", e < 77 ? errnames[e] : "E?"); }

static void run(void) {
    const char *op = tok[0];
    __wasi_errno_t e;
    if (strcmp(op, "open") == 0) {
        __wasi_fd_t fd = (__wasi_fd_t)-1;
        e = __wasi_path_open(fdarg(2), lookup(7), arg(3), oflags(4), rights(6), rights(6), fdflags(5), &fd);
        result(e);
        if (e == 0) {
            printf(" fd=%u", fd);
            if (arg(1)[0] != '$') fail("open names a $slot");
            setslot(arg(1) + 1, fd);
        }
    } else if (strcmp(op, "close") == 0) {
        result(__wasi_fd_close(fdarg(1)));
    } else if (strcmp(op, "sync") == 0) {
        result(__wasi_fd_sync(fdarg(1)));
    } else if (strcmp(op, "datasync") == 0) {
        result(__wasi_fd_datasync(fdarg(1)));
    } else if (strcmp(op, "read") == 0 || strcmp(op, "pread") == 0) {
        size_t n = num(2);
        if (n > sizeof buf) fail("read too large");
        __wasi_iovec_t iov = {buf, n};
        __wasi_size_t got = 0;
        e = op[0] == 'r' ? __wasi_fd_read(fdarg(1), &iov, 1, &got) : __wasi_fd_pread(fdarg(1), &iov, 1, num(3), &got);
        result(e);
        if (e == 0) {
            printf(" n=%lu ", (unsigned long)got);
            printdata(buf, got);
        }
    } else if (strcmp(op, "write") == 0 || strcmp(op, "pwrite") == 0) {
        int p = op[0] == 'p';
        const char *text = arg(p ? 3 : 2);
        __wasi_ciovec_t iov = {(const uint8_t *)text, strlen(text)};
        __wasi_size_t n = 0;
        e = p ? __wasi_fd_pwrite(fdarg(1), &iov, 1, num(2), &n) : __wasi_fd_write(fdarg(1), &iov, 1, &n);
        result(e);
        if (e == 0) printf(" n=%lu", (unsigned long)n);
    } else if (strcmp(op, "seek") == 0) {
        const char *w = arg(3);
        __wasi_whence_t whence = strcmp(w, "set") == 0 ? __WASI_WHENCE_SET
                                 : strcmp(w, "cur") == 0 ? __WASI_WHENCE_CUR
                                 : strcmp(w, "end") == 0 ? __WASI_WHENCE_END
                                                         : (__wasi_whence_t)num(3);
        __wasi_filesize_t off = 0;
        e = __wasi_fd_seek(fdarg(1), (__wasi_filedelta_t)num(2), whence, &off);
        result(e);
        if (e == 0) printf(" off=%llu", (unsigned long long)off);
    } else if (strcmp(op, "tell") == 0) {
        __wasi_filesize_t off = 0;
        e = __wasi_fd_tell(fdarg(1), &off);
        result(e);
        if (e == 0) printf(" off=%llu", (unsigned long long)off);
    } else if (strcmp(op, "fdstat") == 0) {
        __wasi_fdstat_t st;
        e = __wasi_fd_fdstat_get(fdarg(1), &st);
        result(e);
        if (e == 0)
            printf(" type=%s flags=%#x base=%#llx inheriting=%#llx", ftype(st.fs_filetype), st.fs_flags,
                   (unsigned long long)st.fs_rights_base, (unsigned long long)st.fs_rights_inheriting);
    } else if (strcmp(op, "setflags") == 0) {
        result(__wasi_fd_fdstat_set_flags(fdarg(1), fdflags(2)));
    } else if (strcmp(op, "setrights") == 0) {
        result(__wasi_fd_fdstat_set_rights(fdarg(1), rights(2), rights(3)));
    } else if (strcmp(op, "fstat") == 0) {
        __wasi_filestat_t st;
        e = __wasi_fd_filestat_get(fdarg(1), &st);
        result(e);
        if (e == 0) printstat(&st);
    } else if (strcmp(op, "setsize") == 0) {
        result(__wasi_fd_filestat_set_size(fdarg(1), num(2)));
    } else if (strcmp(op, "settimes") == 0) {
        result(__wasi_fd_filestat_set_times(fdarg(1), num(2), num(3), fstflags(4)));
    } else if (strcmp(op, "advise") == 0) {
        result(__wasi_fd_advise(fdarg(1), num(2), num(3), (__wasi_advice_t)num(4)));
    } else if (strcmp(op, "allocate") == 0) {
        result(__wasi_fd_allocate(fdarg(1), num(2), num(3)));
    } else if (strcmp(op, "renumber") == 0) {
        result(__wasi_fd_renumber(fdarg(1), fdarg(2)));
    } else if (strcmp(op, "readdir") == 0) {
        size_t n = num(3);
        if (n > sizeof buf) fail("buffer too large");
        __wasi_size_t used = 0;
        e = __wasi_fd_readdir(fdarg(1), buf, n, num(2), &used);
        result(e);
        if (e == 0) {
            int count = 0;
            printf(" used=%lu", (unsigned long)used);
            printdirents(fdarg(1), buf, used, num(2), &count);
        }
    } else if (strcmp(op, "ls") == 0) {
        /* As wasi-libc's readdir: read from a cookie, and read again from
         * the last whole entry's cookie while the buffer comes back full. */
        size_t n = num(2);
        if (n > sizeof buf) fail("buffer too large");
        uint64_t cookie = 0;
        int count = 0;
        for (int calls = 0; calls < 10000; calls++) {
            __wasi_size_t used = 0;
            e = __wasi_fd_readdir(fdarg(1), buf, n, cookie, &used);
            if (e != 0) break;
            int before = count;
            cookie = printdirents(fdarg(1), buf, used, cookie, &count);
            if (used < n) break;
            if (count == before) {
                printf(" [no progress]");
                break;
            }
        }
        result(e);
        printf(" count=%d", count);
    } else if (strcmp(op, "prestat") == 0) {
        __wasi_prestat_t ps;
        char name[256];
        e = __wasi_fd_prestat_get(fdarg(1), &ps);
        if (e == 0 && ps.u.dir.pr_name_len >= sizeof name) fail("preopen name too long");
        if (e == 0) e = __wasi_fd_prestat_dir_name(fdarg(1), (uint8_t *)name, ps.u.dir.pr_name_len);
        result(e);
        if (e == 0) printf(" name=%.*s", (int)ps.u.dir.pr_name_len, name);
    } else if (strcmp(op, "mkdir") == 0) {
        result(__wasi_path_create_directory(fdarg(1), arg(2)));
    } else if (strcmp(op, "rmdir") == 0) {
        result(__wasi_path_remove_directory(fdarg(1), arg(2)));
    } else if (strcmp(op, "unlink") == 0) {
        result(__wasi_path_unlink_file(fdarg(1), arg(2)));
    } else if (strcmp(op, "rename") == 0) {
        result(__wasi_path_rename(fdarg(1), arg(2), fdarg(3), arg(4)));
    } else if (strcmp(op, "link") == 0) {
        result(__wasi_path_link(fdarg(1), lookup(2), arg(3), fdarg(4), arg(5)));
    } else if (strcmp(op, "symlink") == 0) {
        result(__wasi_path_symlink(arg(1), fdarg(2), arg(3)));
    } else if (strcmp(op, "readlink") == 0) {
        size_t n = num(3);
        if (n > sizeof buf) fail("buffer too large");
        __wasi_size_t used = 0;
        e = __wasi_path_readlink(fdarg(1), arg(2), buf, n, &used);
        result(e);
        if (e == 0) {
            printf(" n=%lu ", (unsigned long)used);
            printdata(buf, used);
        }
    } else if (strcmp(op, "stat") == 0) {
        __wasi_filestat_t st;
        e = __wasi_path_filestat_get(fdarg(1), lookup(2), arg(3), &st);
        result(e);
        if (e == 0) printstat(&st);
    } else if (strcmp(op, "utimes") == 0) {
        result(__wasi_path_filestat_set_times(fdarg(1), lookup(2), arg(3), num(4), num(5), fstflags(6)));
    } else if (strcmp(op, "libcls") == 0) {
        DIR *d = opendir(arg(1));
        if (!d) {
            printf(" => errno %s", strerror(errno));
            return;
        }
        for (int pass = 1; pass <= 2; pass++) {
            printf(" pass%d:", pass);
            struct dirent *de;
            errno = 0;
            while ((de = readdir(d)) != NULL) printf(" %s", de->d_name);
            if (errno) printf(" [%s]", strerror(errno));
            rewinddir(d);
        }
        closedir(d);
    } else {
        fail("unknown operation");
    }
}

int main(void) {
    size_t n = fread(script, 1, sizeof script - 1, stdin);
    script[n] = 0;
    findpreopens();
    for (char *p = script, *next; *p; p = next) {
        next = strchr(p, '\n');
        if (next) *next++ = 0;
        else next = p + strlen(p);
        if (strlen(p) >= sizeof line) fail("line too long");
        strcpy(line, p);
        fputs(p, stdout);
        char *s = line;
        escaping = *s == '!';
        if (*s == '!' || *s == '~') s++;
        ntok = 0;
        /* A token starting with '#' starts a comment. */
        for (char *t = strtok(s, " \t"); t && t[0] != '#' && ntok < MAXTOK; t = strtok(NULL, " \t")) tok[ntok++] = t;
        if (ntok > 0 && tok[0][0] != '#') run();
        putchar('\n');
    }
    return 0;
}
