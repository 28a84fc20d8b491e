package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// benchJSON runs wasmpool bench --json and decodes what it printed.
func benchJSON(t *testing.T, wantCode int, args ...string) (benchResult, cliResult) {
	t.Helper()
	r := cli(t, "", append([]string{"bench", "--json", "--isolation", "in-process"}, args...)...)
	require.Equal(t, wantCode, r.code, r.stderr)
	var res benchResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
	return res, r
}

// assertRows checks there is one row per mode and worker count, in that
// order, each with every task run and sane figures. Speed is never asserted.
func assertRows(t *testing.T, res benchResult, modes []string, workers []int, tasks int, failed bool) {
	t.Helper()
	require.Len(t, res.Rows, len(modes)*len(workers))
	i := 0
	for _, mode := range modes {
		for _, w := range workers {
			row := res.Rows[i]
			i++
			assert.Equal(t, mode, row.Mode)
			assert.Equal(t, isolationInProcess, row.Isolation)
			assert.Equal(t, w, row.Workers)
			assert.Equal(t, tasks, row.Tasks, "%s/%d", mode, w)
			if failed {
				assert.Equal(t, row.Tasks, row.Failed, "%s/%d", mode, w)
				continue
			}
			assert.Zero(t, row.Failed, "%s/%d", mode, w)
			assert.Positive(t, row.PerSec, "%s/%d", mode, w)
			assert.Positive(t, row.P50, "%s/%d", mode, w)
			assert.GreaterOrEqual(t, row.P90, row.P50)
			assert.GreaterOrEqual(t, row.P99, row.P90)
			assert.Positive(t, row.Sandbox, "%s/%d", mode, w)
		}
	}
}

func TestBenchGoGuest(t *testing.T) {
	t.Parallel()
	in := writeFiles(t, "bench me")
	res, r := benchJSON(t, exitOK, gomod(t, "upper"), "--func", "upper", "--input", in[0],
		"--tasks", "6", "--samples", "3", "--workers", "1,2")
	assertRows(t, res, []string{"threads", "processes"}, []int{1, 2}, 9, false)
	assert.Equal(t, "upper.wasm", res.Module)
	assert.Equal(t, len("bench me"), res.InputBytes)

	p := res.Instance
	assert.Equal(t, 3, p.Runs)
	assert.Positive(t, p.Instantiate)
	assert.Positive(t, p.Call)
	assert.Positive(t, p.MemoryInstantiated)
	assert.GreaterOrEqual(t, p.MemoryAfterTask, p.MemoryInstantiated)
	assert.GreaterOrEqual(t, p.MemoryAfterRuns, p.MemoryAfterTask)
	assert.Equal(t, "no", p.CarryOver)
	assert.Empty(t, p.Error)
	assert.Contains(t, []string{"thread", "process"}, res.Recommended)
	assert.NotEmpty(t, res.Why)
	assert.Empty(t, r.stderr, "no progress line unless asked, no failure")
}

func TestBenchTable(t *testing.T) {
	t.Parallel()
	// Both isolations by default: each worker in this process, and each in
	// a worker process of its own.
	r := cli(t, "", "bench", wat(t, "noop"), "--func", "noop", "--tasks", "20", "--samples", "5",
		"--workers", "1,2", "--progress", "always")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, mode := range []string{"threads", "processes"} {
		for _, iso := range []string{"in-process", "process"} {
			for _, w := range []int{1, 2} {
				// mode, isolation, workers, tasks, failed, then a positive rate.
				row := regexp.MustCompile(fmt.Sprintf(`(?m)^%s\s+%s\s+%d\s+25\s+0\s+[0-9.]*[1-9][0-9.]*\s`, mode, iso, w))
				assert.Regexp(t, row, r.stdout)
			}
		}
	}
	assert.Regexp(t, `(?m)^instance  instantiation: \S+ \(median of 5\); a call on a warm instance: \S+$`, r.stdout)
	assert.Contains(t, r.stdout, "linear memory 64 KiB after instantiation")
	assert.Regexp(t, `(?m)^recommended: --mode (thread|process) --isolation (in-process|process)\. \S`, r.stdout)
	// The progress line ends on the whole count: the profile's 5 fresh
	// instances and 5 warm calls, and 8 rows of 5 + 20 tasks.
	assert.Contains(t, r.stderr, "210/210")
}

