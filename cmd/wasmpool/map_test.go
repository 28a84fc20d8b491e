package main

import (
	"bufio"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMapInOrder(t *testing.T) {
	upper := gomod(t, "upper")
	files := writeFiles(t, "one", "two\n", "three")
	for _, mode := range []string{"thread", "process"} {
		t.Run(mode, func(t *testing.T) {
			args := append([]string{"map", upper, "--func", "upper", "--mode", mode, "--workers", "2"}, files...)
			r := cli(t, "", args...)
			assert.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, "ONE\nTWO\nTHREE\n", r.stdout)
			assert.Empty(t, r.stderr)
		})
	}
}

func TestMapUnordered(t *testing.T) {
	files := writeFiles(t, "one", "two", "three", "four", "five")
	args := append([]string{"map", gomod(t, "upper"), "--func", "upper", "--unordered", "--workers", "3"}, files...)
	r := cli(t, "", args...)
	assert.Equal(t, exitOK, r.code, r.stderr)
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	sort.Strings(got)
	assert.Equal(t, []string{"FIVE", "FOUR", "ONE", "THREE", "TWO"}, got)
}

func TestMapLines(t *testing.T) {
	r := cli(t, "10\n1\n20\n", "map", gomod(t, "fib"), "--func", "fib", "--lines", "-", "--mode", "process")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "55\n1\n6765\n", r.stdout)

	lines := writeFiles(t, "a\r\nb\nc")
	r = cli(t, "", "map", gomod(t, "upper"), "--func", "upper", "--lines", lines[0])
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "A\nB\nC\n", r.stdout)
}

func TestMapFailures(t *testing.T) {
	fib := gomod(t, "fib")
	r := cli(t, "5\nbad\n6\n", "map", fib, "--func", "fib", "--lines", "-")
	assert.Equal(t, exitFailed, r.code)
	assert.Equal(t, "5\n8\n", r.stdout, "the other inputs still run")
	assert.Contains(t, r.stderr, "input line 2: ")
	assert.Contains(t, r.stderr, "fib.wasm")
	assert.Contains(t, r.stderr, "1 of 3 inputs failed")
}

func TestMapFailFast(t *testing.T) {
	// In input order, fail-fast prints what came before the failure, the
	// failure, and nothing after: the rest is cancelled.
	in := "1\n2\nbad\n" + strings.Repeat("20\n", 50)
	r := cli(t, in, "map", gomod(t, "fib"), "--func", "fib", "--lines", "-", "--fail-fast", "--workers", "2")
	assert.Equal(t, exitFailed, r.code)
	assert.Equal(t, "1\n1\n", r.stdout)
	assert.Contains(t, r.stderr, "input line 3: ")

	// The status is that of the failure: here a trap.
	files := writeFiles(t, "x", "y")
	args := append([]string{"map", wat(t, "divzero"), "--func", "run", "--fail-fast"}, files...)
	r = cli(t, "", args...)
	assert.Equal(t, exitTrap, r.code, r.stderr)
}

func TestMapJSONL(t *testing.T) {
	r := cli(t, "7\nnope\n", "map", gomod(t, "fib"), "--func", "fib", "--lines", "-", "--format", "jsonl", "--unordered")
	assert.Equal(t, exitFailed, r.code)
	byLine := map[int]mapLine{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var ml mapLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ml), sc.Text())
		byLine[ml.Line] = ml
	}
	require.Len(t, byLine, 2)
	ok, bad := byLine[1], byLine[2]
	assert.True(t, ok.OK)
	assert.Equal(t, "7", ok.Input)
	require.NotNil(t, ok.Text)
	assert.Equal(t, "13", strings.TrimSpace(*ok.Text))
	assert.False(t, bad.OK)
	assert.Equal(t, "nope", bad.Input)
	assert.Equal(t, kindTask, bad.ErrorKind)
	assert.NotEmpty(t, bad.Error)
}

func TestMapCommand(t *testing.T) {
	// A WASI command needs no --func: each input is its stdin.
	files := writeFiles(t, "abc", "def")
	args := append([]string{"map", wat(t, "hello"), "--mode", "process"}, files...)
	r := cli(t, "", args...)
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "hello from wasm\nhello from wasm\n", r.stdout)
}

func TestMapProgress(t *testing.T) {
	files := writeFiles(t, "a", "b", "c")
	args := append([]string{"map", gomod(t, "upper"), "--func", "upper", "--progress", "always"}, files...)
	r := cli(t, "", args...)
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "A\nB\nC\n", r.stdout, "progress never touches stdout")
	assert.Contains(t, r.stderr, "3/3")
}

func TestMapUsage(t *testing.T) {
	upper := gomod(t, "upper")
	files := writeFiles(t, "a")
	for name, args := range map[string][]string{
		"no inputs":     {"map", upper, "--func", "upper"},
		"no func":       {"map", upper, files[0]},
		"missing input": {"map", upper, "--func", "upper", "/no/such/input.txt"},
		"bad mode":      {"map", upper, "--func", "upper", "--mode", "fiber", files[0]},
		"bad format":    {"map", upper, "--func", "upper", "--format", "xml", files[0]},
		"bad progress":  {"map", upper, "--func", "upper", "--progress", "sometimes", files[0]},
		"both inputs":   {"map", upper, "--func", "upper", "--lines", "-", files[0]},
	} {
		t.Run(name, func(t *testing.T) {
			r := cli(t, "", args...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			assert.True(t, strings.HasPrefix(r.stderr, "wasmpool: "), r.stderr)
		})
	}
}

func TestMapInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	files := writeFiles(t, "a", "b")
	args := append([]string{"map", gomod(t, "upper"), "--func", "upper"}, files...)
	r := cliContext(t, ctx, "", args...)
	assert.Equal(t, exitCancelled, r.code, r.stderr)
}

func TestMapPreinitialize(t *testing.T) {
	counter := gomod(t, "counter")
	draws := func(extra ...string) []string {
		t.Helper()
		args := append([]string{"map", counter, "--func", "rand", "--mode", "process", "--workers", "1", "--lines", "-"}, extra...)
		r := cli(t, "a\nb\nc\n", args...)
		require.Equal(t, exitOK, r.code, r.stderr)
		return strings.Fields(r.stdout)
	}
	// Each process-mode task is a fresh instance; with --preinitialize they
	// all start from one initialisation, and share its random seed.
	pre := draws("--preinitialize")
	require.Len(t, pre, 3)
	assert.Equal(t, []string{pre[0], pre[0], pre[0]}, pre)
	plain := draws()
	require.Len(t, plain, 3)
	assert.NotEqual(t, plain[0], plain[1])
}
