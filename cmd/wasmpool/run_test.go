package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunCommand(t *testing.T) {
	r := cli(t, "", "run", wat(t, "hello"))
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "hello from wasm\n", r.stdout)
	assert.Empty(t, r.stderr)
}

func TestRunTimeout(t *testing.T) {
	r := cli(t, "", "run", wat(t, "spin"), "--func", "spin", "--timeout", "50ms")
	assert.Equal(t, exitTimeout, r.code)
	line := singleLine(t, r.stderr)
	assert.Contains(t, line, "timed out")
	assert.Contains(t, line, "spin.wasm")
	assert.True(t, strings.HasPrefix(line, "wasmpool: "), line)
}

func TestRunTrap(t *testing.T) {
	for _, name := range []string{"divzero", "unreachable"} {
		t.Run(name, func(t *testing.T) {
			r := cli(t, "", "run", wat(t, name), "--func", "run")
			assert.Equal(t, exitTrap, r.code)
			line := singleLine(t, r.stderr)
			assert.Contains(t, line, name+".wasm")
			assert.Contains(t, line, "trapped")
		})
	}
	r := cli(t, "", "run", wat(t, "divzero"), "--func", "run")
	assert.Contains(t, r.stderr, "divide by zero")
}

func TestRunExitCodePassesThrough(t *testing.T) {
	r := cli(t, "", "run", wat(t, "exit"), "--", "a", "b", "c")
	assert.Equal(t, 3, r.code, r.stderr)
	r = cli(t, "", "run", wat(t, "exit"))
	assert.Equal(t, exitOK, r.code, r.stderr)
}

func TestRunSDKTask(t *testing.T) {
	upper := gomod(t, "upper")
	r := cli(t, "abc", "run", upper, "--func", "upper", "--input", "-")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "ABC", r.stdout)

	in := writeFiles(t, "from a file")
	r = cli(t, "", "run", upper, "--func", "upper", "--input", in[0])
	assert.Equal(t, "FROM A FILE", r.stdout)

	// echo hello | wasmpool run upper.wasm --func upper: a pipe is the input.
	r = cli(t, "hello", "run", upper, "--func", "upper")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "HELLO", r.stdout)
}

// The output limit caps what the host holds, not what passes through: run
// of a command streams 2 MiB through a getchar/putchar filter over a 1 MiB
// limit, as wazero run would, while the same output collected (in a worker
// process, which sends it back whole) is held to the limit.
func TestRunPassesThroughMoreThanTheOutputLimit(t *testing.T) {
	t.Parallel()
	// The limit is set low: each megabyte through the race detector's
	// copies costs about a second.
	big := strings.Repeat("0123456789abcdef", 2<<20/16)
	r := cli(t, big, "run", ctool(t), "--output-limit", "1MiB", "--", "cat")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.True(t, r.stdout == big, "stdout is %d bytes, want %d", len(r.stdout), len(big))

	r = cli(t, big, "run", ctool(t), "--output-limit", "1MiB", "--isolation", "process", "--", "cat")
	assert.Equal(t, exitOutputLimit, r.code, r.stderr)
	assert.Contains(t, r.stderr, "output limit exceeded")
}

func TestRunTaskFailure(t *testing.T) {
	r := cli(t, "not a number", "run", gomod(t, "fib"), "--func", "fib", "--input", "-")
	assert.Equal(t, exitFailed, r.code)
	line := singleLine(t, r.stderr)
	assert.Contains(t, line, "fib.wasm")
}

func TestRunWASICommandIO(t *testing.T) {
	cmd := gomod(t, "wasicmd")
	r := cli(t, "piped in", "run", cmd, "--", "upper")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "PIPED IN", strings.TrimSpace(r.stdout))

	// The guest sees only the environment it is given.
	t.Setenv("WASMPOOL_LEAK_CHECK", "host-secret")
	r = cli(t, "", "run", cmd, "--env", "K=V", "--", "env")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "K=V")
	assert.NotContains(t, r.stdout, "host-secret")

	dir := t.TempDir()
	r = cli(t, "", "run", cmd, "--mount", dir+":/data:ro", "--", "ls", "/data")
	assert.Equal(t, exitOK, r.code, r.stderr)
}

func TestRunRawParams(t *testing.T) {
	r := cli(t, "", "run", wat(t, "add"), "--func", "add", "--params", "2,-5")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "-3\n", r.stdout)

	r = cli(t, "", "run", wat(t, "add"), "--func", "add", "--params", "1")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "(i32, i32) -> i32")
}

