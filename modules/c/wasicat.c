/*
 * wasicat: a small WASI command built with clang + wasi-libc, used to test
 * that wasmpool runs modules from a non-Go toolchain.
 *
 *   (no args)      copy stdin to stdout, exit 0
 *   -a ARGS...     print each ARG on its own line
 *   -e NAME        print getenv(NAME) and "\n" (exit 1 if unset)
 *   -f PATH        print the file's contents exactly (exit 1 on error)
 *   -x N           exit with code N
 *   -s TEXT        write TEXT to stderr, exit 0
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(FILE *in, FILE *out) {
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (fwrite(buf, 1, n, out) != n) return -1;
    }
    return ferror(in) ? -1 : 0;
}

static int usage(void) {
    fputs("usage: wasicat [-a ARGS...|-e NAME|-f PATH|-x N|-s TEXT]\n", stderr);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        if (copy(stdin, stdout) != 0) {
            fprintf(stderr, "wasicat: %s\n", strerror(errno));
            return 1;
        }
        return fflush(stdout) == 0 ? 0 : 1;
    }
    const char *opt = argv[1];
    if (strcmp(opt, "-a") == 0) {
        for (int i = 2; i < argc; i++) puts(argv[i]);
        return 0;
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
    if (strcmp(opt, "-f") == 0) {
        FILE *f = fopen(arg, "rb");
        if (f == NULL) {
            fprintf(stderr, "wasicat: %s: %s\n", arg, strerror(errno));
            return 1;
        }
        int rc = copy(f, stdout);
        int err = errno;
        fclose(f);
        if (rc != 0) {
            fprintf(stderr, "wasicat: %s: %s\n", arg, strerror(err));
            return 1;
        }
        return 0;
    }
    if (strcmp(opt, "-x") == 0) {
        return atoi(arg);
    }
    if (strcmp(opt, "-s") == 0) {
        fputs(arg, stderr);
        return 0;
    }
    return usage();
}
