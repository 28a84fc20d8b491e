#!/usr/bin/env bash
# Builds modules/c/wasicat.c into testdata/c/wasicat.wasm (a WASI command),
# modules/c/kernels.c into testdata/c/kernels.wasm (a reactor of benchmark tasks)
# and modules/c/ctool.c into testdata/c/ctool.wasm (a command built as a debug
# build is, for the CLI's tests).
# Needs clang, wasm-ld, wasi-libc and libclang-rt-*-dev-wasm32 (Debian layout:
# headers in /usr/include/wasm32-wasi, libs in /usr/lib/wasm32-wasi).
set -euo pipefail
cd "$(dirname "$0")/../.."

CC=${CC:-clang}
SYSROOT=${WASI_SYSROOT:-/usr}

mkdir -p testdata/c
"$CC" --target=wasm32-wasi --sysroot="$SYSROOT" -O2 -Wall -Wextra \
  -Wl,--strip-all \
  -o testdata/c/wasicat.wasm modules/c/wasicat.c
chmod 0644 testdata/c/wasicat.wasm

# kernels: the C versions of the Go CPU benchmarks (fib, sha256, mixed), a
# reactor whose exports are wasmpool tasks.
"$CC" --target=wasm32-wasi --sysroot="$SYSROOT" -O2 -Wall -Wextra -mexec-model=reactor \
  -Wl,--strip-all \
  -o testdata/c/kernels.wasm modules/c/kernels.c
chmod 0644 testdata/c/kernels.wasm

# ctool: with its name section and DWARF (-g), so that a trap's stack names
# functions and source lines; paths relative to the repository root.
"$CC" --target=wasm32-wasi --sysroot="$SYSROOT" -O2 -g -fdebug-compilation-dir=. -Wall -Wextra \
  -o testdata/c/ctool.wasm modules/c/ctool.c
chmod 0644 testdata/c/ctool.wasm
