package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// batchFile writes a batch file next to copies of the modules it uses, so
// that relative module paths are tested too.
func batchFile(t *testing.T, lines ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{
		"upper.wasm":   gomod(t, "upper"),
		"divzero.wasm": wat(t, "divzero"),
		"hello.wasm":   wat(t, "hello"),
	} {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	p := filepath.Join(dir, "tasks.jsonl")
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return p
}

func parseResults(t *testing.T, out string) map[int]resultLine {
	t.Helper()
	res := map[int]resultLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var rl resultLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rl), sc.Text())
		_, dup := res[rl.Line]
		require.False(t, dup, "line %d reported twice", rl.Line)
		res[rl.Line] = rl
	}
	return res
}

var batchLines = []string{
	`{"module": "upper.wasm", "func": "upper", "input": "abc"}`,
	`{"module": "upper.wasm", "func": `,
	``, // blank: skipped, but counted
	`{"module": "divzero.wasm", "func": "run"}`,
	`{"module": "hello.wasm"}`,
}

func checkBatch(t *testing.T, r cliResult) {
	t.Helper()
	res := parseResults(t, r.stdout)
	require.Len(t, res, 4, r.stdout)
	keys := make([]int, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	assert.Equal(t, []int{1, 2, 4, 5}, keys)

	assert.True(t, res[1].OK, "%+v", res[1])
	require.NotNil(t, res[1].Text)
	assert.Equal(t, "ABC", *res[1].Text)

	assert.False(t, res[2].OK)
	assert.Equal(t, kindBadLine, res[2].ErrorKind)
	assert.Contains(t, res[2].Error, "line 2")

	assert.False(t, res[4].OK)
	assert.Equal(t, kindTrap, res[4].ErrorKind)
	assert.Contains(t, res[4].Error, "divzero.wasm")

	assert.True(t, res[5].OK)
	require.NotNil(t, res[5].Text)
	assert.Equal(t, "hello from wasm\n", *res[5].Text)
	require.NotNil(t, res[5].ExitCode, "a command that ran to its end exited 0")
	assert.Equal(t, uint32(0), *res[5].ExitCode)
	assert.Nil(t, res[1].ExitCode, "an export does not exit")
	assert.Nil(t, res[4].ExitCode, "a trap is no exit")

	// The first failure in input order is the malformed line.
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "2 of 4 lines failed")
}

func TestBatch(t *testing.T) {
	p := batchFile(t, batchLines...)
	r := cli(t, "", "batch", p, "--workers", "2")
	checkBatch(t, r)
	// In input order by default.
	var order []int
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rl resultLine
		require.NoError(t, json.Unmarshal([]byte(l), &rl))
		order = append(order, rl.Line)
	}
	assert.Equal(t, []int{1, 2, 4, 5}, order)
}

func TestBatchUnorderedProcesses(t *testing.T) {
	p := batchFile(t, batchLines...)
	checkBatch(t, cli(t, "", "batch", p, "--unordered", "--mode", "process"))
}

func TestBatchStdin(t *testing.T) {
	// From stdin, relative paths are relative to the current directory.
	hello := wat(t, "hello")
	in := `{"module": "` + hello + `", "args": ["x"], "env": {"K": "V"}}` + "\n" +
		`{"module": "` + hello + `", "input_base64": "AAEC"}`
	r := cli(t, in, "batch", "-")
	assert.Equal(t, exitOK, r.code, r.stderr)
	res := parseResults(t, r.stdout)
	assert.Len(t, res, 2)
	assert.True(t, res[1].OK && res[2].OK, r.stdout)
}

func TestBatchFailFast(t *testing.T) {
	lines := []string{`{"module": "divzero.wasm", "func": "run"}`}
	for range 30 {
		lines = append(lines, `{"module": "upper.wasm", "func": "upper", "input": "x"}`)
	}
	r := cli(t, "", "batch", batchFile(t, lines...), "--fail-fast", "--workers", "1")
	assert.Equal(t, exitTrap, r.code, r.stderr)
	res := parseResults(t, r.stdout)
	assert.Equal(t, map[int]bool{1: false}, map[int]bool{1: res[1].OK})
	assert.Len(t, res, 1, "nothing after the failure is reported")
}

