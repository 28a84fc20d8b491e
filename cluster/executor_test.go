package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// The single-machine default: a node with its own in-process server and
// local workers runs tasks through the same code path as a cluster.
func TestNodeRunsTasksLikeAPool(t *testing.T) {
	e := newEngine(t, nil)
	ctx := within(t)
	n, err := embedded.Start(ctx, e, embedded.Config{
		Executor: cluster.Config{Settings: settings(t, 5*time.Second)},
		Worker:   cluster.WorkerConfig{Pool: pool.Config{Mode: pool.Processes, Workers: 2}},
	})
	require.NoError(t, err)
	var x pool.Executor = n // swappable with a pool
	upper := gomod(t, e, "upper")

	res, err := x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("hello")}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "HELLO", string(res.Output))

	tasks := func(yield func(engine.Task) bool) {
		for i := range 20 {
			if !yield(engine.Task{Module: upper, Func: "upper", Input: fmt.Appendf(nil, "item %d", i)}) {
				return
			}
		}
	}
	i := 0
	for res, err := range x.Map(ctx, tasks) {
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("ITEM %d", i), string(res.Output), "Map keeps input order")
		i++
	}
	assert.Equal(t, 20, i)
	require.NoError(t, x.Shutdown(ctx))
	_, err = x.Submit(ctx, engine.Task{Module: upper, Func: "upper"}).Result(ctx)
	assert.ErrorIs(t, err, pool.ErrShutdown)
}

// Every kind of failure comes back as the same error a pool would give,
// named after the module as the submitter knows it, and none is retried.
func TestErrorsCrossTheWire(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set})
	e := newEngine(t, nil)
	w := newWorker(t, connect(t, s, "worker"), e, set, 2)
	ctx := within(t)
	run := func(task engine.Task) error {
		_, err := x.Submit(ctx, task).Result(ctx)
		require.Error(t, err)
		require.True(t, future.IsFailure(err))
		return err
	}

	err := run(engine.Task{Module: wat(t, e, "unreachable"), Func: "run"})
	var trap *engine.TrapError
	require.ErrorAs(t, err, &trap)
	assert.Equal(t, engine.TrapUnreachable, trap.Kind)
	assert.Contains(t, err.Error(), `module "unreachable.wasm"`)

	err = run(engine.Task{Module: wat(t, e, "spin"), Func: "spin", Timeout: 50 * time.Millisecond})
	assert.ErrorIs(t, err, engine.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "after 50ms")

	err = run(engine.Task{Module: wat(t, e, "noop"), Func: "nosuch"})
	assert.ErrorIs(t, err, engine.ErrNoFunction)

	err = run(engine.Task{Module: gomod(t, e, "hostile"), Func: "membomb"})
	assert.ErrorIs(t, err, engine.ErrMemoryLimit)

	err = run(engine.Task{Module: wat(t, e, "fail"), Func: "fail"})
	var te *engine.TaskError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "bad input", te.Message)

	err = run(engine.Task{Module: wat(t, e, "exit"), Args: []string{"a", "b", "c"}})
	var exit *engine.ExitError
	require.ErrorAs(t, err, &exit)
	assert.EqualValues(t, 3, exit.Code)

	assert.Zero(t, w.Stats().Requeued, "deterministic failures are results, never retried")
}

// Inputs and outputs over the broker's message limit go through the
// payload store, and come back whole.
func TestLargeInputAndOutput(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	e := newEngine(t, nil)
	newWorker(t, connect(t, s, "worker"), e, set, 1)
	ctx := within(t)

	big := bytes.Repeat([]byte("0123456789abcdef"), int(nc.MaxPayload())/16*2) // twice the limit
	res, err := x.Submit(ctx, engine.Task{Module: wat(t, e, "echo"), Func: "echo", Input: big}).Result(ctx)
	require.NoError(t, err)
	require.Equal(t, len(big), len(res.Output))
	assert.True(t, bytes.Equal(big, res.Output))
	assert.EqualValues(t, 2, x.Stats().LargePayloads, "the input and the output each went through the store")
}

