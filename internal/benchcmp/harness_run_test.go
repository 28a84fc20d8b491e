//go:build benchcheck

package benchcmp

// The harness's own check, `make bench-check`: a whole run with trivial
// iteration counts. It takes minutes of CPU (every executor, Python, the
// RSS child), so it is not part of make test.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tiny is a run with trivial iteration counts: it proves every part of the
// harness works and produces its table and JSON, not how fast anything is.
func tiny(out, prog *bytes.Buffer) Config {
	c := Quick()
	c.Budget = time.Millisecond
	c.MinSamples = 2
	c.FibN = 10
	c.SHASize = 1 << 10
	c.ColdRuns = 0
	c.RSSTasks = [2]int{10, 40}
	c.Out, c.Progress = out, prog
	return c
}

func TestRunProducesTableAndJSON(t *testing.T) {
	var out, prog bytes.Buffer
	c := tiny(&out, &prog)
	_, pyErr := exec.LookPath("python3")
	rep, err := Run(context.Background(), c)
	require.NoError(t, err)

	// Every executor of every workload, with every worker count (the wazero
	// anchors with one), measured for real.
	for _, wl := range workloads(c) {
		for _, w := range c.Workers {
			for _, sys := range wl.systems {
				if anchorSystem(sys) && w != 1 || !goSystem(sys) && pyErr != nil {
					assert.Nil(t, rep.cell(wl.key, sys, w), "%s/%s/%d", wl.key, sys, w)
					continue
				}
				cell := rep.cell(wl.key, sys, w)
				if !assert.NotNil(t, cell, "%s/%s/%d", wl.key, sys, w) {
					continue
				}
				l := cell.Latency
				require.NotNil(t, l)
				assert.GreaterOrEqual(t, l.Samples, c.MinSamples)
				assert.Positive(t, l.P50)
				assert.GreaterOrEqual(t, l.P99, l.P50)
				if anchorSystem(sys) {
					assert.Nil(t, cell.Throughput)
				} else if assert.NotNil(t, cell.Throughput, "%s/%s/%d", wl.key, sys, w) {
					assert.Positive(t, cell.Throughput.PerSec)
					assert.GreaterOrEqual(t, cell.Throughput.Tasks, cell.Throughput.Batch)
				}
			}
		}
	}
	threads := rep.cell("noop+timeout", sysThreads, 1)
	assert.Positive(t, threads.Ratios.P50VsGo)
	assert.Positive(t, threads.Ratios.TasksVsGo)
	if pyErr == nil {
		assert.Positive(t, threads.Ratios.P50VsPython)
		assert.Equal(t, sysPyThread, threads.Ratios.PythonExecutor)
		assert.NotEmpty(t, rep.Meta.Python)
	} else {
		assert.Contains(t, out.String(), "note: Python not measured: python3 is not on PATH")
	}
	assert.Positive(t, rep.Meta.FibNative)

	// Every target is reported; all but the cold start (no runs asked for)
	// with a verdict (and Python's, when there is no Python).
	require.Len(t, rep.Targets, 32)
	for _, tg := range rep.Targets {
		pyOnly := strings.Contains(tg.Name, "ThreadPoolExecutor(50)")
		if strings.HasPrefix(tg.Name, "CLI cold start") || strings.HasPrefix(tg.Name, "wasmpool run vs wazero run") || pyOnly && pyErr != nil {
			assert.Nil(t, tg.Met)
			continue
		}
		assert.NotNil(t, tg.Met, tg.Name)
		assert.Positive(t, tg.Value, tg.Name)
	}
	require.NotNil(t, rep.RSS)
	assert.Positive(t, rep.RSS.KB[0])
	assert.Positive(t, rep.RSS.KB[1])

	table := out.String()
	for _, s := range []string{"workload", "executor", "p50", "tasks/s", "no-op, timeout", "fib(10)", "sha256 1KiB",
		"Go guest fib(1), isolated", sysThreads, sysProcesses, sysPreinit, sysSubprocess, sysBare, sysBareWarm, "targets (issues 4, 12, 15 and 16)",
		"RSS after 40 isolated tasks vs after 10",
		"I/O-bound: 200 URLs from a local HTTP server", fetchWasmpool, "raw JetStream"} {
		assert.Contains(t, table, s)
	}
	assert.Contains(t, prog.String(), "bench: [1/")

	path := filepath.Join(t.TempDir(), "out", "bench.json")
	require.NoError(t, rep.WriteJSON(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, len(rep.Cells), len(back.Cells))
	assert.Equal(t, rep.Targets, back.Targets)
	assert.Equal(t, 10, back.Meta.FibN)
}

// TestFetchMeasure: issue 15's flagship runs every executor for real, each
// round's every body checked, and without Python it says so and goes on.
func TestFetchMeasure(t *testing.T) {
	var out, prog bytes.Buffer
	c := tiny(&out, &prog)
	fc, err := measureFetch(context.Background(), c, newProgress(&prog))
	require.NoError(t, err)
	assert.Equal(t, 3, fc.Rounds)
	_, pyErr := exec.LookPath("python3")
	want := []string{fetchGo, fetchWasmpool}
	if pyErr == nil {
		want = append(want, fetchPython)
		assert.Positive(t, fc.VsPython)
		assert.NotEmpty(t, fc.Python)
	}
	for _, name := range want {
		assert.GreaterOrEqual(t, fc.Wall[name], fetchFloor(), "%s: no round beats the server's delays", name)
	}
	assert.Positive(t, fc.Ratios[fetchWasmpool])
	rep := &Report{Fetch: fc}
	ts := rep.fetchTargets()
	require.Len(t, ts, 2)
	assert.NotNil(t, ts[0].Met)

	c.Python = filepath.Join(t.TempDir(), "no-python3")
	fc, err = measureFetch(context.Background(), c, newProgress(&prog))
	require.NoError(t, err, "Python missing is not a failure")
	assert.NotContains(t, fc.Wall, fetchPython)
	assert.Contains(t, fc.PythonNote, "Python not measured: ")
	rep = &Report{Fetch: fc}
	rep.writeFetch(&out)
	assert.Contains(t, out.String(), "python ThreadPoolExecutor, urllib")
	assert.Nil(t, rep.fetchTargets()[1].Met)
	assert.Contains(t, rep.fetchTargets()[1].Anchor, "Python not measured: ")
}
