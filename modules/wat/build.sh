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