// A large input is stored off the publisher's way: a small task submitted
// after it is published, run and finished while the large one is still
// being stored, which then finishes too.
func TestLargeInputDoesNotHoldUpLaterTasks(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	e := newEngine(t, nil)
	newWorker(t, connect(t, s, "worker"), e, set, 2)
	ctx := within(t)
	echo := wat(t, e, "echo")
	// The module is stored first, so that only the input is in the way.
	_, err := x.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("warm")}).Result(ctx)
	require.NoError(t, err)

	entered, release := make(chan struct{}, 1), make(chan struct{})
	defer cluster.HoldLargeInputs(entered, release)()
	big := bytes.Repeat([]byte("0123456789abcdef"), int(nc.MaxPayload())/16*2)
	large := x.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: big})
	<-entered // its input is being stored, and stays so
	res, err := x.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("small")}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "small", string(res.Output))
	assert.Equal(t, future.Pending, large.State(), "the large task is still waiting for its input to be stored")
	close(release)
	res, err = large.Result(ctx)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, res.Output))
}

// A module's upload is off the publisher's way too: while a new module is
// being stored, a task of one already stored runs and finishes, and the
// tasks waiting for the upload then run, after one upload.
func TestModuleUploadDoesNotHoldUpOtherModules(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	e := newEngine(t, nil)
	w := newWorker(t, connect(t, s, "worker"), e, set, 1)
	ctx := within(t)
	echo := wat(t, e, "echo")
	_, err := x.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("stored")}).Result(ctx)
	require.NoError(t, err)

	entered, release := make(chan struct{}, 1), make(chan struct{})
	defer cluster.HoldUploads(entered, release)()
	upper := gomod(t, e, "upper")
	first := x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("one")})
	<-entered // the new module is being stored, and stays so
	second := x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("two")})
	res, err := x.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte("other")}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "other", string(res.Output))
	assert.Equal(t, future.Pending, first.State(), "still waiting for its module to be stored")
	close(release)
	for _, f := range []*future.Future[engine.Result]{first, second} {
		require.NoError(t, f.Err(ctx))
	}
	assert.EqualValues(t, 2, x.Stats().ModulesUploaded, "one upload for both tasks of the new module")
	require.NoError(t, w.Shutdown(ctx))
}

// A result its submitter does not answer for (disconnected, say) is kept
// in the durable result stream instead, where the submitter finds it.
func TestUnansweredResultGoesThroughTheStream(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	e := newEngine(t, nil)
	newWorker(t, connect(t, s, "worker"), e, set, 1)
	ctx := within(t)
	require.NoError(t, cluster.RefuseAnswers(x))
	require.NoError(t, nc.Flush()) // the broker knows: the worker hears "no responders" at once
	res, err := x.Submit(ctx, engine.Task{Module: wat(t, e, "echo"), Func: "echo", Input: []byte("kept")}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "kept", string(res.Output))
}

// Close cancels what is unfinished; Submit after Shutdown fails at once.
func TestCloseCancelsUnfinished(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	x, err := cluster.New(within(t), connect(t, s, "executor"), cluster.Config{Settings: set})
	require.NoError(t, err)
	e := newEngine(t, nil)
	ctx := within(t)
	// No worker: the task waits in the queue.
	f := x.Submit(ctx, engine.Task{Module: wat(t, e, "noop"), Func: "noop"})
	require.NoError(t, x.Close())
	_, err = f.Result(ctx)
	assert.ErrorIs(t, err, pool.ErrShutdown)
	assert.ErrorIs(t, err, engine.ErrCancelled)
	_, err = x.Submit(ctx, engine.Task{Module: wat(t, e, "noop"), Func: "noop"}).Result(ctx)
	assert.ErrorIs(t, err, pool.ErrShutdown)
	require.NoError(t, x.Close(), "Close twice is fine")
	require.NoError(t, x.Shutdown(ctx), "and Shutdown after Close")
	assert.True(t, strings.Contains(err.Error(), "noop.wasm"))
}

