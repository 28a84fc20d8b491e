package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
)

// Cancelling a task no worker has taken yet removes it from the queue: it
// never runs.
func TestCancelBeforePickup(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	e := newEngine(t, nil)
	ctx := within(t)
	upper := gomod(t, e, "upper")

	// No worker yet: the task waits in the queue.
	f := x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("never")})
	require.NoError(t, x.Flush(ctx))
	require.EqualValues(t, 1, taskCount(t, nc, set))
	require.True(t, f.Cancel())
	require.NoError(t, x.Flush(ctx), "the cancellation is carried out")
	assert.Zero(t, taskCount(t, nc, set), "the cancelled task left the queue")

	w := newWorker(t, connect(t, s, "worker"), e, set, 1)
	res, err := x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("next")}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "NEXT", string(res.Output))
	assert.Equal(t, future.Cancelled, f.State())
	for w.Stats().Finished != 1 { // counted once the result is out
		pause(ctx, t)
	}
	require.NoError(t, w.Shutdown(ctx))
	st := w.Stats()
	assert.EqualValues(t, 1, st.Finished, "only the second task reached the worker")
	assert.Zero(t, st.Cancelled)
}

// Cancelling a running task stops it on its worker, whose slot is free
// again at once; a context's deadline crosses the wire the same way.
func TestCancelWhileRunning(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	g, entered := localGate("block") // never released: only a cancel ends it
	e := newEngine(t, g)
	w := newWorker(t, connect(t, s, "worker"), e, set, 1)
	ctx := within(t)
	spin := wat(t, e, "spin") // loops forever
	noop := wat(t, e, "noop")

	f := x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"})
	await(ctx, t, entered)
	require.True(t, f.Cancel())
	_, err := f.Result(ctx)
	assert.ErrorIs(t, err, context.Canceled)

	// The one slot can only run this if the blocked task was stopped.
	_, err = x.Submit(ctx, engine.Task{Module: noop, Func: "noop"}).Result(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, w.Stats().Cancelled)

	// A deadline: the future ends with it, and so does the task over there.
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = x.Submit(dctx, engine.Task{Module: spin, Func: "spin"}).Result(ctx)
	assert.ErrorIs(t, err, engine.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = x.Submit(ctx, engine.Task{Module: noop, Func: "noop"}).Result(ctx)
	require.NoError(t, err, "the slot is free again")
	require.NoError(t, x.Flush(ctx))
	for taskCount(t, nc, set) != 0 { // the worker's last acknowledgement
		pause(ctx, t)
	}
}

// A worker that missed the broadcast (it was disconnected) still finds the
// cancellation record as it picks the task up, and stops it.
func TestCancelRecordCheckedAtPickup(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	g, _ := localGate("block") // never released: only a cancel ends it
	e := newEngine(t, g)
	ctx := within(t)

	f := x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"})
	require.NoError(t, x.Flush(ctx))
	// Copy the queued task aside, as if the broker had handed it to a
	// worker just before the cancellation removed it from the queue.
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	tasks, err := js.Stream(ctx, taskStream(set))
	require.NoError(t, err)
	raw, err := tasks.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.True(t, f.Cancel())
	require.NoError(t, x.Flush(ctx))
	require.Zero(t, taskCount(t, nc, set))

	// The worker starts after the broadcast: only the record can tell it.
	w := newWorker(t, connect(t, s, "worker"), e, set, 1)
	_, err = js.Publish(ctx, raw.Subject, raw.Data) // the copy comes back
	require.NoError(t, err)
	for w.Stats().Cancelled != 1 { // stopped before or after it entered the gate
		pause(ctx, t)
	}
	noop := wat(t, e, "noop")
	_, err = x.Submit(ctx, engine.Task{Module: noop, Func: "noop"}).Result(ctx)
	require.NoError(t, err, "the slot is free: the copy was stopped")
	require.NoError(t, w.Shutdown(ctx))
	assert.EqualValues(t, 1, w.Stats().Finished, "only the noop reported")
}

// A worker already serving learns of a cancel record written while the
// task waits in the queue (its broadcast missed: here there is none at
// all) from its watch on the records, and drops the task as it picks it
// up, or stops it just after.
func TestCancelRecordSeenByARunningWorker(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	g, entered := localGate("block") // never released: only a cancel ends a barrier
	e := newEngine(t, g)
	ctx := within(t)
	w := newWorker(t, connect(t, s, "worker"), e, set, 1)

	barrier := wat(t, e, "barrier")
	busy := x.Submit(ctx, engine.Task{Module: barrier, Func: "run"})
	<-entered // the one slot is taken
	queued := x.Submit(ctx, engine.Task{Module: barrier, Func: "run"})
	require.NoError(t, x.Flush(ctx))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, set.Namespace+"_cancelled")
	require.NoError(t, err)
	_, err = kv.Put(ctx, x.ID()+"-2", nil) // the queued task's record, and no broadcast
	require.NoError(t, err)

	require.True(t, busy.Cancel()) // frees the slot for the queued task
	for w.Stats().Cancelled != 2 {
		pause(ctx, t)
	}
	assert.Equal(t, future.Pending, queued.State(), "its submitter was never told")
	require.True(t, queued.Cancel())
	_, err = x.Submit(ctx, engine.Task{Module: wat(t, e, "noop"), Func: "noop"}).Result(ctx)
	require.NoError(t, err, "the slot is free: the queued task was stopped")
	require.NoError(t, w.Shutdown(ctx))
	assert.EqualValues(t, 1, w.Stats().Finished, "only the noop reported")
}