// --quick is a first answer: the fewest and the most workers, fewer tasks,
// and each row cut short after about a second whatever the task costs.
func TestBenchQuick(t *testing.T) {
	res, _ := benchJSON(t, exitOK, wat(t, "noop"), "--func", "noop", "--quick", "--workers", "1", "--mode", "thread")
	require.Len(t, res.Rows, 1)
	row := res.Rows[0]
	assert.Positive(t, row.Tasks)
	assert.LessOrEqual(t, row.Tasks, 120, "20 samples and 100 tasks at most")
	assert.Equal(t, 5, res.Instance.Runs)
}

func TestBenchStateCarryOver(t *testing.T) {
	// counter's "count" returns a global it increments: a reused instance
	// answers 2, 3... where a fresh one answers 1.
	res, _ := benchJSON(t, exitOK, wat(t, "counter"), "--func", "count", "--tasks", "10", "--samples", "4",
		"--workers", "1")
	assertRows(t, res, []string{"threads", "processes"}, []int{1}, 14, false)
	assert.Equal(t, "yes", res.Instance.CarryOver)
	assert.Equal(t, "process", res.Recommended)
	assert.Contains(t, res.Why, "state carries over")
}

func TestBenchCommand(t *testing.T) {
	res, _ := benchJSON(t, exitOK, wat(t, "hello"), "--tasks", "10", "--samples", "3", "--workers", "2", "--mode", "process")
	assertRows(t, res, []string{"processes"}, []int{2}, 13, false)
	assert.Equal(t, "n/a", res.Instance.CarryOver)
	assert.Positive(t, res.Instance.Instantiate)
	assert.Equal(t, "process", res.Recommended)
	assert.Contains(t, res.Why, "WASI command")
}

func TestBenchRawExport(t *testing.T) {
	// add has no memory and takes parameters: --params, and memory 0.
	res, _ := benchJSON(t, exitOK, wat(t, "add"), "--func", "add", "--params", "2,3", "--tasks", "10", "--samples", "3",
		"--workers", "1", "--mode", "thread")
	assertRows(t, res, []string{"threads"}, []int{1}, 13, false)
	assert.Zero(t, res.Instance.MemoryInstantiated)
	assert.Equal(t, "no", res.Instance.CarryOver)
	assert.Equal(t, "thread", res.Recommended, "one mode measured and the call is cheap: %s", res.Why)
}

func TestBenchFailures(t *testing.T) {
	res, r := benchJSON(t, exitTrap, wat(t, "divzero"), "--func", "run", "--tasks", "3", "--samples", "2", "--workers", "1",
		"--mode", "process")
	assertRows(t, res, []string{"processes"}, []int{1}, 5, true)
	assert.Contains(t, r.stderr, "processes, in-process, 1 worker(s): 5 of 5 tasks failed, the first: ")
	assert.Contains(t, r.stderr, "divide by zero")
	assert.Contains(t, res.Instance.Error, "divide by zero")
	assert.Empty(t, res.Recommended)
	assert.Equal(t, "No recommendation: every task failed.", res.Why)
}