func TestRunUsageErrors(t *testing.T) {
	add := wat(t, "add")
	cases := map[string][]string{
		"missing file":   {"run", "/no/such/dir/missing.wasm"},
		"no module":      {"run"},
		"unknown flag":   {"run", add, "--bogus"},
		"no function":    {"run", add, "--func", "nope"},
		"not a command":  {"run", add},
		"bad memory":     {"run", add, "--func", "add", "--params", "1,2", "--memory", "lots"},
		"bad env":        {"run", add, "--env", "novalue"},
		"bad mount":      {"run", add, "--mount", "/tmp"},
		"missing mount":  {"run", add, "--mount", "/no/such/dir:/data"},
		"unknown cmd":    {"frobnicate"},
		"params no func": {"run", add, "--params", "1,2"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			r := cli(t, "", args...)
			assert.Equal(t, exitUsage, r.code, r.stderr)
			assert.True(t, strings.HasPrefix(r.stderr, "wasmpool: "), r.stderr)
			assert.LessOrEqual(t, strings.Count(r.stderr, "\n"), 2, r.stderr) // the error, maybe a hint
			assert.Empty(t, r.stdout)
		})
	}
	r := cli(t, "", "run", "/no/such/dir/missing.wasm")
	assert.Contains(t, r.stderr, `module "/no/such/dir/missing.wasm": `)

	// The messages a newcomer meets first, word for word.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "wasmpool: run: missing MODULE\n"},
		{[]string{"batch"}, "wasmpool: batch: missing FILE.jsonl (or - for stdin)\n"},
		{[]string{"run", add, "--func", "add", "--memory", "1KiB"}, "wasmpool: --memory 1KiB: less than one 64KiB page"},
		{[]string{"run", add, "--func", "add", "--memory", "1TiB"}, "wasmpool: --memory 1TiB: over the 4GiB a 32-bit guest can address"},
		{[]string{"run", wat(t, "hello"), "--func", "main"}, `wasmpool: module "hello.wasm" has no exported function "main": it is a WASI command, run without --func`},
		{[]string{"run", add}, `wasmpool: module "add.wasm" is not a WASI command (it has no _start): name a function with --func (exports: add (i32, i32) -> i32)`},
		{[]string{"run", add, "--mount", "/no/such/dir:/data"}, `wasmpool: mount "/no/such/dir": no such file or directory`},
	} {
		r := cli(t, "", c.args...)
		assert.Equal(t, exitUsage, r.code, "%q", c.args)
		assert.True(t, strings.HasPrefix(r.stderr, c.want), "%q:\n got %q\nwant %q", c.args, r.stderr, c.want)
	}
}

func TestRunBadModule(t *testing.T) {
	r := cli(t, "", "run", wat(t, "not_wasm"))
	assert.Equal(t, exitBadModule, r.code)
	line := singleLine(t, r.stderr)
	assert.Contains(t, line, "not_wasm.wasm")
}

func TestRunMemoryLimit(t *testing.T) {
	r := cli(t, "", "run", wat(t, "membomb"), "--func", "run", "--memory", "1MiB")
	assert.Equal(t, exitMemoryLimit, r.code, r.stderr)
	assert.Contains(t, singleLine(t, r.stderr), "memory limit")
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := cliContext(t, ctx, "", "run", wat(t, "spin"), "--func", "spin")
	assert.Equal(t, exitCancelled, r.code, r.stderr)
}

func TestInspect(t *testing.T) {
	r := cli(t, "", "inspect", wat(t, "add"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "add")
	assert.Contains(t, r.stdout, "(i32, i32) -> i32")
	assert.Contains(t, r.stdout, "library")

	r = cli(t, "", "inspect", "--json", gomod(t, "upper"))
	require.Equal(t, exitOK, r.code, r.stderr)
	var rep inspectReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.Equal(t, "upper.wasm", rep.Name)
	assert.Equal(t, kindReactor, rep.Kind)
	assert.Contains(t, rep.Tasks, "upper")
	classes := map[string]bool{}
	for _, im := range rep.Imports {
		classes[im.Class] = true
	}
	assert.True(t, classes[classABI], "upper imports the wasmpool ABI: %+v", rep.Imports)

	r = cli(t, "", "inspect", "--json", wat(t, "hello"))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.Equal(t, kindCommand, rep.Kind)
	assert.Contains(t, r.stdout, `"signature": "(i32, i32, i32, i32) -> i32"`, "-> as it reads, not \\u003e")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, rep.Digest, "as the text shows it")

	// A Go command imports some WASI functions twice: they are listed once.
	r = cli(t, "", "inspect", "--json", gomod(t, "wasicmd"))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	names := map[string]int{}
	for _, im := range rep.Imports {
		names[im.Module+"."+im.Name]++
	}
	assert.Equal(t, 1, names["wasi_snapshot_preview1.fd_write"], "%v", names)
	for name, n := range names {
		assert.Equal(t, 1, n, name)
	}
	text := cli(t, "", "inspect", gomod(t, "wasicmd"))
	assert.Contains(t, text.stdout, fmt.Sprintf("imports (%d):", len(rep.Imports)))

	// Only the flags that bear on compiling a module.
	help := cli(t, "", "inspect", "--help").stdout
	for _, flag := range []string{"--output-limit", "--preinitialize", "--timeout"} {
		assert.NotContains(t, help, flag)
	}
	for _, flag := range []string{"--cache-dir", "--memory", "--json"} {
		assert.Contains(t, help, flag)
	}
}

func TestInspectCacheHit(t *testing.T) {
	dir := t.TempDir()
	var rep inspectReport
	for i, want := range []bool{false, true} {
		r := cli(t, "", "inspect", "--json", "--cache-dir", dir, wat(t, "add"))
		require.Equal(t, exitOK, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
		assert.Equal(t, want, rep.CacheHit, "run %d", i)
	}
}

func TestVersion(t *testing.T) {
	r := cli(t, "", "version")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "wasmpool")
	assert.Contains(t, r.stdout, "wazero")
	assert.Contains(t, r.stdout, "go1.")
}
