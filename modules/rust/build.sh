#!/usr/bin/env bash
# Builds modules/rust/wasicat.rs into testdata/rust/wasicat.wasm (a WASI
# preview-1 command), and modules/rust/caps.rs, the example of the
# Rust SDK (guest/rust, crate wasmpool), into testdata/rust/caps.wasm
# (a cdylib whose exports are wasmpool tasks). std only, no cargo, no crates: rustc and the wasm32-wasi
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

# The SDK is compiled as an rlib of its own, as cargo would, and linked into
# the example.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$RUSTC" --edition 2021 --target "$TARGET" -C opt-level=s \
  --remap-path-prefix "$PWD=." \
  --crate-type rlib --crate-name wasmpool -o "$tmp/libwasmpool.rlib" guest/rust/src/lib.rs
"$RUSTC" --edition 2021 --target "$TARGET" -C opt-level=s -C strip=symbols \
  --remap-path-prefix "$PWD=." \
  --crate-type cdylib --extern wasmpool="$tmp/libwasmpool.rlib" \
  -o testdata/rust/caps.wasm modules/rust/caps.rs
chmod 0644 testdata/rust/caps.wasm