func TestBenchUsageErrors(t *testing.T) {
	noop := wat(t, "noop")
	for _, args := range [][]string{
		{noop, "--func", "noop", "--workers", "1,x"},
		{noop, "--func", "noop", "--samples", "0"},
		{noop, "--func", "noop", "--tasks", "0"},
		{noop, "--func", "noop", "--mode", "fibers"},
		{noop, "--params", "1"},
		{noop, "--func", "noop", "--", "arg"},
		{noop, "--func", "nosuch"},
	} {
		r := cli(t, "", append([]string{"bench"}, args...)...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", args, r.stderr)
		singleLine(t, r.stderr[:len(r.stderr)-len("see 'wasmpool bench --help'\n")])
	}
}

func TestWorkerCounts(t *testing.T) {
	for _, c := range []struct {
		flag string
		cpus int
		want []int
	}{
		{"", 1, []int{1}}, {"", 2, []int{1, 2}}, {"", 6, []int{1, 2, 4, 6}}, {"", 8, []int{1, 2, 4, 8}},
		{"3", 8, []int{3}}, {"0,2,2", 4, []int{4, 2}},
	} {
		got, err := workerCounts(c.flag, c.cpus)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%q with %d CPUs", c.flag, c.cpus)
	}
}

func TestRecommend(t *testing.T) {
	rows := func(threads, processes float64) []benchRow {
		return []benchRow{{Mode: "threads", Isolation: isolationInProcess, Tasks: 10, PerSec: threads},
			{Mode: "processes", Isolation: isolationInProcess, Tasks: 10, PerSec: processes}}
	}
	isolated := func(rs []benchRow, factor float64) []benchRow {
		for _, r := range slices.Clone(rs) {
			r.Isolation, r.PerSec = "process", r.PerSec*factor
			rs = append(rs, r)
		}
		return rs
	}
	cheap := instanceProfile{Runs: 20, Instantiate: time.Millisecond, Call: 10 * time.Millisecond, CarryOver: "no"}
	costly := instanceProfile{Runs: 20, Instantiate: 3 * time.Millisecond, Call: time.Microsecond, CarryOver: "no"}
	// A call dearer than an instance, and still threads win (a CPU-bound
	// task whose pool costs differ): the sentence must not say otherwise.
	slowCall := instanceProfile{Runs: 20, Instantiate: 3 * time.Millisecond, Call: 10 * time.Millisecond, CarryOver: "no"}
	for _, c := range []struct {
		name     string
		res      benchResult
		cmd      bool
		want     string
		wantIso  string
		says     string
		saysNot  string
		noIsoSay bool
	}{
		{name: "isolation costs little", res: benchResult{Instance: cheap, Rows: rows(100, 90)}, want: "process", wantIso: isolationInProcess},
		{name: "isolation costs much", res: benchResult{Instance: costly, Rows: rows(100, 10)}, want: "thread", wantIso: isolationInProcess,
			says: "is cheaper than a fresh instance"},
		{name: "threads win, calls dearer", res: benchResult{Instance: slowCall, Rows: rows(100, 10)}, want: "thread", wantIso: isolationInProcess,
			says: "10x the tasks per second", saysNot: "cheaper"},
		{name: "state carries over", res: benchResult{Instance: instanceProfile{CarryOver: "yes"}, Rows: rows(100, 10)}, want: "process",
			wantIso: isolationInProcess},
		{name: "a command", res: benchResult{Instance: costly, Rows: rows(100, 10)}, cmd: true, want: "process", wantIso: isolationInProcess},
		{name: "threads only, cheap call", res: benchResult{Instance: costly, Rows: rows(100, 0)[:1]}, want: "thread", wantIso: isolationInProcess},
		{name: "processes only, cheap instance", res: benchResult{Instance: cheap, Rows: rows(0, 90)[1:]}, want: "process",
			wantIso: isolationInProcess},
		{name: "worker processes much faster", res: benchResult{Instance: costly, Rows: isolated(rows(100, 10), 4)}, want: "thread",
			wantIso: "process", says: "With --isolation subprocess its workers ran 4.0x"},
		{name: "worker processes barely faster", res: benchResult{Instance: costly, Rows: isolated(rows(100, 10), 1.05)}, want: "thread",
			wantIso: isolationInProcess, says: "not enough to pay"},
	} {
		mode, iso, why := recommend(&c.res, c.cmd)
		assert.Equal(t, c.want, mode, c.name)
		assert.Equal(t, c.wantIso, iso, c.name)
		assert.NotEmpty(t, why, c.name)
		if c.says != "" {
			assert.Contains(t, why, c.says, c.name)
		}
		if c.saysNot != "" {
			assert.NotContains(t, why, c.saysNot, c.name)
		}
	}
}
