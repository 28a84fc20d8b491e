package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
)

// statusJSON runs cluster status --format json until ok says it shows what
// the test waits for (a worker's record is refreshed within 100ms here).
func statusJSON(t *testing.T, url, what string, ok func(cluster.ClusterStatus) bool) cluster.ClusterStatus {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r := cli(t, "", "cluster", "status", "--nats", url, "--format", "json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var st cluster.ClusterStatus
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
		if ok(st) {
			return st
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("cluster status never showed %s; last:\n%s", what, r.stdout)
		}
	}
}

// cluster status shows the queue a worker drains, and the worker with its
// --label labels; a worker that stops leaves it.
func TestClusterStatusCommand(t *testing.T) {
	t.Parallel()
	srv, err := embedded.StartServer(embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	defer srv.Shutdown()
	url := srv.ClientURL()
	ctx := context.Background()
	nc, err := srv.Connect("submitter")
	require.NoError(t, err)
	defer nc.Close()
	// A short AckWait: records refreshed every 100ms, so the test waits little.
	x, err := cluster.New(ctx, nc, cluster.Config{Settings: cluster.Settings{AckWait: 500 * time.Millisecond, Memory: true}})
	require.NoError(t, err)
	defer x.Close()
	e, err := engine.New(ctx, engine.Config{})
	require.NoError(t, err)
	defer e.Close(ctx)
	add, err := e.CompileFile(ctx, wat(t, "add"))
	require.NoError(t, err)

	var futs []*future.Future[engine.Result]
	for range 2 {
		futs = append(futs, x.Submit(ctx, engine.Task{Module: add, Func: "add", Params: []uint64{1, 2}}))
	}
	statusJSON(t, url, "2 queued tasks", func(st cluster.ClusterStatus) bool { return st.Queued == 2 })
	r := cli(t, "", "cluster", "status", "--nats", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `cluster "wasmpool": 0 worker(s), 0 slot(s), 0 running`)
	assert.Contains(t, r.stdout, "queue: 2 queued, 0 in flight (0 redelivered)")
	assert.Contains(t, r.stdout, "no worker is advertising")

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var werr syncBuffer
	worker := make(chan int, 1)
	go func() {
		worker <- runContext(wctx, []string{"worker", "--nats", url, "--workers", "1", "--name", "w1",
			"--label", "zone=eu-west-1", "--label", "gpu=a100"}, strings.NewReader(""), io.Discard, &werr)
	}()
	for _, f := range futs {
		res, err := f.Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, []uint64{3}, res.Values)
	}
	st := statusJSON(t, url, "w1 with its 2 tasks", func(st cluster.ClusterStatus) bool {
		return len(st.Workers) == 1 && st.Workers[0].Succeeded == 2
	})
	assert.Equal(t, "w1", st.Workers[0].Name)
	assert.Equal(t, map[string]string{"gpu": "a100", "zone": "eu-west-1"}, st.Workers[0].Labels)
	assert.Equal(t, int64(0), st.Queued)
	r = cli(t, "", "cluster", "status", "--nats", url)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `cluster "wasmpool": 1 worker(s), 1 slot(s)`)
	assert.Regexp(t, `(?m)^WORKER +HOST +PID +MODE +SLOTS +RUNNING +SUCCEEDED +FAILED`, r.stdout)
	assert.Regexp(t, `(?m)^w1 .* threads +1 +0 +2 +0 .* gpu=a100,zone=eu-west-1 +-$`, r.stdout)

	stop() // SIGINT
	assert.Equal(t, exitOK, <-worker, werr.String())
	st = statusJSON(t, url, "no worker", func(st cluster.ClusterStatus) bool { return true })
	assert.Empty(t, st.Workers, "the worker deleted its record as it stopped")
}

func TestClusterStatusMistakes(t *testing.T) {
	t.Parallel()
	r := cli(t, "", "cluster", "status", "--nats", "nats://s3cret@127.0.0.1:1")
	assert.Equal(t, exitUnavailable, r.code, "no broker: try again later, as map and batch")
	line := singleLine(t, r.stderr)
	assert.Contains(t, line, "wasmpool: cluster unavailable: cannot connect to NATS at nats://***@127.0.0.1:1")
	assert.NotContains(t, line, "s3cret")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "status"}, "--nats URL is required"},
		{[]string{"cluster", "status", "--nats", "nats://127.0.0.1:1", "--format", "xml"}, `--format "xml"`},
		{[]string{"worker", "--nats", "nats://127.0.0.1:1", "--label", "zone"}, `--label "zone": want KEY=VALUE`},
		{[]string{"worker", "--nats", "nats://127.0.0.1:1", "--label", "a=1", "--label", "a=2"}, `a is already "1"`},
		{[]string{"worker", "--nats", "nats://127.0.0.1:1", "--label", "zone=eu west"}, `worker label zone="eu west"`},
		{[]string{"serve-nats", "--monitor", "8222", "--store", ""}, "--monitor \"8222\": want HOST:PORT"},
	} {
		r := cli(t, "", tc.args...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, "%q", tc.args)
	}
}

// serve-nats --monitor serves NATS's own endpoints, where it says.
func TestServeNATSMonitor(t *testing.T) {
	t.Parallel()
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	var serr syncBuffer
	served := make(chan int, 1)
	go func() {
		served <- runContext(sctx, []string{"serve-nats", "--listen", "127.0.0.1:-1", "--monitor", "127.0.0.1:-1", "--store", ""},
			strings.NewReader(""), io.Discard, &serr)
	}()
	monRE := regexp.MustCompile(`NATS monitoring at (http://\S+)`)
	var mon string
	timeout := time.After(time.Minute)
	for mon == "" {
		if m := monRE.FindStringSubmatch(serr.String()); m != nil {
			mon = m[1]
			break
		}
		select {
		case <-serr.written():
		case code := <-served:
			t.Fatalf("serve-nats exited with %d: %s", code, serr.String())
		case <-timeout:
			t.Fatalf("serve-nats never announced its monitoring: %s", serr.String())
		}
	}
	for path, want := range map[string]string{"/varz": `"server_name": "wasmpool"`, "/jsz": `"streams": `} {
		resp, err := http.Get(mon + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, string(body), want, path)
	}
	http.DefaultClient.CloseIdleConnections()
	stop()
	assert.Equal(t, exitOK, <-served, serr.String())
}
