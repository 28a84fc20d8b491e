/*
 * wasicat: a small WASI command built with clang + wasi-libc, used to test
 * that wasmpool runs modules from a non-Go toolchain exactly as `wazero run`
 * does. modules/rust/wasicat.rs and modules/assemblyscript/wasicat.ts speak
 * the same command line, so one table of cases drives all three.
 *
 *   (no args)      copy stdin to stdout as it comes (like cat), exit 0
 *   -a ARGS...     print argv[0] and each ARG, one per line
 *   -e NAME        print getenv(NAME) and "\n" (exit 1 if unset)
 *   -E             print the whole environment, one KEY=VALUE a line, in order
 *   -f PATH        print the file's contents exactly (exit 1 on error)
 *   -w PATH TEXT   create or truncate PATH and write TEXT (exit 1 on error)
 *   -x N           exit with code N
 *   -s TEXT        write TEXT to stderr, exit 0
 *   -t             trap (unreachable)
 *
 * A usage error exits 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

extern char **environ;

/* Static, not on the stack: wasm-ld's default stack is 64 KiB in all. */
static char buf[65536];

/* copy writes each chunk as soon as it is read (no stdio buffering), so
 * that, like cat, it answers an interactive stdin line by line. */
static int copy(int in, int out) {
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) return -1;
            off += w;
        }
    }
    return n < 0 ? -1 : 0;
}

static int usage(void) {
    fputs("usage: wasicat [-a ARGS...|-e NAME|-E|-f PATH|-w PATH TEXT|-x N|-s TEXT|-t]\n", stderr);
    return 2;
}

static int fail(const char *what, int err) {
    fprintf(stderr, "wasicat: %s: %s\n", what, strerror(err));
    return 1;
}

static int cat_file(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(path, errno);
    int rc = copy(fd, STDOUT_FILENO);
    int err = errno;
    close(fd);
    return rc != 0 ? fail(path, err) : 0;
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) return fail(path, errno);
    size_t n = strlen(text);
    if (fwrite(text, 1, n, f) != n) {
        int err = errno;
        fclose(f);
        return fail(path, err);
    }
    return fclose(f) == 0 ? 0 : fail(path, errno);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        return copy(STDIN_FILENO, STDOUT_FILENO) == 0 ? 0 : fail("stdin", errno);
    }
    const char *opt = argv[1];
    if (strcmp(opt, "-a") == 0) {
        puts(argv[0]);
        for (int i = 2; i < argc; i++) puts(argv[i]);
        return 0;
    }
    if (strcmp(opt, "-E") == 0 && argc == 2) {
        for (char **e = environ; *e != NULL; e++) puts(*e);
        return 0;
    }
    if (strcmp(opt, "-t") == 0 && argc == 2) {
        fflush(stdout);
        __builtin_trap();
    }
    if (strcmp(opt, "-w") == 0 && argc == 4) {
        return write_file(argv[2], argv[3]);
    }
    if (argc != 3) return usage();
    const char *arg = argv[2];
    if (strcmp(opt, "-e") == 0) {
        const char *v = getenv(arg);
        if (v == NULL) {
            fprintf(stderr, "wasicat: %s is not set\n", arg);
            return 1;
        }
        printf("%s\n", v);
        return 0;
    }
    if (strcmp(opt, "-f") == 0) return cat_file(arg);
    if (strcmp(opt, "-x") == 0) return atoi(arg);
    if (strcmp(opt, "-s") == 0) {
        fputs(arg, stderr);
        return 0;
    }
    return usage();
}
