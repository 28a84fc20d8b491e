#!/usr/bin/env bash
# Compiles every modules/wat/*.wat into testdata/wat/*.wasm and writes the
# non-WAT fixtures (not_wasm.wasm, truncated.wasm). Needs wabt's wat2wasm.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=testdata/wat
mkdir -p "$out"
for src in modules/wat/*.wat; do
  name=$(basename "$src" .wat)
  wat2wasm "$src" -o "$out/$name.wasm"
done

printf 'this is not a wasm module\n' > "$out/not_wasm.wasm"
head -c 20 "$out/echo.wasm" > "$out/truncated.wasm"

# Hostile declarations no assembler would write (see internal/wasmbin/check.go):
# an import section claiming 2^32-1 entries in 9 bytes, and a function
# declaring 10^8 locals. Before the engine checked them, the first killed the
# host with a fatal out-of-memory and the second cost seconds and gigabytes.
printf '\x00asm\x01\x00\x00\x00\x02\x09\xff\xff\xff\xff\x0f\x01a\x01b\x00\x00' > "$out/count_bomb.wasm"
printf '\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x07\x07\x01\x03run\x00\x00\x0a\x0b\x01\x09\x01\x80\xc2\xd7\x2f\x7e\x41\x00\x0b' > "$out/locals_bomb.wasm"
