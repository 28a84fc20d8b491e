package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// Failover: what a dead worker, a restarted broker and an unreachable one
// do to a job. Times are measured and logged, never asserted: the machine
// is shared.

// A worker process killed (SIGKILL) in the middle of a job loses nothing:
// every task's result comes back, right by its content, and the task the
// dead worker held runs elsewhere once the AckWait has passed.
func TestWorkerKilledMidJobLosesNothing(t *testing.T) {
	c := newProcCluster(t, 2*time.Second)
	e := newEngine(t, nil)
	ctx := within(t)
	doomed := c.worker(t, "doomed", "block")
	upper, gated := gomod(t, e, "upper"), wat(t, e, "barrier")

	// The doomed worker, alone at first, runs the first 50 tasks and blocks
	// in the gate of the 51st; the steady one (whose gate lets tasks pass)
	// joins and works through the rest; the doomed one dies while it does.
	const n, gateAt = 200, 50
	fs := make([]*future.Future[engine.Result], n)
	for i := range n {
		task := engine.Task{Module: upper, Func: "upper", Input: fmt.Appendf(nil, "item %d", i)}
		if i == gateAt {
			task = engine.Task{Module: gated, Func: "run"}
		}
		fs[i] = c.x.Submit(ctx, task)
	}
	require.Equal(t, "doomed", c.waitEntered(t))
	c.worker(t, "steady", "pass")
	require.NoError(t, fs[gateAt+10].Err(ctx))
	killed := time.Now()
	doomed.kill()
	_ = fs[gateAt].Err(ctx)
	recovery := time.Since(killed)
	assert.Equal(t, "steady", c.waitEntered(t), "the held task ran on the other worker")

	lost, wrong := 0, 0
	for i, f := range fs {
		res, err := f.Result(ctx)
		switch {
		case err != nil:
			t.Errorf("task %d: %v", i, err)
			lost++
		case i != gateAt && string(res.Output) != fmt.Sprintf("ITEM %d", i):
			t.Errorf("task %d: got %q", i, res.Output)
			wrong++
		}
	}
	assert.Zero(t, lost, "lost")
	assert.Zero(t, wrong, "wrong")
	t.Logf("%d tasks, a worker killed mid-job: %d lost, %d wrong; the task it held finished elsewhere %v after the kill (AckWait %v)",
		n, lost, wrong, recovery.Round(time.Millisecond), c.set.AckWait)
}

// After a broker restart on the same store, a worker asks for tasks again
// within a second or two: its pull requests, which the broker forgot, end
// when the broker's idle heartbeats stop (as its log says), not after its
// PollWait (10s: nats.go sends no heartbeats of its own below that).
func TestWorkersResumeAfterBrokerRestart(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{StoreDir: t.TempDir()})
	set := settings(t, 2*time.Second)
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set})
	e := newEngine(t, nil)
	ctx := within(t)
	var log lockedBuffer
	w, err := cluster.NewWorker(ctx, connect(t, s, "worker"), e, cluster.WorkerConfig{
		Settings: set, Pool: pool.Config{Workers: 2}, Logger: slog.New(slog.NewTextHandler(&log, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	upper := gomod(t, e, "upper")
	res, err := x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("before")}).Result(ctx)
	require.NoError(t, err)
	require.Equal(t, "BEFORE", string(res.Output))

	for round := range 2 {
		require.NoError(t, s.Restart())
		back := time.Now()
		res, err = x.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("after")}).Result(ctx)
		require.NoError(t, err, "round %d", round)
		require.Equal(t, "AFTER", string(res.Output))
		t.Logf("restart %d: the first task submitted after the broker came back finished %v later", round+1, time.Since(back).Round(time.Millisecond))
	}
	assert.Contains(t, log.String(), "the broker stopped answering a request for a task: asking again")
}