// A broker restarted on the same store loses no task it accepted: neither
// those waiting in the queue nor the one running through the restart.
func TestBrokerRestartLosesNoAcceptedTask(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{StoreDir: t.TempDir()})
	set := settings(t, 5*time.Second)
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set})
	g, entered := localGate("block")
	e := newEngine(t, g)
	newWorker(t, connect(t, s, "worker"), e, set, 1)
	ctx := within(t)
	upper := gomod(t, e, "upper")

	running := x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"})
	await(ctx, t, entered) // the worker's one slot is busy: the rest wait in the queue
	var queued []*future.Future[engine.Result]
	for i := range 20 {
		queued = append(queued, x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: fmt.Appendf(nil, "task %d", i)}))
	}
	require.NoError(t, x.Flush(ctx), "every task is accepted")

	require.NoError(t, s.Restart())
	close(g.release)

	_, err := running.Result(ctx)
	require.NoError(t, err, "the running task reports after the restart")
	for i, f := range queued {
		res, err := f.Result(ctx)
		require.NoError(t, err, "task %d", i)
		assert.Equal(t, fmt.Sprintf("TASK %d", i), string(res.Output))
	}
}

// Workers fetch a module from the store once, however many of its tasks
// they run; the submitter stores it once.
func TestModuleFetchedOncePerWorker(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set})
	ctx := within(t)
	var workers []*cluster.Worker
	var gates []*gate
	entered := make(chan struct{}, 8)
	for range 2 {
		g, _ := localGate("block")
		g.entered = func() { entered <- struct{}{} }
		gates = append(gates, g)
		workers = append(workers, newWorker(t, connect(t, s, "worker"), newEngine(t, g), set, 2))
	}
	e := newEngine(t, nil)
	upper := gomod(t, e, "upper")

	// Four blocking tasks fill both workers' two slots: both run tasks.
	var fs []*future.Future[engine.Result]
	for range 4 {
		fs = append(fs, x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"}))
	}
	for range 4 {
		await(ctx, t, entered)
	}
	for _, g := range gates {
		close(g.release)
	}
	for i := range 40 {
		fs = append(fs, x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: fmt.Appendf(nil, "%d", i)}))
	}
	for _, f := range fs {
		require.NoError(t, f.Err(ctx))
	}
	for _, w := range workers {
		require.NoError(t, w.Shutdown(ctx)) // the last results are counted
	}
	total, fetched := int64(0), int64(0)
	for i, w := range workers {
		st := w.Stats()
		total += st.Finished
		fetched += st.ModulesFetched
		// Each ran two barrier tasks at once, and most of the 40 others.
		assert.GreaterOrEqual(t, st.ModulesFetched, int64(1), "worker %d", i)
		assert.LessOrEqual(t, st.ModulesFetched, int64(2), "worker %d fetched a module twice", i)
	}
	assert.EqualValues(t, 44, total)
	assert.GreaterOrEqual(t, fetched, int64(3))
	assert.EqualValues(t, 2, x.Stats().ModulesUploaded)
}
