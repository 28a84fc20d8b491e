#!/usr/bin/env bash
# Builds modules/assemblyscript/wasicat.ts into testdata/assemblyscript/
# wasicat.wasm (a WASI preview-1 command), and caps.ts, the example of
# the AssemblyScript SDK (guest/assemblyscript), into caps.wasm (a
# reactor whose exports are wasmpool tasks). Needs Node.js and npm: the
# compiler (assemblyscript) and the WASI shim (@assemblyscript/wasi-shim) are
# installed from the npm registry into modules/assemblyscript/node_modules
# (not committed) at the versions pinned by package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x node_modules/.bin/asc ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

mkdir -p ../../testdata/assemblyscript
node_modules/.bin/asc wasicat.ts \
  --config ./node_modules/@assemblyscript/wasi-shim/asconfig.json \
  --optimize \
  -o ../../testdata/assemblyscript/wasicat.wasm
chmod 0644 ../../testdata/assemblyscript/wasicat.wasm

# A reactor: the shim's config exports the start function as _start, which
# would make it a command; as _initialize the host runs it once per instance.
node_modules/.bin/asc caps.ts \
  --config ./node_modules/@assemblyscript/wasi-shim/asconfig.json \
  --exportStart _initialize \
  --optimize \
  -o ../../testdata/assemblyscript/caps.wasm
chmod 0644 ../../testdata/assemblyscript/caps.wasm