// lockedBuffer is a log written by a worker's goroutines and read by the
// test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An outage longer than the executor's PublishTimeout fails a task with
// ErrUnavailable, not a timeout; a shorter one is ridden out, and the task
// runs once the broker is back.
func TestOutageIsUnavailableAfterTheBound(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{StoreDir: t.TempDir()})
	set := settings(t, 2*time.Second)
	impatient := newExecutor(t, connect(t, s, "impatient"), cluster.Config{Settings: set, PublishTimeout: 300 * time.Millisecond})
	patient := newExecutor(t, connect(t, s, "patient"), cluster.Config{Settings: set, PublishTimeout: time.Minute})
	e := newEngine(t, nil)
	newWorker(t, connect(t, s, "worker"), e, set, 1)
	ctx := within(t)
	noop := wat(t, e, "noop")
	for _, x := range []*cluster.Executor{impatient, patient} { // the module is stored
		_, err := x.Submit(ctx, engine.Task{Module: noop, Func: "noop"}).Result(ctx)
		require.NoError(t, err)
	}

	s.Shutdown()
	_, err := impatient.Submit(ctx, engine.Task{Module: noop, Func: "noop"}).Result(ctx)
	require.ErrorIs(t, err, cluster.ErrUnavailable)
	assert.NotErrorIs(t, err, engine.ErrTimeout)
	assert.False(t, errors.Is(err, context.DeadlineExceeded), "the cause is the broker's, not the retries' deadline: %v", err)
	assert.Contains(t, err.Error(), `module "noop.wasm"`)
	assert.Contains(t, err.Error(), "within 300ms")
	t.Logf("outage: %v", err)

	waiting := patient.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
	require.NoError(t, s.Restart())
	_, err = waiting.Result(ctx)
	require.NoError(t, err, "an outage within the bound is ridden out")

	// The task that failed as unavailable was not left in the connection's
	// reconnect buffer, to be stored (and run) once the broker came back:
	// the stream has had three tasks, the two before and the one after.
	js, err := jetstream.New(connect(t, s, "test"))
	require.NoError(t, err)
	st, err := js.Stream(ctx, taskStream(set))
	require.NoError(t, err)
	assert.EqualValues(t, 3, st.CachedInfo().State.LastSeq, "tasks ever stored")
}

// An at-most-once task handed to a worker that died before beginning it
// (here: a consumer that took it and said nothing) runs on the next
// worker: only a task that began somewhere fails with ErrWorkerLost.
func TestAtMostOnceTaskThatNeverBeganRuns(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	e := newEngine(t, nil)
	ctx := within(t)

	f := x.SubmitWith(ctx, engine.Task{Module: gomod(t, e, "upper"), Func: "upper", Input: []byte("once")}, cluster.AtMostOnce)
	require.NoError(t, x.Flush(ctx))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	thief, err := js.Consumer(ctx, taskStream(set), "workers")
	require.NoError(t, err)
	batch, err := thief.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	taken := 0
	for range batch.Messages() {
		taken++ // and never acknowledged: a worker that died at once
	}
	require.NoError(t, batch.Error())
	require.Equal(t, 1, taken)

	newWorker(t, connect(t, s, "worker"), e, set, 1)
	res, err := f.Result(ctx)
	require.NoError(t, err, "redelivered after the AckWait, and run")
	assert.Equal(t, "ONCE", string(res.Output))
}

// Apply changes an existing store's settings to the operator's (what
// serve-nats does with its flags), and a worker that was running under the
// old AckWait keeps its task under the new, shorter one: it reports
// progress at least every second.
func TestApplyChangesAnExistingStore(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{StoreDir: t.TempDir()})
	nc := connect(t, s, "operator")
	ctx := within(t)
	set := settings(t, 30*time.Second)
	require.NoError(t, cluster.Setup(ctx, nc, set))
	g, entered := localGate("block")
	e := newEngine(t, g)
	newWorker(t, connect(t, s, "w1"), e, set, 1)
	x := newExecutor(t, connect(t, s, "executor"), cluster.Config{Settings: set})
	f := x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"})
	await(ctx, t, entered)
	// A requirement set's queue, which takes the new AckWait too.
	routed := x.SubmitWith(ctx, engine.Task{Module: wat(t, e, "noop"), Func: "noop"},
		cluster.TaskOptions{Require: cluster.Requirements{Labels: map[string]string{"zone": "x"}}})
	require.NoError(t, x.Flush(ctx))

	set.AckWait, set.ResultTTL = 2*time.Second, time.Hour
	changed, err := cluster.Apply(ctx, nc, set)
	require.NoError(t, err)
	assert.Contains(t, changed, "AckWait 2s (was 30s)")
	assert.Contains(t, changed, "AckWait 2s of 1 requirement set queue(s)")
	routed.Cancel()
	assert.Contains(t, changed, "the result stream: ResultTTL 1h0m0s (was 24h0m0s)")
	assert.Contains(t, changed, "the worker records: AckWait 2s (was 30s)", "a dead worker leaves the list as soon as its tasks go")
	assert.Contains(t, changed, "the submitter records: three AckWaits 6s (was 1m30s)", "a dead submitter's tasks are dropped as soon")
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cons, err := js.Consumer(ctx, taskStream(set), "workers")
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, cons.CachedInfo().Config.AckWait)
	changed, err = cluster.Apply(ctx, nc, set)
	require.NoError(t, err)
	assert.Empty(t, changed, "applied already")

	// A second, idle worker would be handed the running task if the first
	// one's progress reports were paced by the AckWait it started with.
	newWorker(t, connect(t, s, "w2"), e, set, 1)
	time.Sleep(2 * set.AckWait) // time passing is what is under test
	select {
	case <-entered:
		t.Fatal("the running task was handed to the second worker")
	default:
	}
	close(g.release)
	require.NoError(t, f.Err(ctx))

	set.Memory = true
	_, err = cluster.Apply(ctx, nc, set)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "JetStream cannot move a stream")
}

