#!/usr/bin/env bash
# Builds the C fixtures under testdata/c: wasicat (a WASI command), kernels
# (a reactor of benchmark tasks), wasifs (a WASI filesystem driver), nbody (a
# CPU-bound command), ctool (a command built as a debug build is, for the
# CLI's tests) and caps (the example of the C SDK, guest/c/wasmpool.h).
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

# wasifs: drives the WASI filesystem calls one by one from a script
# (engine/wasifs_test.go, the differential test of the mounts).
"$CC" --target=wasm32-wasi --sysroot="$SYSROOT" -O2 -Wall -Wextra \
  -Wl,--strip-all \
  -o testdata/c/wasifs.wasm modules/c/wasifs.c
chmod 0644 testdata/c/wasifs.wasm

# nbody: a CPU-bound WASI command, for `wasmpool run` against `wazero run`.
"$CC" --target=wasm32-wasi --sysroot="$SYSROOT" -O2 -Wall -Wextra \
  -Wl,--strip-all \
  -o testdata/c/nbody.wasm modules/c/nbody.c -lm
chmod 0644 testdata/c/nbody.wasm

# ctool: with its name section and DWARF (-g), so that a trap's stack names
# functions and source lines; paths relative to the repository root.
"$CC" --target=wasm32-wasi --sysroot="$SYSROOT" -O2 -g -fdebug-compilation-dir=. -Wall -Wextra \
  -o testdata/c/ctool.wasm modules/c/ctool.c
chmod 0644 testdata/c/ctool.wasm

# caps: the C SDK's example (guest/c/wasmpool.h), a reactor with the
# exports and outputs of modules/go/caps.
"$CC" --target=wasm32-wasi --sysroot="$SYSROOT" -O2 -Wall -Wextra -Werror -mexec-model=reactor \
  -I guest/c -Wl,--strip-all \
  -o testdata/c/caps.wasm modules/c/caps.c
chmod 0644 testdata/c/caps.wasm
