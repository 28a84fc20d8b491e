package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunIsolationProcess(t *testing.T) {
	t.Parallel()
	spin := gomod(t, "hostile")
	r := cli(t, "", "run", spin, "--func", "spin", "--timeout", "200ms", "--isolation", "subprocess")
	assert.Equal(t, exitTimeout, r.code)
	// Killed, or (on a slow machine) stopped by the worker process while
	// the instance was still being built.
	assert.True(t, strings.HasPrefix(singleLine(t, r.stderr), `wasmpool: module "hostile.wasm": function "spin" timed out after 200ms`), r.stderr)

	r = cli(t, "", "run", wat(t, "exit"), "--isolation", "process", "--", "a", "b", "c")
	assert.Equal(t, 3, r.code, "a command's exit code passes through: %s", r.stderr)

	r = cli(t, "abc", "run", gomod(t, "upper"), "--func", "upper", "--input", "-", "--isolation", "process")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "ABC", r.stdout)

	r = cli(t, "", "run", wat(t, "divzero"), "--func", "run", "--isolation", "process")
	assert.Equal(t, exitTrap, r.code)
	assert.Contains(t, singleLine(t, r.stderr), "divide by zero")
}

func TestMapAndBatchIsolationProcess(t *testing.T) {
	t.Parallel()
	fib := gomod(t, "fib")
	lines := "10\n20\nnope\n25\n"
	for _, mode := range []string{"thread", "process"} {
		t.Run(mode, func(t *testing.T) {
			want := cli(t, lines, "map", fib, "--func", "fib", "--lines", "-", "--mode", mode, "--format", "jsonl", "--workers", "2")
			got := cli(t, lines, "map", fib, "--func", "fib", "--lines", "-", "--mode", mode, "--format", "jsonl", "--workers", "2",
				"--isolation", "process")
			assert.Equal(t, want.code, got.code)
			assert.Equal(t, exitFailed, got.code, "the bad line fails: %s", got.stderr)
			assert.Equal(t, stripDurations(want.stdout), stripDurations(got.stdout))
			assert.Contains(t, got.stdout, `"output":"75025"`)
		})
	}

	// The echo line has the one worker process compile hostile.wasm (its own
	// way, on a fresh machine under -race: longer than the spin's timeout)
	// before the spin, so that the spin's timeout finds the guest spinning.
	hostile := gomod(t, "hostile")
	batch := `{"module": "` + fib + `", "func": "fib", "input": "30"}` + "\n" +
		`{"module": "` + hostile + `", "func": "echo", "input": "warm"}` + "\n" +
		`{"module": "` + hostile + `", "func": "spin", "timeout": "100ms"}` + "\n"
	r := cli(t, batch, "batch", "-", "--isolation", "process", "--workers", "1")
	assert.Equal(t, exitTimeout, r.code, r.stderr)
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if assert.Len(t, out, 3) {
		assert.Contains(t, out[0], `"output":"832040"`)
		assert.Contains(t, out[1], `"output":"warm"`)
		assert.Contains(t, out[2], `"error_kind":"timeout"`)
		// The worker process stops the guest itself: no kill.
		assert.NotContains(t, out[2], `killed`)
	}
}

func TestIsolationUsage(t *testing.T) {
	r := cli(t, "", "map", wat(t, "echo"), "--func", "echo", "--isolation", "vm", "x")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `--isolation: unknown isolation "vm": want in-process or subprocess`)

	// "worker" is the NATS worker; its --child mode (a worker process) is
	// hidden, started by wasmpool itself, and configured over its protocol.
	r = cli(t, "", "worker", "--child", "--workers", "2")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "worker --child takes no other flag (got --workers)")
	r = cli(t, "", "worker", "--help")
	assert.NotContains(t, r.stdout, "--child")
	assert.Contains(t, r.stdout, "--isolation")
	r = cli(t, "", "--help")
	assert.Equal(t, 1, strings.Count(r.stdout, "\n  worker "), "one worker command")
	r = cli(t, "", "run", "--help")
	assert.Contains(t, r.stdout, "--isolation")
}

// stripDurations blanks the one field of a JSON result line that differs
// from run to run.
func stripDurations(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, `"duration_ms":`); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
