package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

func ctool(t testing.TB) string { t.Helper(); return testmod.C(t, "ctool") }

// parseMapLines decodes map --format jsonl, keyed by input.
func parseMapLines(t *testing.T, out string) map[string]mapLine {
	t.Helper()
	res := map[string]mapLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ml mapLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ml), sc.Text())
		res[ml.Input] = ml
	}
	return res
}

func TestMapInOrder(t *testing.T) {
	t.Parallel()
	upper := gomod(t, "upper")
	files := writeFiles(t, "one", "two\n", "three")
	for _, mode := range []string{"thread", "process"} {
		t.Run(mode, func(t *testing.T) {
			args := append([]string{"map", upper, "--func", "upper", "--mode", mode, "--workers", "2"}, files...)
			r := cli(t, "", append(args, "--format", "raw")...)
			assert.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, "ONE\nTWO\nTHREE\n", r.stdout)
			assert.Empty(t, r.stderr)

			// The default text names each input on each of its lines.
			r = cli(t, "", args...)
			assert.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, files[0]+"\tONE\n"+files[1]+"\tTWO\n"+files[2]+"\tTHREE\n", r.stdout)
		})
	}
}

func TestMapUnordered(t *testing.T) {
	t.Parallel()
	files := writeFiles(t, "one", "two", "three", "four", "five")
	args := append([]string{"map", gomod(t, "upper"), "--func", "upper", "--unordered", "--workers", "3"}, files...)
	r := cli(t, "", args...)
	assert.Equal(t, exitOK, r.code, r.stderr)
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	sort.Strings(got)
	// In completion order, each line still says whose it is.
	assert.Equal(t, []string{files[0] + "\tONE", files[1] + "\tTWO", files[2] + "\tTHREE", files[3] + "\tFOUR", files[4] + "\tFIVE"}, got)
}

func TestMapLines(t *testing.T) {
	t.Parallel()
	r := cli(t, "10\n1\n20\n", "map", gomod(t, "fib"), "--func", "fib", "--lines", "-", "--mode", "process")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "10\t55\n1\t1\n20\t6765\n", r.stdout, "each line is tagged with the input line")

	lines := writeFiles(t, "a\r\nb\nc")
	r = cli(t, "", "map", gomod(t, "upper"), "--func", "upper", "--lines", lines[0], "--format", "raw")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "A\nB\nC\n", r.stdout)
}

func TestMapFailures(t *testing.T) {
	t.Parallel()
	fib := gomod(t, "fib")
	r := cli(t, "5\nbad\n6\n", "map", fib, "--func", "fib", "--lines", "-")
	assert.Equal(t, exitFailed, r.code)
	out := strings.Split(r.stdout, "\n")
	require.Len(t, out, 4, r.stdout)
	assert.Equal(t, "5\t5", out[0])
	assert.True(t, strings.HasPrefix(out[1], "bad\twasmpool: "), "the failure in its place: %q", out[1])
	assert.Contains(t, out[1], "fib.wasm")
	assert.Equal(t, "6\t8", out[2], "the other inputs still run")
	assert.Contains(t, r.stderr, "1 of 3 inputs failed")

	r = cli(t, "5\nbad\n6\n", "map", fib, "--func", "fib", "--lines", "-", "--format", "raw")
	assert.Equal(t, exitFailed, r.code)
	assert.Equal(t, "5\n8\n", r.stdout)
	assert.Contains(t, r.stderr, "input line 2: ")
}

// failingTools are ctool runs that print "wrote-this", flush it, then fail
// in each way a task can, with what map and batch must report.
var failingTools = []struct {
	sub      string // the ctool subcommand
	kind     string
	exitCode *uint32 // the guest's own, when it exited
	status   int     // of wasmpool run
}{
	{"fail", kindExit, ptr(uint32(1)), 1},
	{"trap", kindTrap, nil, exitTrap},
	{"nomem", kindExit, ptr(uint32(3)), 3}, // handles malloc failing: its own exit wins over the memory limit
	{"sleep", kindTimeout, nil, exitTimeout},
	{"spin", kindTimeout, nil, exitTimeout},
}

// failTimeout is the timeout of the failing tools that time out: long
// enough that each has printed first, on a loaded machine under -race.
const failTimeout = "2s"

func failingBatch(tool string, skip ...string) string {
	var lines []string
	for _, c := range failingTools {
		if slices.Contains(skip, c.sub) {
			continue
		}
		line := `{"module": "` + tool + `", "args": ["` + c.sub + `", "wrote-this"]`
		if c.kind == kindTimeout {
			line += `, "timeout": "` + failTimeout + `"`
		}
		lines = append(lines, line+"}")
	}
	return strings.Join(lines, "\n") + "\n"
}