// A future's callback may shut the executor down, whether a worker's result
// or Close ended the future.
func TestShutdownFromCallback(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	ctx := within(t)
	e := newEngine(t, nil)
	noop := wat(t, e, "noop")

	x, err := cluster.New(ctx, connect(t, s, "executor"), cluster.Config{Settings: set})
	require.NoError(t, err)
	newWorker(t, connect(t, s, "worker"), e, set, 1)
	shut := make(chan error, 2)
	f := x.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
	f.OnDone(func(*future.Future[engine.Result]) { shut <- x.Shutdown(ctx) })
	require.NoError(t, await(ctx, t, shut))
	require.NoError(t, f.Err(ctx))

	// Close ending two queued tasks (no worker here), each callback calling
	// Shutdown and Close.
	x, err = cluster.New(ctx, connect(t, s, "executor"), cluster.Config{Settings: settings(t, 5*time.Second)})
	require.NoError(t, err)
	var fs []*future.Future[engine.Result]
	for range 2 {
		f := x.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
		f.OnDone(func(*future.Future[engine.Result]) { shut <- errors.Join(x.Shutdown(ctx), x.Close()) })
		fs = append(fs, f)
	}
	require.NoError(t, x.Close())
	for range 2 {
		require.NoError(t, await(ctx, t, shut))
	}
	for _, f := range fs {
		assert.ErrorIs(t, f.Err(ctx), pool.ErrShutdown)
	}
}

// issue 13: Submit sent to the publisher's queue under the executor's lock,
// "never blocking" because the queue had room for every MaxPending slot.
// But a cancelled task frees its slot before the publisher takes its
// record: with the publisher stalled (a broker that does not answer),
// enough cancelled tasks filled the queue, and the next Submit blocked
// holding the lock, stalling Stats and every result with it.
func TestSubmitNeverBlocksUnderTheLock(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	entered, release := make(chan struct{}, 16), make(chan struct{})
	t.Cleanup(cluster.HoldPublisher(entered, release)) // after the executor's Close
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: settings(t, 5*time.Second), MaxPending: 2})
	defer close(release) // before it
	e := newEngine(t, nil)
	noop := wat(t, e, "noop")
	ctx := within(t)

	x.Submit(ctx, engine.Task{Module: noop, Func: "noop"}) // the publisher holds it
	<-entered
	for range 4 {
		f := x.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
		require.True(t, f.Cancel())
	}
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		f := x.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
		f.Cancel()
	}()
	select {
	case <-submitted:
	case <-time.After(30 * time.Second): // a deadlock, not a slow machine
		t.Fatal("Submit blocked with a MaxPending slot free")
	}
	st := x.Stats()
	assert.Equal(t, int64(6), st.Submitted)
	assert.Equal(t, int64(5), st.Cancelled)
	assert.Equal(t, int64(1), st.Pending)
}

// issue 13: a worker closing on purpose (a rolling restart) handed its
// running task back with a Nak, whose redelivery counted against
// MaxDeliveries as a worker death: a few restarts turned the task into
// ErrWorkerLost. Hand-backs do not count.
func TestGracefulRestartsDoNotCountAgainstMaxDeliveries(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set, MaxDeliveries: 2})
	g, entered := localGate("block")
	blocking := newEngine(t, g)
	ctx := within(t)
	f := x.Submit(ctx, engine.Task{Module: wat(t, blocking, "barrier"), Func: "run"})
	for i := range 3 {
		w := newWorker(t, connect(t, s, fmt.Sprintf("restarting-%d", i)), blocking, set, 1)
		await(ctx, t, entered)
		require.NoError(t, w.Close(), "a restart: the running task goes back")
	}
	// A worker whose gate lets the task pass finishes it.
	newWorker(t, connect(t, s, "last"), newEngine(t, nil), set, 1)
	_, err := f.Result(ctx)
	require.NoError(t, err, "three restarts are no three deaths")
}

// The module store has the TTL the cluster's settings give it.
func TestModuleStoreHasATTL(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	set.ModuleTTL = 90 * time.Minute
	nc := connect(t, s, "executor")
	newExecutor(t, nc, cluster.Config{Settings: set})
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	store, err := js.ObjectStore(within(t), set.Namespace+"_modules")
	require.NoError(t, err)
	st, err := store.Status(within(t))
	require.NoError(t, err)
	assert.Equal(t, 90*time.Minute, st.TTL())
}
