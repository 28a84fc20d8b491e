package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// jobCluster is a broker with one in-process worker, whose counters say
// how many tasks ran.
func jobCluster(t *testing.T) (string, *cluster.Worker) {
	t.Helper()
	srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("worker")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{CacheDir: testmod.CompileCache()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(ctx) })
	w, err := cluster.NewWorker(ctx, nc, e, cluster.WorkerConfig{Pool: pool.Config{Workers: 2}, PollWait: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	return srv.ClientURL(), w
}

// settled waits for the worker to have counted every task it ran: a job's
// result is kept before its worker counts it.
func settled(t *testing.T, w *cluster.Worker) {
	t.Helper()
	require.Eventually(t, func() bool { return w.Stats().Running == 0 }, 10*time.Second, time.Millisecond)
}

// A batch run again with the same --job prints every line's result, in
// order, once, and runs only the lines the job has not finished; so does
// map. jobs and job NAME show them; --delete removes one.
func TestJobResumesBatchAndMap(t *testing.T) {
	t.Parallel()
	url, w := jobCluster(t)
	upper := gomod(t, "upper")
	line := func(in string, key string) string {
		if key != "" {
			return fmt.Sprintf(`{"module": %q, "func": "upper", "input": %q, "key": %q}`+"\n", upper, in, key)
		}
		return fmt.Sprintf(`{"module": %q, "func": "upper", "input": %q}`+"\n", upper, in)
	}
	firstHalf := line("a", "") + line("b", "") + line("c", "kc")
	whole := firstHalf + line("d", "") + line("e", "ke")

	r := cli(t, firstHalf, "batch", "-", "--nats", url, "--job", "nightly")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "resumed")
	r = cli(t, whole, "batch", "-", "--nats", url, "--job", "nightly")
	require.Equal(t, exitOK, r.code, r.stderr)
	var outs []string
	for l := range strings.Lines(r.stdout) {
		var rl resultLine
		require.NoError(t, json.Unmarshal([]byte(l), &rl))
		assert.Equal(t, len(outs)+1, rl.Line)
		outs = append(outs, *rl.Text)
	}
	assert.Equal(t, []string{"A", "B", "C", "D", "E"}, outs, "every line once, in order, kept ones too")
	assert.Contains(t, r.stderr, "job nightly: 3 task(s) resumed from the job's kept results")
	settled(t, w)
	assert.Equal(t, int64(5), w.Stats().Finished, "no finished line ran again")

	// A key given to other work is that line's error, not the other's result.
	r = cli(t, line("x", "kc"), "batch", "-", "--nats", url, "--job", "nightly")
	assert.Equal(t, exitFailed, r.code, r.stderr)
	assert.Contains(t, r.stdout, "job key reused for different work")

	lines := "one\ntwo\nthree\n"
	m1 := cli(t, lines, "map", upper, "--func", "upper", "--lines", "-", "--nats", url, "--job", "m1")
	require.Equal(t, exitOK, m1.code, m1.stderr)
	m2 := cli(t, lines, "map", upper, "--func", "upper", "--lines", "-", "--nats", url, "--job", "m1")
	require.Equal(t, exitOK, m2.code, m2.stderr)
	assert.Equal(t, m1.stdout, m2.stdout)
	assert.Equal(t, "one\tONE\ntwo\tTWO\nthree\tTHREE\n", m2.stdout)
	assert.Contains(t, m2.stderr, "job m1: 3 task(s) resumed")
	settled(t, w)
	assert.Equal(t, int64(8), w.Stats().Finished)

	r = cli(t, "", "jobs", "--nats", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^JOB +LEFT +RUNNING +DONE +FAILED +CANCELLED +TOTAL`, r.stdout)
	assert.Regexp(t, `(?m)^m1 +0 +0 +3 +0 +0 +3 `, r.stdout)
	assert.Regexp(t, `(?m)^nightly +0 +0 +5 +0 +0 +5 `, r.stdout)
	r = cli(t, "", "jobs", "--nats", url, "--format", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var jobs []cluster.JobInfo
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &jobs))
	require.Len(t, jobs, 2)
	assert.Equal(t, "m1", jobs[0].Name)

	r = cli(t, "", "job", "nightly", "--nats", url, "--tasks", "--format", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var one struct {
		cluster.JobInfo
		Tasks []cluster.JobTask `json:"tasks"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &one))
	assert.Equal(t, 5, one.Done)
	require.Len(t, one.Tasks, 5)
	assert.Equal(t, []string{"#0", "#1", "#3", "kc", "ke"}, []string{one.Tasks[0].Key, one.Tasks[1].Key, one.Tasks[2].Key, one.Tasks[3].Key, one.Tasks[4].Key})
	r = cli(t, "", "job", "nightly", "--nats", url, "--key", "kc")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^KEY +STATE +WORKER +UPDATED +ID\n^kc +done +\S+ `, r.stdout)
	r = cli(t, "", "job", "nightly", "--nats", url, "--cancel")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "job nightly: 0 unfinished task(s) cancelled")
	r = cli(t, "", "job", "nightly", "--nats", url, "--delete")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = cli(t, "", "job", "nightly", "--nats", url)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "job nightly: no such job")
}

func TestJobFlagMistakes(t *testing.T) {
	t.Parallel()
	upper := gomod(t, "upper")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"map", upper, "--func", "upper", "--lines", "-", "--job", "j"}, "--job needs --nats URL"},
		{[]string{"map", upper, "--func", "upper", "--lines", "-", "--nats", "nats://127.0.0.1:1", "--job", "a b"}, `--job "a b"`},
		{[]string{"batch", "-", "--job-retention", "1h"}, "--job-retention needs --job NAME"},
		{[]string{"jobs"}, "--nats URL is required"},
		{[]string{"job", "x y", "--nats", "nats://127.0.0.1:1"}, `job "x y"`},
		{[]string{"job", "x", "--nats", "nats://127.0.0.1:1", "--cancel", "--delete"}, "not both"},
	} {
		r := cli(t, "", c.args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", c.args, r.stderr)
		assert.Contains(t, r.stderr, c.msg, c.args)
	}
}