// Nothing a task wrote is lost: a command that prints, then fails (exits,
// traps, runs out of memory, times out), keeps what it printed next to its
// failure, in every format of map, in batch and in run; exit_code is the
// guest's own when it exited and absent when it did not.
func TestFailedTasksKeepTheirOutput(t *testing.T) {
	t.Parallel()
	tool := ctool(t)
	const wrote = "wrote-this\n"
	check := func(t *testing.T, i int, f taskFields) {
		t.Helper()
		c := failingTools[i]
		assert.False(t, f.OK, c.sub)
		if assert.NotNil(t, f.Text, "%s: the output is kept", c.sub) {
			assert.Equal(t, wrote, *f.Text, c.sub)
		}
		assert.Equal(t, c.kind, f.ErrorKind, "%s: %s", c.sub, f.Error)
		assert.Equal(t, c.exitCode, f.ExitCode, "%s: %s", c.sub, f.Error)
		assert.Positive(t, f.DurationMS, c.sub)
		if c.kind == kindTrap {
			assert.Contains(t, f.Stack, "modules/c/ctool.c", "the stack names source lines")
		}
	}
	mapArgs := []string{"map", tool, "--lines", "-", "--memory", "16MiB", "--workers", "5"}
	var lines []string
	for _, c := range failingTools {
		lines = append(lines, c.sub)
	}
	in := strings.Join(lines, "\n") + "\n"

	t.Run("map jsonl", func(t *testing.T) {
		t.Parallel()
		r := cli(t, in, append(mapArgs, "--timeout", failTimeout, "--format", "jsonl", "--", "{}", "wrote-this")...)
		assert.Equal(t, exitFailed, r.code, r.stderr)
		got := parseMapLines(t, r.stdout)
		require.Len(t, got, len(failingTools), r.stdout)
		for i, c := range failingTools {
			check(t, i, got[c.sub].taskFields)
		}
	})
	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		r := cli(t, failingBatch(tool), "batch", "-", "--memory", "16MiB", "--workers", "5")
		assert.Equal(t, exitFailed, r.code, r.stderr)
		got := parseResults(t, r.stdout)
		require.Len(t, got, len(failingTools), r.stdout)
		for i := range failingTools {
			check(t, i, got[i+1].taskFields)
		}
	})
	// Text: the output, tagged, then the failure in its place. Raw: the
	// output as it was; the failures on stderr. (The ones that exit or trap:
	// the formats do not depend on how a task failed.)
	quick := "fail\ntrap\nnomem\n"
	t.Run("map text", func(t *testing.T) {
		t.Parallel()
		r := cli(t, quick, append(mapArgs, "--", "{}", "wrote-this")...)
		for _, sub := range []string{"fail", "trap", "nomem"} {
			assert.Contains(t, r.stdout, sub+"\twrote-this\n"+sub+"\twasmpool: module \"ctool.wasm\": ", sub)
		}
	})
	t.Run("map raw", func(t *testing.T) {
		t.Parallel()
		r := cli(t, quick, append(mapArgs, "--format", "raw", "--", "{}", "wrote-this")...)
		assert.Equal(t, strings.Repeat(wrote, 3), r.stdout)
		assert.Equal(t, 3, strings.Count(r.stderr, "wasmpool: input line "), r.stderr)
	})
	// run shows it too, and exits with the documented status.
	for _, c := range failingTools {
		t.Run("run "+c.sub, func(t *testing.T) {
			t.Parallel()
			r := cli(t, "", "run", tool, "--timeout", failTimeout, "--memory", "16MiB", "--", c.sub, "wrote-this")
			assert.Equal(t, c.status, r.code, "%s: %s", c.sub, r.stderr)
			assert.Equal(t, wrote, r.stdout, c.sub)
		})
	}
}

