/*
 * ctool: a small C command (clang + wasi-libc) that behaves as the real
 * tools users run through wasmpool do, for the CLI's tests and the streaming
 * benchmark. Built with its name section and DWARF, as a debug build is, so
 * that a trap's wasm stack names functions and source lines.
 *
 *   cat            copy stdin to stdout a byte at a time with getchar and
 *                  putchar (stdio-buffered, as a filter written the simple
 *                  way is)
 *   wc PATH...     print "LINES WORDS BYTES PATH" for each file, as wc does
 *   fail TEXT      print TEXT on stdout, flush it, exit 1
 *   nomem [TEXT]   print TEXT, then allocate until malloc returns NULL, say
 *                  so on stderr and exit 3: a program that handles running
 *                  out of memory
 *   trap [TEXT]    print TEXT, then trap (unreachable) three calls deep
 *   spin TEXT      print TEXT on stdout, flush it, then compute a naive
 *                  fib(90), which would take centuries
 *   sleep TEXT     print TEXT on stdout, flush it, then sleep for an hour
 *
 * A usage error exits 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage(void) {
    fputs("usage: ctool cat|wc PATH...|fail TEXT|nomem [TEXT]|trap [TEXT]|spin TEXT|sleep TEXT\n", stderr);
    return 2;
}

static int cat(void) {
    int c;
    while ((c = getchar()) != EOF) {
        if (putchar(c) == EOF) return 1;
    }
    return ferror(stdin) ? 1 : 0;
}

static int wc(int n, char **paths) {
    int status = 0;
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (f == NULL) {
            perror(paths[i]);
            status = 1;
            continue;
        }
        long lines = 0, words = 0, bytes = 0;
        int c, inword = 0;
        while ((c = getc(f)) != EOF) {
            bytes++;
            if (c == '\n') lines++;
            if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
                inword = 0;
            } else if (!inword) {
                inword = 1;
                words++;
            }
        }
        fclose(f);
        printf("%ld %ld %ld %s\n", lines, words, bytes, paths[i]);
    }
    return status;
}

/* Each block points at the one before, so that the compiler cannot drop
 * the allocations as unused. */
static void *volatile blocks;

static int nomem(void) {
    size_t total = 0;
    for (;;) {
        void **p = malloc(1 << 20);
        if (p == NULL) break;
        memset(p, 1, 1 << 20);
        *p = blocks;
        blocks = p;
        total += 1 << 20;
    }
    fprintf(stderr, "ctool: out of memory after %zu MiB\n", total >> 20);
    return 3;
}

/* Not inlined, so that the stack shows each frame. */
__attribute__((noinline)) static void crash(int depth) {
    if (depth == 0) __builtin_trap();
    crash(depth - 1);
}

__attribute__((noinline)) static void checkInput(int depth) { crash(depth); }

/* fib is volatile-guarded so that clang keeps both recursive calls: no
 * loop, so only a check at function entry can stop it. */
static volatile int keep = 1;

__attribute__((noinline)) static unsigned long long fib(unsigned long long n) {
    if (n < 2 || !keep) return n;
    return fib(n - 1) + fib(n - 2);
}

/* say prints the optional TEXT argument and flushes it: what a program
 * wrote before it failed must reach whoever runs it. */
static void say(int argc, char **argv) {
    if (argc == 3) {
        puts(argv[2]);
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "cat") == 0 && argc == 2) return cat();
    if (strcmp(cmd, "wc") == 0) return wc(argc - 2, argv + 2);
    if (argc > 3) return usage();
    say(argc, argv);
    if (strcmp(cmd, "fail") == 0 && argc == 3) return 1;
    if (strcmp(cmd, "nomem") == 0) return nomem();
    if (strcmp(cmd, "trap") == 0) {
        checkInput(2);
        return 0;
    }
    if (strcmp(cmd, "spin") == 0 && argc == 3) {
        printf("%llu\n", fib(90));
        return 0;
    }
    if (strcmp(cmd, "sleep") == 0 && argc == 3) {
        sleep(3600);
        return 0;
    }
    return usage();
}
