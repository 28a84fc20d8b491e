package cluster_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// statusUntil reads the cluster's status until ok says it is what the
// test waits for: the broker's counts and the workers' records settle
// within a record's refresh, bounded by the test's deadline.
func statusUntil(t *testing.T, ctx context.Context, s *embedded.Server, st cluster.Settings, what string, ok func(cluster.ClusterStatus) bool) cluster.ClusterStatus {
	t.Helper()
	nc := connect(t, s, "status")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		cs, err := cluster.Status(ctx, nc, st)
		require.NoError(t, err)
		if ok(cs) {
			return cs
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("status never showed %s; last: %+v", what, cs)
		}
	}
}

// A worker is in the status from the moment NewWorker returns, with what
// it has; its counters and the queue's follow what it runs; it leaves the
// list the moment it stops.
func TestStatusShowsWorkersAndQueue(t *testing.T) {
	t.Parallel()
	s := startServer(t, embedded.ServerConfig{})
	ctx := within(t)
	st := settings(t, 500*time.Millisecond) // records refreshed every 100ms
	x := newExecutor(t, connect(t, s, "client"), cluster.Config{Settings: st})
	e := newEngine(t, nil)
	add, trap := wat(t, e, "add"), wat(t, e, "unreachable")

	// No worker yet: the tasks wait in the queue, and the broker counts them.
	var futs []*future.Future[engine.Result]
	for i := range 3 {
		futs = append(futs, x.Submit(ctx, engine.Task{Module: add, Func: "add", Params: []uint64{uint64(i), 40}}))
	}
	futs = append(futs, x.Submit(ctx, engine.Task{Module: trap, Func: "run"}))
	cs := statusUntil(t, ctx, s, st, "4 queued tasks", func(cs cluster.ClusterStatus) bool { return cs.Queued == 4 })
	assert.Empty(t, cs.Workers)
	assert.Equal(t, st.Namespace, cs.Namespace)

	kv := engine.Capability{Name: "kv", Funcs: map[string]engine.HostFunc{
		"get": func(context.Context, []byte) ([]byte, error) { return nil, nil },
	}}
	we, err := engine.New(context.Background(), engine.Config{CacheDir: testmod.CompileCache(), Capabilities: []engine.Capability{kv}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, we.Close(context.Background())) })
	w, err := cluster.NewWorker(ctx, connect(t, s, "worker"), we, cluster.WorkerConfig{
		Settings: st, Name: "gpu-box", Pool: pool.Config{Workers: 2}, PollWait: time.Second,
		Labels: map[string]string{"gpu": "a100", "zone": "eu-west-1"}, AllowMounts: true,
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()

	for i, f := range futs {
		res, err := f.Result(ctx)
		if i == 3 {
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, []uint64{uint64(i) + 40}, res.Values)
	}
	cs = statusUntil(t, ctx, s, st, "the worker's 4 tasks", func(cs cluster.ClusterStatus) bool {
		return len(cs.Workers) == 1 && cs.Workers[0].Succeeded+cs.Workers[0].Failed == 4 && cs.Queued == 0 && cs.InFlight == 0
	})
	got := cs.Workers[0]
	host, _ := os.Hostname()
	assert.Equal(t, cluster.AdvertFormat, got.Format)
	assert.NotEmpty(t, got.ID)
	assert.Equal(t, "gpu-box", got.Name)
	assert.Equal(t, host, got.Host)
	assert.Equal(t, os.Getpid(), got.PID)
	assert.Equal(t, 2, got.Slots)
	assert.Equal(t, pool.Threads.String(), got.Mode)
	assert.Equal(t, map[string]string{"gpu": "a100", "zone": "eu-west-1"}, got.Labels)
	assert.Equal(t, []string{"kv"}, got.Capabilities)
	assert.True(t, got.AllowMounts)
	assert.Equal(t, we.MemoryLimit(), got.MemoryLimit)
	assert.Equal(t, int64(3), got.Succeeded)
	assert.Equal(t, int64(1), got.Failed, "the trap is a result, and a failed one")
	assert.Zero(t, got.Running)
	assert.Greater(t, got.Rate, 0.0, "4 tasks in its first second")
	assert.False(t, got.Draining)
	assert.False(t, got.SeenAt.Before(got.StartedAt))
	assert.Equal(t, int64(2), cs.Slots)
	assert.Equal(t, int64(3), cs.Succeeded)
	assert.Equal(t, int64(1), cs.Failed)
	assert.Equal(t, got.Rate, cs.Rate)
	assert.Equal(t, got.ID, w.Info().ID, "the record is the worker's own")

	require.NoError(t, w.Close())
	nc := connect(t, s, "status after")
	cs, err = cluster.Status(ctx, nc, st)
	require.NoError(t, err)
	assert.Empty(t, cs.Workers, "a worker that stops deletes its record")
}

// A worker that dies cannot delete its record: the broker drops it once
// the worker has not written it for the bucket's TTL (the AckWait).
func TestDeadWorkerLeavesStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t, embedded.ServerConfig{})
	ctx := within(t)
	st := settings(t, 300*time.Millisecond)
	wnc := connect(t, s, "worker")
	w := newWorker(t, wnc, newEngine(t, nil), st, 1)
	cs := statusUntil(t, ctx, s, st, "the worker", func(cs cluster.ClusterStatus) bool { return len(cs.Workers) == 1 })
	assert.Equal(t, w.Name(), cs.Workers[0].Name)
	// Another live worker keeps its record all along.
	other := newWorker(t, connect(t, s, "other"), newEngine(t, nil), st, 1)
	// Both records first: otherwise "one worker left" can be the dead one,
	// seen before the other's first record.
	statusUntil(t, ctx, s, st, "both workers", func(cs cluster.ClusterStatus) bool { return len(cs.Workers) == 2 })

	start := time.Now()
	wnc.Close() // as if its process died: no goodbye
	// Well past the TTL, but not the test's two minutes: a record that
	// never expires fails here.
	gone, cancel := context.WithTimeout(ctx, 30*st.AckWait)
	defer cancel()
	cs = statusUntil(t, gone, s, st, "the dead worker gone", func(cs cluster.ClusterStatus) bool { return len(cs.Workers) < 2 })
	require.Len(t, cs.Workers, 1, "the live one stays")
	assert.Equal(t, other.Info().ID, cs.Workers[0].ID, "the live one stays")
	t.Logf("the dead worker's record went %v after its connection", time.Since(start))
	<-w.Done()
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, embedded.ServerConfig{})
	ctx := within(t)
	_, err := cluster.Status(ctx, connect(t, s, "status"), settings(t, time.Second))
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	assert.ErrorContains(t, err, "no worker or submitter of that namespace has connected to it")

	nc := connect(t, s, "closed")
	nc.Close()
	_, err = cluster.Status(ctx, nc, settings(t, time.Second))
	require.ErrorIs(t, err, cluster.ErrUnavailable)
	assert.ErrorContains(t, err, "the broker did not answer for the status of")

	// A label a router could not match is refused before the worker joins.
	_, err = cluster.NewWorker(ctx, connect(t, s, "worker"), newEngine(t, nil), cluster.WorkerConfig{
		Settings: settings(t, time.Second), Labels: map[string]string{"zone": "eu west"},
	})
	assert.ErrorContains(t, err, `worker label zone="eu west"`)
}

// A broker that restarts loses the records (they are kept in memory): the
// live workers make the bucket again and are back in the status within a
// refresh.
func TestWorkerRecordsSurviveBrokerRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, embedded.ServerConfig{StoreDir: t.TempDir()})
	ctx := within(t)
	st := settings(t, 500*time.Millisecond)
	w := newWorker(t, connect(t, s, "worker"), newEngine(t, nil), st, 1)
	statusUntil(t, ctx, s, st, "the worker", func(cs cluster.ClusterStatus) bool { return len(cs.Workers) == 1 })

	t0 := time.Now()
	require.NoError(t, s.Restart())
	t.Logf("restart took %v", time.Since(t0))
	defer func() { t.Logf("back %v after the restart", time.Since(t0)) }()
	back, cancel := context.WithTimeout(ctx, 20*st.AckWait)
	defer cancel()
	cs := statusUntil(t, back, s, st, "the worker again", func(cs cluster.ClusterStatus) bool { return len(cs.Workers) == 1 })
	assert.Equal(t, w.Info().ID, cs.Workers[0].ID)
}