// The same in worker processes (--isolation subprocess), where the output
// comes back with the result: a worker process stops a guest in a loop as
// the engine in this process does (its instrumented checks), without a
// kill, and what it wrote comes back.
func TestFailedTasksKeepTheirOutputInWorkerProcesses(t *testing.T) {
	t.Parallel()
	tool := ctool(t)
	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		b := cli(t, failingBatch(tool), "batch", "-", "--memory", "16MiB", "--workers", "2", "--isolation", "subprocess")
		got := parseResults(t, b.stdout)
		require.Len(t, got, len(failingTools), b.stdout)
		for i, c := range failingTools {
			f := got[i+1]
			if assert.NotNil(t, f.Text, c.sub) {
				assert.Equal(t, "wrote-this\n", *f.Text, c.sub)
			}
			assert.Equal(t, c.kind, f.ErrorKind, "%s: %s", c.sub, f.Error)
			assert.Equal(t, c.exitCode, f.ExitCode, c.sub)
			assert.Positive(t, f.DurationMS, c.sub)
		}
	})
	t.Run("run", func(t *testing.T) {
		t.Parallel()
		for _, sub := range []string{"sleep", "spin"} {
			r := cli(t, "", "run", tool, "--timeout", failTimeout, "--isolation", "subprocess", "--", sub, "wrote-this")
			assert.Equal(t, exitTimeout, r.code, r.stderr)
			assert.Equal(t, "wrote-this\n", r.stdout, sub)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestMapFailFast(t *testing.T) {
	// In input order, fail-fast prints what came before the failure, the
	// failure, and nothing after: the rest is cancelled.
	in := "1\n2\nbad\n" + strings.Repeat("20\n", 50)
	r := cli(t, in, "map", gomod(t, "fib"), "--func", "fib", "--lines", "-", "--fail-fast", "--workers", "2", "--format", "raw")
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
	assert.Nil(t, ok.ExitCode, "an SDK task does not exit")
	assert.False(t, bad.OK)
	assert.Equal(t, "nope", bad.Input)
	assert.Equal(t, kindTask, bad.ErrorKind)
	assert.NotEmpty(t, bad.Error)
}

func TestMapCommand(t *testing.T) {
	t.Parallel()
	// A WASI command needs no --func: each input is its stdin.
	files := writeFiles(t, "abc", "def")
	args := append([]string{"map", gomod(t, "wasicmd"), "--mode", "process"}, files...)
	r := cli(t, "", append(args, "--", "upper")...)
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, files[0]+"\tABC\n"+files[1]+"\tDEF\n", r.stdout)

	// A command always runs in a fresh instance: --mode thread, which
	// promises warm instances, is refused rather than ignored.
	r = cli(t, "", append([]string{"map", wat(t, "hello"), "--mode", "thread"}, files...)...)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "is a WASI command, which runs in a fresh instance for every input")
	r = cli(t, "", append([]string{"map", wat(t, "hello")}, files...)...)
	assert.Equal(t, exitOK, r.code, "without --mode it just runs: %s", r.stderr)
}

func TestMapProgress(t *testing.T) {
	files := writeFiles(t, "a", "b", "c")
	args := append([]string{"map", gomod(t, "upper"), "--func", "upper", "--progress", "always", "--format", "raw"}, files...)
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
		"bad glob":      {"map", upper, "--func", "upper", "--glob", "[", filepath.Dir(files[0])},
		"glob no match": {"map", upper, "--func", "upper", "--glob", "*.md", filepath.Dir(files[0])},
		"glob on lines": {"map", upper, "--func", "upper", "--glob", "*.md", "--lines", "-"},
		"bad env":       {"map", upper, "--func", "upper", "--env", "novalue", files[0]},
		"missing mount": {"map", upper, "--func", "upper", "--mount", "/no/such:/x", files[0]},
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
	t.Parallel()
	counter := gomod(t, "counter")
	draws := func(extra ...string) []string {
		t.Helper()
		args := append([]string{"map", counter, "--func", "rand", "--mode", "process", "--workers", "1", "--lines", "-", "--format", "raw"}, extra...)
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

// writeTree creates files (path → content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o644))
	}
	return dir
}

// chdir makes dir the current directory for the test (map names inputs as
// given, and a relative path is the usual way to give a tree).
func chdir(t *testing.T, dir string) {
	t.Helper()
	t.Chdir(dir)
}

// map as "run this program over these files": a C wc over a directory tree
// (recursive, --glob), each file passed by name through {} and opened by the
// guest through a mount, gives for each input what `wasmpool run` of the
// same command gives, tagged with the input; GNU parallel's other
// placeholders name parts of it.
func TestMapRunsAToolOverATree(t *testing.T) {
	tool := ctool(t)
	root := writeTree(t, map[string]string{
		"docs/a.txt":         "one two\nthree\n",
		"docs/sub/b.txt":     "four\n",
		"docs/sub/deep/c.md": "not a txt\n",
		"docs/z.txt":         "",
	})
	chdir(t, root)
	// The current directory at the guest's /, read-only: the relative input
	// paths map gives are the guest's paths too.
	args := []string{"map", tool, "docs", "--glob", "*.txt", "--mount", ".:/:ro", "--workers", "2"}
	r := cli(t, "", append(args, "--", "wc", "{}")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	want := ""
	for _, f := range []string{"docs/a.txt", "docs/sub/b.txt", "docs/z.txt"} { // lexical order, c.md left out
		one := cli(t, "", "run", tool, "--mount", ".:/:ro", "--", "wc", f)
		require.Equal(t, exitOK, one.code, one.stderr)
		want += f + "\t" + one.stdout
	}
	assert.Equal(t, want, r.stdout)
	assert.Equal(t, "docs/a.txt\t2 3 14 docs/a.txt\n", strings.SplitAfter(r.stdout, "\n")[0])

	// {/} the base name, {//} the directory, {.} and {/.} without extension,
	// here through a mount of the directory itself.
	r = cli(t, "", "map", tool, "docs/sub/b.txt", "--mount", "docs/sub:/in:ro", "--format", "raw", "--",
		"wc", "/in/{/}", "{//}", "{.}", "{/.}")
	assert.Equal(t, exitFailed, r.code, "the last three are no files: %s", r.stderr)
	assert.Equal(t, "1 1 5 /in/b.txt\n", r.stdout)
	assert.Contains(t, r.stderr, "docs/sub: ")
	assert.Contains(t, r.stderr, "docs/sub/b: ")
	assert.Contains(t, r.stderr, "\nb: ", "{/.}")

	// Without a placeholder, each file's content is the command's stdin,
	// and --env reaches every task.
	r = cli(t, "", "map", gomod(t, "wasicmd"), "docs/a.txt", "docs/sub/b.txt", "--env", "K=V", "--format", "raw", "--", "env")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "K=V\nK=V\n", r.stdout)
	r = cli(t, "", "map", tool, "docs/a.txt", "--", "wc", "/dev/stdin")
	assert.Equal(t, exitFailed, r.code, "no placeholder: stdin, not the name; and no mount, no file")
}

// --output-dir writes one result file per input, mirroring the tree of
// relative inputs; a failure's output is kept, and its error goes beside it.
func TestMapOutputDir(t *testing.T) {
	tool := ctool(t)
	root := writeTree(t, map[string]string{"in/a.txt": "alpha\n", "in/sub/b.txt": "beta\n"})
	chdir(t, root)
	r := cli(t, "", "map", tool, "in", "--output-dir", "out", "--", "cat")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout, "the results went to files")
	for in, want := range map[string]string{"in/a.txt": "alpha\n", "in/sub/b.txt": "beta\n"} {
		b, err := os.ReadFile(filepath.Join("out", in+".out"))
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
		assert.NoFileExists(t, filepath.Join("out", in+".err"))
	}

	// Lines: one file per line number; a failure writes what it printed,
	// and its stderr and error line to .err. A later success clears .err.
	r = cli(t, "ok\nbad\n", "map", tool, "--lines", "-", "--output-dir", "out", "--format", "jsonl", "--", "fail", "{}")
	assert.Equal(t, exitFailed, r.code)
	got := parseMapLines(t, r.stdout)
	assert.Equal(t, filepath.Join("out", "line-2.out"), got["bad"].OutputFile)
	assert.Nil(t, got["bad"].Text, "the output went to the file")
	b, err := os.ReadFile(filepath.Join("out", "line-2.out"))
	require.NoError(t, err)
	assert.Equal(t, "bad\n", string(b))
	b, err = os.ReadFile(filepath.Join("out", "line-2.err"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `wasmpool: module "ctool.wasm": exited with code 1`)
	r = cli(t, "x\nfine\n", "map", gomod(t, "upper"), "--func", "upper", "--lines", "-", "--output-dir", "out")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NoFileExists(t, filepath.Join("out", "line-2.err"), "stale")
	b, err = os.ReadFile(filepath.Join("out", "line-2.out"))
	require.NoError(t, err)
	assert.Equal(t, "FINE", string(b))

	// Two inputs that would write the same file are refused before anything runs.
	other := writeTree(t, map[string]string{"a.txt": "x"})
	r = cli(t, "", "map", tool, filepath.Join(root, "in", "a.txt"), filepath.Join(other, "a.txt"), "--output-dir", "out2", "--", "cat")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "would both write")
	assert.NoDirExists(t, "out2")
}
