package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// routeWorker is a named worker with one slot and cfg's labels and mounts.
func routeWorker(t testing.TB, nc *nats.Conn, e *engine.Engine, s cluster.Settings, cfg cluster.WorkerConfig) *cluster.Worker {
	t.Helper()
	cfg.Settings, cfg.Pool, cfg.PollWait = s, pool.Config{Workers: 1}, 250*time.Millisecond
	w, err := cluster.NewWorker(within(t), nc, e, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return w
}

// Tasks that require a label, or mounts, run only on the worker that has
// them; tasks that require nothing still go to every worker.
func TestRoutesToTheWorkerThatHasWhatTheTaskRequires(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	ctx := within(t)
	g, entered := localGate("block")
	e := newEngine(t, g)
	routeWorker(t, connect(t, s, "plain"), e, set, cluster.WorkerConfig{Name: "plain"})
	routeWorker(t, connect(t, s, "gpu"), e, set, cluster.WorkerConfig{Name: "gpu", Labels: map[string]string{"gpu": "a100"}})
	routeWorker(t, connect(t, s, "disk"), e, set, cluster.WorkerConfig{Name: "disk", AllowMounts: true})
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set})
	noop := wat(t, e, "noop")

	gpu := cluster.TaskOptions{Require: cluster.Requirements{Labels: map[string]string{"gpu": "a100"}}}
	mount := engine.Task{Module: noop, Func: "noop", Mounts: []engine.Mount{{HostPath: t.TempDir(), GuestPath: "/d"}}}
	var fs, mounts []*future.Future[engine.Result]
	for range 3 {
		fs = append(fs, x.SubmitWith(ctx, engine.Task{Module: noop, Func: "noop"}, gpu))
		mounts = append(mounts, x.Submit(ctx, mount))
	}
	for _, f := range fs {
		res, err := f.Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "gpu", res.Worker, "only the worker labelled gpu=a100 runs them")
	}
	for _, f := range mounts {
		res, err := f.Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "disk", res.Worker, "only the worker allowing mounts runs them")
	}

	// Three one-slot workers, three tasks that block until released: each
	// worker holds one, whatever else it serves.
	barrier := wat(t, e, "barrier")
	var held []*future.Future[engine.Result]
	for range 3 {
		held = append(held, x.Submit(ctx, engine.Task{Module: barrier, Func: "run"}))
	}
	for range 3 {
		<-entered
	}
	close(g.release)
	ran := map[string]bool{}
	for _, f := range held {
		res, err := f.Result(ctx)
		require.NoError(t, err)
		ran[res.Worker] = true
	}
	assert.Equal(t, map[string]bool{"plain": true, "gpu": true, "disk": true}, ran, "tasks that require nothing go to any worker")
}

// A task granting a capability goes to the worker that provides it,
// instead of to one that would refuse it.
func TestGrantRoutesToTheWorkerWithTheCapability(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	ctx := within(t)
	kv := engine.Capability{Name: "kv", Funcs: map[string]engine.HostFunc{
		"pid": func(context.Context, []byte) ([]byte, error) { return []byte("from kv"), nil },
	}}
	with, err := engine.New(context.Background(), engine.Config{CacheDir: testmod.CompileCache(), Capabilities: []engine.Capability{kv}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, with.Close(context.Background())) })
	// The worker without it comes first: under the old way it would have
	// taken (and refused) the first task.
	routeWorker(t, connect(t, s, "without"), newEngine(t, nil), set, cluster.WorkerConfig{Name: "without"})
	routeWorker(t, connect(t, s, "with"), with, set, cluster.WorkerConfig{Name: "with"})
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set})
	m := gomod(t, with, "caps")
	var fs []*future.Future[engine.Result]
	for range 4 {
		fs = append(fs, x.Submit(ctx, engine.Task{Module: m, Func: "call", Input: []byte("kv\npid\n"), Grants: []string{"kv"}}))
	}
	for _, f := range fs {
		res, err := f.Result(ctx)
		require.NoError(t, err, "no worker refused it")
		assert.Equal(t, "with", res.Worker)
		assert.Equal(t, "from kv", string(res.Output))
	}
}

