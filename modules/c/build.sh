#!/usr/bin/env bash
# Builds modules/c/wasicat.c into testdata/c/wasicat.wasm (a WASI command) and
# modules/c/kernels.c into testdata/c/kernels.wasm (a reactor of benchmark tasks)
# and modules/c/wasifs.c into testdata/c/wasifs.wasm (a WASI filesystem driver).
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