// A module file that is not there is the line's mistake, as it is run's
// (status 2, error_kind bad_line); a file that is not WebAssembly is a bad
// module (status 3), as it is for run.
func TestBatchMissingModule(t *testing.T) {
	r := cli(t, "", "batch", batchFile(t, `{"module": "nope.wasm"}`, `{"module": "nope.wasm"}`))
	res := parseResults(t, r.stdout)
	require.Len(t, res, 2)
	assert.Equal(t, kindBadLine, res[1].ErrorKind)
	assert.Contains(t, res[1].Error, "nope.wasm")
	assert.Equal(t, exitUsage, r.code)
	assert.Equal(t, exitUsage, cli(t, "", "run", "nope.wasm").code)

	r = cli(t, `{"module": "`+wat(t, "not_wasm")+`"}`, "batch", "-")
	res = parseResults(t, r.stdout)
	require.Len(t, res, 1)
	assert.Equal(t, kindBadModule, res[1].ErrorKind)
	assert.Equal(t, exitBadModule, r.code)
	assert.Equal(t, exitBadModule, cli(t, "", "run", wat(t, "not_wasm")).code)
}

func TestParseTaskLine(t *testing.T) {
	tk, err := parseTaskLine(7, []byte(`{"module": "m.wasm", "func": "f", "args": ["a"], "env": {"K": "V"},
		"mounts": ["data:/data", "/abs:/ro:ro"], "input": "hi", "timeout": "2s"}`), "/base")
	require.NoError(t, err)
	assert.Equal(t, 7, tk.line)
	assert.Equal(t, filepath.Join("/base", "m.wasm"), tk.module)
	assert.Equal(t, "f", tk.fn)
	assert.Equal(t, []string{"a"}, tk.args)
	assert.Equal(t, map[string]string{"K": "V"}, tk.env)
	assert.Equal(t, []byte("hi"), tk.input)
	assert.Equal(t, 2*time.Second, tk.timeout)
	require.Len(t, tk.mounts, 2)
	assert.Equal(t, filepath.Join("/base", "data"), tk.mounts[0].HostPath)
	assert.False(t, tk.mounts[0].ReadOnly)
	assert.Equal(t, "/abs", tk.mounts[1].HostPath)
	assert.True(t, tk.mounts[1].ReadOnly)

	tk, err = parseTaskLine(1, []byte(`{"module": "/abs/m.wasm", "input_base64": "AAEC"}`), "")
	require.NoError(t, err)
	assert.Equal(t, "/abs/m.wasm", tk.module)
	assert.Equal(t, []byte{0, 1, 2}, tk.input)

	for _, bad := range []string{
		`{"func": "f"}`,
		`{"module": "m.wasm", "fucn": "f"}`,
		`{"module": "m.wasm"} trailing`,
		`{"module": "m.wasm", "input": "a", "input_base64": "YQ=="}`,
		`{"module": "m.wasm", "input_base64": "!!"}`,
		`{"module": "m.wasm", "timeout": "soon"}`,
		`{"module": "m.wasm", "timeout": "-1s"}`,
		`{"module": "m.wasm", "mounts": ["nodest"]}`,
		`{"module": "m.wasm", "env": {"": "x"}}`,
		`{"module": 3}`,
		`[]`,
		`null`,
		`{"module": "m.wasm"`,
	} {
		_, err := parseTaskLine(3, []byte(bad), "")
		var ble *badLineError
		if assert.True(t, errors.As(err, &ble), "%s: %v", bad, err) {
			assert.Equal(t, 3, ble.line)
			assert.Equal(t, kindBadLine, errorKind(err))
		}
	}
}

func FuzzParseTaskLine(f *testing.F) {
	for _, l := range batchLines {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"module": "m.wasm", "mounts": ["a:/b:ro"], "env": {"K": "V"}, "timeout": "1s", "input_base64": "AA=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := parseTaskLine(1, data, "/base")
		if err != nil {
			var ble *badLineError
			if !errors.As(err, &ble) {
				t.Fatalf("error is not a bad line: %v", err)
			}
			return
		}
		if tk.module == "" || tk.timeout < 0 {
			t.Fatalf("accepted a task without a module or with a negative timeout: %+v", tk)
		}
	})
}