// A task that requires what no live worker has fails after the RouteWait,
// saying what is missing of which worker, and leaves the queue.
func TestNoWorkerFailsAfterTheRouteWait(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	ctx := within(t)
	e := newEngine(t, nil)
	routeWorker(t, connect(t, s, "a"), e, set, cluster.WorkerConfig{Name: "a", Labels: map[string]string{"gpu": "t4"}})
	routeWorker(t, connect(t, s, "b"), e, set, cluster.WorkerConfig{Name: "b"})
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set, RouteWait: 200 * time.Millisecond})
	req := cluster.TaskOptions{Require: cluster.Requirements{Labels: map[string]string{"gpu": "a100"}, MemoryBytes: 1 << 40}}
	start := time.Now()
	_, err := x.SubmitWith(ctx, engine.Task{Module: wat(t, e, "noop"), Func: "noop"}, req).Result(ctx)
	require.ErrorIs(t, err, cluster.ErrNoWorker)
	assert.NotErrorIs(t, err, engine.ErrNoCapability, "no capability was required")
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "it waited the RouteWait")
	assert.EqualError(t, err, `module "noop.wasm": no worker can run the task: it requires label gpu=a100, memory 1099511627776; `+
		`2 workers live: a lacks label gpu=a100, memory 1099511627776, b lacks label gpu=a100, memory 1099511627776 (waited 200ms)`)

	// It was taken out of its queue, as a cancelled task is.
	for {
		st, err := cluster.Status(ctx, nc, set)
		require.NoError(t, err)
		require.Len(t, st.Routes, 1)
		assert.Equal(t, "label gpu=a100, memory 1099511627776", st.Routes[0].Requires)
		assert.Zero(t, st.Routes[0].Workers)
		if st.Routes[0].Queued == 0 {
			break
		}
		pause(ctx, t)
	}
}

// A task no live worker can run waits in its queue, and runs on a worker
// that meets it as soon as one joins; a worker holds one task per slot
// whichever queues it serves.
func TestRoutedTaskWaitsForAWorkerToJoin(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	ctx := within(t)
	g, entered := localGate("block")
	e := newEngine(t, g)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set, Require: cluster.Requirements{Labels: map[string]string{"zone": "mars"}}})
	barrier := wat(t, e, "barrier")
	var fs []*future.Future[engine.Result]
	for range 2 {
		fs = append(fs, x.Submit(ctx, engine.Task{Module: barrier, Func: "run"}))
	}
	require.NoError(t, x.Flush(ctx))
	st, err := cluster.Status(ctx, nc, set)
	require.NoError(t, err)
	require.Len(t, st.Routes, 1)
	assert.Equal(t, cluster.RouteStatus{Key: st.Routes[0].Key, Requires: "label zone=mars",
		Requirements: cluster.Requirements{Labels: map[string]string{"zone": "mars"}}, Queued: 2}, st.Routes[0])

	w := routeWorker(t, connect(t, s, "mars"), e, set, cluster.WorkerConfig{Name: "mars", Labels: map[string]string{"zone": "mars"}})
	<-entered
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cons, err := js.Consumer(ctx, taskStream(set), "workers")
	require.NoError(t, err)
	// Its one slot holds one task: the other waits, and no request is
	// left at the broker to take it.
	for {
		st, err = cluster.Status(ctx, nc, set)
		require.NoError(t, err)
		ci, err := cons.Info(ctx)
		require.NoError(t, err)
		if st.Routes[0].InFlight+int64(ci.NumAckPending) == 1 && st.Routes[0].Queued == 1 && ci.NumWaiting == 0 && st.FreeSlots == 0 {
			break
		}
		require.LessOrEqual(t, st.Routes[0].InFlight+int64(ci.NumAckPending), int64(1), "one task per slot")
		pause(ctx, t)
	}
	close(g.release)
	for _, f := range fs {
		res, err := f.Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "mars", res.Worker)
	}
	require.NoError(t, w.Shutdown(ctx))
	assert.EqualValues(t, 2, w.Stats().Finished)
}

// Equal requirements, however written, are one set; the task's grants and
// mounts are among them.
func TestRequirementsCombine(t *testing.T) {
	a := cluster.Requirements{Labels: map[string]string{"zone": "eu", "gpu": "a100"}, Capabilities: []string{"kv", "http"}}
	b := cluster.Requirements{Capabilities: []string{"http"}, Labels: map[string]string{"gpu": "h100"}, MemoryBytes: 1 << 30}
	got := a.With(b)
	assert.Equal(t, cluster.Requirements{Labels: map[string]string{"zone": "eu", "gpu": "h100"}, Capabilities: []string{"http", "kv"}, MemoryBytes: 1 << 30}, got)
	assert.Equal(t, "label gpu=h100, label zone=eu, capability http, capability kv, memory 1073741824", got.String())
	assert.True(t, cluster.Requirements{}.With(cluster.Requirements{}).IsZero())
	w := cluster.WorkerInfo{Labels: map[string]string{"zone": "eu", "gpu": "h100"}, Capabilities: []string{"kv"}, MemoryLimit: 1 << 29}
	assert.Equal(t, []string{"capability http", "memory 1073741824"}, got.Missing(w))
}
