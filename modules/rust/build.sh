#!/usr/bin/env bash
# Builds modules/rust/wasicat.rs into testdata/rust/wasicat.wasm (a WASI
# preview-1 command). std only, no cargo, no crates: rustc and the wasm32-wasi
# standard library are all it needs. On Debian 12 both come from apt:
#   apt-get install rustc libstd-rust-dev-wasm32
# RUSTC picks the compiler (default /usr/bin/rustc, Debian's: a rustup
# toolchain has no wasm32-wasi std unless `rustup target add wasm32-wasip1`,
# in which case set RUSTC=rustc TARGET=wasm32-wasip1).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUSTC=${RUSTC:-/usr/bin/rustc}
TARGET=${TARGET:-wasm32-wasi}

mkdir -p testdata/rust
"$RUSTC" --edition 2021 --target "$TARGET" -C opt-level=s -C strip=symbols \
  --remap-path-prefix "$PWD=." \
  -o testdata/rust/wasicat.wasm modules/rust/wasicat.rs
chmod 0644 testdata/rust/wasicat.wasm
