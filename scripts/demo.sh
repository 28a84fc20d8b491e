#!/usr/bin/env bash
# demo.sh BIN MODDIR — the main job's demo (make demo).
#
# Runs a few tasks through the wasmpool CLI at BIN, using the Go guest modules
# built into MODDIR and the committed hand-written modules in testdata/wat:
# a result, a trap caught, a timeout enforced (in this process, and by killing
# a worker process), a map in process mode, a batch through both modes, and an
# inspect. Every step checks the exit status (and
# the output where it is known); the script exits 0 only if all behaved.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 BIN MODDIR" >&2
	exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WAT=$ROOT/testdata/wat
for f in "$1" "$2/upper.wasm" "$2/fib.wasm" "$2/hostile.wasm" "$WAT/divzero.wasm" "$WAT/spin.wasm"; do
	if [ ! -e "$f" ]; then
		echo "demo: $f is missing (run 'make build modules' first)" >&2
		exit 1
	fi
done
# Absolute paths: the batch file below lives in a temporary directory.
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
MODDIR=$(cd "$2" && pwd)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ -t 1 ]; then
	BOLD=$'\033[1m' GREEN=$'\033[32m' RED=$'\033[31m' RESET=$'\033[0m'
else
	BOLD='' GREEN='' RED='' RESET=''
fi

failures=0
step() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$RESET"; }
ok() { printf '%s✔ %s%s\n' "$GREEN" "$*" "$RESET"; }
bad() {
	printf '%s✘ %s%s\n' "$RED" "$*" "$RESET" >&2
	failures=$((failures + 1))
}

# expect WANT_STATUS WANT_STDOUT CMD... — runs CMD (stdin from $STDIN, or
# nothing), shows its stdout and stderr, and checks the exit status and, unless
# WANT_STDOUT is "*", the exact stdout.
STDIN=/dev/null
expect() {
	local want_status=$1 want_out=$2
	shift 2
	printf '$ %s\n' "${*//$ROOT\//}"
	local status=0
	"$@" <"$STDIN" >"$TMP/out" 2>"$TMP/err" || status=$?
	cat "$TMP/out"
	if [ -s "$TMP/out" ] && [ "$(tail -c1 "$TMP/out")" != "" ]; then
		echo
	fi
	if [ -s "$TMP/err" ]; then
		sed 's/^/  stderr│ /' "$TMP/err"
	fi
	echo "  (exit status $status)"
	if [ "$status" != "$want_status" ]; then
		bad "expected exit status $want_status, got $status"
		return
	fi
	if [ "$want_out" != "*" ] && [ "$(cat "$TMP/out")" != "$want_out" ]; then
		bad "expected output: $want_out"
		return
	fi
	ok "as expected"
}

step "run: an SDK task (upper) turns its input into a result"
printf 'hello, sandbox' >"$TMP/greeting.txt"
expect 0 "HELLO, SANDBOX" "$BIN" run "$MODDIR/upper.wasm" --func upper --input "$TMP/greeting.txt"

step "run: a guest that divides by zero traps; the trap is caught and reported (status 70)"
expect 70 "" "$BIN" run "$WAT/divzero.wasm" --func run

step "run: a guest stuck in an infinite loop is stopped by --timeout 200ms (status 124)"
expect 124 "" "$BIN" run "$WAT/spin.wasm" --func spin --timeout 200ms

step "run --isolation process: a Go guest spins at full speed in a worker process; --timeout kills that process (status 124)"
expect 124 "" "$BIN" run "$MODDIR/hostile.wasm" --func spin --timeout 200ms --isolation process

step "map: fib over several inputs on a pool of 4 process-like workers (fresh sandbox per task)"
printf '1\n10\n20\n30\n' >"$TMP/ns.txt"
STDIN=$TMP/ns.txt
expect 0 $'1\t1\n10\t55\n20\t6765\n30\t832040' "$BIN" map "$MODDIR/fib.wasm" --func fib --mode process --workers 4 --lines - --progress never
STDIN=/dev/null

step "map: a C tool (wc) over a directory tree, each file passed by name ({}) through a read-only mount"
(cd "$ROOT" && expect 0 "*" "$BIN" map testdata/c/ctool.wasm examples/texts --glob '*.txt' --mount .:/:ro --progress never -- wc {})

step "batch: one task per JSON line, each its own module, through both modes"
cat >"$TMP/tasks.jsonl" <<JSON
{"module": "$MODDIR/upper.wasm", "func": "upper", "input": "first"}
{"module": "$MODDIR/fib.wasm", "func": "fib", "input": "25"}
{"module": "$WAT/divzero.wasm", "func": "run"}
{"module": "$WAT/spin.wasm", "func": "spin", "timeout": "100ms"}
{"module": "$MODDIR/upper.wasm", "func": "upper", "input": "still runs after the others failed"}
JSON
for mode in thread process; do
	# The first failure in input order is the trap on line 3: status 70.
	expect 70 "*" "$BIN" batch "$TMP/tasks.jsonl" --mode "$mode" --workers 2 --progress never
	oks=$(grep -c '"ok":true' "$TMP/out" || true)
	kinds=$(grep -o '"error_kind":"[a-z_]*"' "$TMP/out" | cut -d'"' -f4 | sort | tr '\n' ' ')
	echo "  summary ($mode): $oks ok, failed: ${kinds:-none}"
	if [ "$oks" != 3 ] || [ "$kinds" != "timeout trap " ]; then
		bad "expected 3 ok and a trap and a timeout"
	fi
done

step "inspect: what a module imports and exports"
expect 0 "*" "$BIN" inspect "$MODDIR/upper.wasm"

echo
if [ "$failures" -ne 0 ]; then
	printf '%sdemo: %d step(s) did not behave as expected%s\n' "$RED" "$failures" "$RESET" >&2
	exit 1
fi
printf '%sdemo: every step behaved as expected%s\n' "$GREEN" "$RESET"
