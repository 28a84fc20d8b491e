package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// usedFuel reads what `run --fuel N -v` says the task used.
var usedFuel = regexp.MustCompile(`used (\d+) of its (\d+) instructions of fuel`)

// TestRunFuel: --fuel is exact from the command line too: the fuel a task
// reports using is a budget it succeeds with, and one less fails it with the
// fuel status, in process and in a worker process alike.
func TestRunFuel(t *testing.T) {
	t.Parallel()
	fibrec := wat(t, "fibrec")
	r := cli(t, "", "run", fibrec, "--func", "fib", "--params", "20", "--fuel", "1000000000", "-v")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "6765\n", r.stdout)
	m := usedFuel.FindStringSubmatch(r.stderr)
	require.NotNil(t, m, r.stderr)
	used, err := strconv.ParseUint(m[1], 10, 64)
	require.NoError(t, err)

	for _, iso := range []string{"in-process", "subprocess"} {
		r = cli(t, "", "run", fibrec, "--func", "fib", "--params", "20", "--fuel", fmt.Sprint(used), "--isolation", iso, "-v")
		assert.Equal(t, exitOK, r.code, "%s: %s", iso, r.stderr)
		assert.Contains(t, r.stderr, fmt.Sprintf("used %d of its %d", used, used), iso)
		r = cli(t, "", "run", fibrec, "--func", "fib", "--params", "20", "--fuel", fmt.Sprint(used-1), "--isolation", iso)
		assert.Equal(t, exitFuel, r.code, "%s: %s", iso, r.stderr)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, fmt.Sprintf(`module "fibrec.wasm": fuel exhausted: function "fib" used up its budget of %d instructions`, used-1))
	}
	// A WASI command is metered from its _start.
	r = cli(t, "", "run", wat(t, "hello"), "--fuel", "3")
	assert.Equal(t, exitFuel, r.code, r.stderr)
}

// TestBatchAndMapFuel: a batch line's "fuel" and --fuel, the "fuel" field
// of the results and the "fuel" error kind.
func TestBatchAndMapFuel(t *testing.T) {
	t.Parallel()
	upper := gomod(t, "upper")
	in := strings.Join([]string{
		`{"module": "` + upper + `", "func": "upper", "input": "abc", "fuel": 100000000}`,
		`{"module": "` + upper + `", "func": "upper", "input": "abc", "fuel": 10}`,
		`{"module": "` + upper + `", "func": "upper", "input": "abc", "fuel": "lots"}`,
		`{"module": "` + upper + `", "func": "upper", "input": "abc"}`,
	}, "\n")
	b := cli(t, in, "batch", "-", "--workers", "2")
	got := parseResults(t, b.stdout)
	require.Len(t, got, 4, b.stdout)
	assert.True(t, got[1].OK, got[1].Error)
	assert.Positive(t, got[1].Fuel, "the instructions it ran")
	assert.Equal(t, kindFuel, got[2].ErrorKind, got[2].Error)
	assert.Equal(t, uint64(10), got[2].Fuel, "all of it")
	assert.Equal(t, kindBadLine, got[3].ErrorKind)
	assert.Contains(t, got[3].Error, `"fuel"`)
	assert.Zero(t, got[4].Fuel, "no budget, no count")
	assert.Equal(t, exitFuel, b.code, "the first failed input's status")

	// --fuel is every task's budget, and every executor counts the same.
	var fuels []uint64
	for _, iso := range []string{"in-process", "subprocess"} {
		for _, mode := range []string{"thread", "process"} {
			m := cli(t, "abc\nabc\n", "map", upper, "--func", "upper", "--lines", "-", "--format", "jsonl",
				"--fuel", "100000000", "--mode", mode, "--isolation", iso)
			require.Equal(t, exitOK, m.code, m.stderr)
			for _, line := range strings.Split(strings.TrimSpace(m.stdout), "\n") {
				f := regexp.MustCompile(`"fuel":(\d+)`).FindStringSubmatch(line)
				require.NotNil(t, f, line)
				n, _ := strconv.ParseUint(f[1], 10, 64)
				fuels = append(fuels, n)
			}
		}
	}
	for _, f := range fuels {
		assert.Equal(t, fuels[0], f, "the same task, the same fuel, wherever it ran: %v", fuels)
	}
}

// TestRunStopsALoopFreeRecursion: a timeout stops a guest with no loop at
// all (only function entries to check), with the timeout's status. Before
// the engine checked function entries this ran for minutes.
func TestRunStopsALoopFreeRecursion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, iso := range []string{"in-process", "subprocess"} {
		r := cliContext(t, ctx, "", "run", wat(t, "fibrec"), "--func", "fib", "--params", "50", "--timeout", "200ms", "--isolation", iso)
		require.NoError(t, ctx.Err(), "the timeout did not stop the guest")
		assert.Equal(t, exitTimeout, r.code, r.stderr)
		assert.Contains(t, r.stderr, `function "fib" timed out after 200ms`)
	}
}