// A slot takes its next task only once the last one is acknowledged: here
// the first task's result can go nowhere (its submitter does not answer,
// and the result stream is gone), and the second task waits in the queue
// instead of being held by the same worker, where its death would hold
// both.
func TestSlotTakesNoTaskBeforeTheLastIsAcknowledged(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	e := newEngine(t, nil)
	newWorker(t, connect(t, s, "worker"), e, set, 1)
	ctx := within(t)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	results := strings.ToUpper(set.Namespace) + "_RESULTS"
	require.NoError(t, js.DeleteStream(ctx, results))
	require.NoError(t, cluster.RefuseAnswers(x))
	// Back before the executor closes, which removes its consumer there.
	t.Cleanup(func() { require.NoError(t, cluster.Setup(context.Background(), nc, set)) })

	noop := wat(t, e, "noop")
	first := x.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
	second := x.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
	require.NoError(t, x.Flush(ctx))
	for first.State() != future.Running {
		pause(ctx, t)
	}
	time.Sleep(500 * time.Millisecond) // time for a slot that did not wait to take the second
	cons, err := js.Consumer(ctx, taskStream(set), "workers")
	require.NoError(t, err)
	info := cons.CachedInfo()
	assert.Equal(t, 1, info.NumAckPending, "the worker holds one task")
	assert.EqualValues(t, 1, info.NumPending, "the other waits in the queue")
	assert.Equal(t, future.Pending, second.State())
}

// A worker process frozen (SIGSTOP) past the AckWait loses its task to
// another worker, which finishes it; thawed, the frozen one finishes its
// copy too, which changes nothing: the future kept the first result, both
// workers serve on, and nothing is left in the queue.
func TestFrozenWorkerLosesItsTaskAndIsIgnoredWhenThawed(t *testing.T) {
	c := newProcCluster(t, time.Second)
	e := newEngine(t, nil)
	ctx := within(t)
	frozen := c.worker(t, "frozen", "block")
	f := c.x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"})
	require.Equal(t, "frozen", c.waitEntered(t))
	require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	c.worker(t, "thawed-out", "pass")
	res, err := f.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "thawed-out", res.Worker)
	t.Logf("a worker frozen mid-task: its task finished elsewhere %v later (AckWait %v)", time.Since(stopped).Round(time.Millisecond), c.set.AckWait)

	require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGCONT))
	c.release(t) // the thawed worker's gate lets its copy finish
	noop := wat(t, e, "noop")
	for range 4 { // both workers are alive and serving
		_, err := c.x.Submit(ctx, engine.Task{Module: noop, Func: "noop"}).Result(ctx)
		require.NoError(t, err)
	}
	for taskCount(t, c.nc, c.set) != 0 {
		pause(ctx, t)
	}
}

// A worker keeps requests at the broker for its free slots, never for
// more: with every slot busy it holds one task per slot, and the rest wait
// in the queue for other workers, as they would if it died.
func TestPullsHoldOneTaskPerSlot(t *testing.T) {
	s := startServer(t, embedded.ServerConfig{})
	set := settings(t, 5*time.Second)
	nc := connect(t, s, "executor")
	x := newExecutor(t, nc, cluster.Config{Settings: set})
	g, entered := localGate("block")
	e := newEngine(t, g)
	ctx := within(t)
	barrier := wat(t, e, "barrier")
	var fs []*future.Future[engine.Result]
	for range 5 {
		fs = append(fs, x.Submit(ctx, engine.Task{Module: barrier, Func: "run"}))
	}
	require.NoError(t, x.Flush(ctx))
	w := newWorker(t, connect(t, s, "worker"), e, set, 3)
	for range 3 {
		<-entered
	}
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cons, err := js.Consumer(ctx, taskStream(set), "workers")
	require.NoError(t, err)
	// A request for more than the free slots would be waiting at the
	// broker, or served: wait until none waits, then count what is held.
	info := cons.CachedInfo()
	for info.NumWaiting != 0 {
		pause(ctx, t)
		info, err = cons.Info(ctx)
		require.NoError(t, err)
	}
	assert.Equal(t, 3, info.NumAckPending, "the worker holds one task per slot")
	assert.EqualValues(t, 2, info.NumPending, "the others wait in the queue")
	close(g.release)
	for _, f := range fs {
		require.NoError(t, f.Err(ctx))
	}
	require.NoError(t, w.Shutdown(ctx))
	assert.EqualValues(t, 5, w.Stats().Finished)
}
