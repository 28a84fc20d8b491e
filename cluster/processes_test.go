package cluster_test

import (
	"context"
	"fmt"
	"strings"
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
)

// Tests with worker processes: this test binary re-executed (workerMain),
// connected over loopback TCP to a server in the test.

// procCluster is a server that listens on a random loopback port, an
// executor on it, and a way to hear which worker process entered a gate.
type procCluster struct {
	url     string
	set     cluster.Settings
	nc      *nats.Conn
	x       *cluster.Executor
	entered chan string // worker names, as gate tasks enter
}

func newProcCluster(t *testing.T, ackWait time.Duration) *procCluster {
	t.Helper()
	s := startServer(t, embedded.ServerConfig{Listen: "127.0.0.1:-1"})
	c := &procCluster{url: s.ClientURL(), set: settings(t, ackWait), entered: make(chan string, 64)}
	c.nc = connect(t, s, "test")
	c.x = newExecutor(t, c.nc, cluster.Config{Settings: c.set})
	sub, err := c.nc.Subscribe(c.set.Namespace+".test.entered", func(m *nats.Msg) { c.entered <- string(m.Data) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

func (c *procCluster) worker(t *testing.T, name, gate string) *workerProc {
	return startWorkerProc(t, c.url, name, c.set, gate)
}

// release lets every blocked gate task of every worker process go.
func (c *procCluster) release(t *testing.T) {
	require.NoError(t, c.nc.Publish(c.set.Namespace+".test.release", nil))
}

func (c *procCluster) waitEntered(t *testing.T) string {
	t.Helper()
	select {
	case name := <-c.entered:
		return name
	case <-within(t).Done():
		t.Fatal("no gate task entered a worker")
		return ""
	}
}

func taskStream(set cluster.Settings) string { return strings.ToUpper(set.Namespace) + "_TASKS" }

// taskCount is the number of tasks in the cluster's queue.
func taskCount(t *testing.T, nc *nats.Conn, set cluster.Settings) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(within(t), taskStream(set))
	require.NoError(t, err)
	info, err := st.Info(within(t))
	require.NoError(t, err)
	return info.State.Msgs
}

func TestSubmitMapAsCompletedAcrossTwoWorkerProcesses(t *testing.T) {
	c := newProcCluster(t, 5*time.Second)
	e := newEngine(t, nil)
	ctx := within(t)
	c.worker(t, "w1", "block")
	c.worker(t, "w2", "block")

	// Two blocking tasks can only both be inside the gate if both worker
	// processes (one slot each) run one.
	gated := wat(t, e, "barrier")
	fs := []*future.Future[engine.Result]{
		c.x.Submit(ctx, engine.Task{Module: gated, Func: "run"}),
		c.x.Submit(ctx, engine.Task{Module: gated, Func: "run"}),
	}
	names := map[string]bool{c.waitEntered(t): true, c.waitEntered(t): true}
	assert.Equal(t, map[string]bool{"w1": true, "w2": true}, names)
	for _, f := range fs {
		assert.Equal(t, future.Running, f.State(), "a worker said it started the task")
	}
	c.release(t)
	for _, f := range fs {
		_, err := f.Result(ctx)
		require.NoError(t, err)
	}

	upper := gomod(t, e, "upper")
	tasks := func(yield func(engine.Task) bool) {
		for i := range 30 {
			if !yield(engine.Task{Module: upper, Func: "upper", Input: fmt.Appendf(nil, "item %d", i)}) {
				return
			}
		}
	}
	i := 0
	for res, err := range c.x.Map(ctx, tasks) {
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("ITEM %d", i), string(res.Output))
		i++
	}
	assert.Equal(t, 30, i)

	div := wat(t, e, "divzero")
	fs = nil
	for i := range 10 {
		task := engine.Task{Module: upper, Func: "upper", Input: []byte("x")}
		if i%3 == 0 {
			task = engine.Task{Module: div, Func: "run"}
		}
		fs = append(fs, c.x.Submit(ctx, task))
	}
	seen, traps := 0, 0
	for f, err := range future.AsCompleted(ctx, fs...) {
		require.NoError(t, err)
		seen++
		if _, err := f.Result(ctx); err != nil {
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			assert.Equal(t, engine.TrapDivideByZero, trap.Kind)
			traps++
		}
	}
	assert.Equal(t, 10, seen)
	assert.Equal(t, 4, traps)
	done, pending, err := future.Wait(ctx, future.AllCompleted, fs...)
	require.NoError(t, err)
	assert.Len(t, done, 10)
	assert.Empty(t, pending)
}

// A worker killed with SIGKILL in the middle of a task never acknowledges
// it: after the ack deadline the broker hands it to another worker.
func TestWorkerKilledMidTaskIsCompletedElsewhere(t *testing.T) {
	c := newProcCluster(t, 2*time.Second)
	e := newEngine(t, nil)
	ctx := within(t)
	doomed := c.worker(t, "doomed", "block")
	f := c.x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"})
	require.Equal(t, "doomed", c.waitEntered(t))

	c.worker(t, "rescuer", "pass") // started only now: it cannot have taken the task first
	doomed.kill()
	_, err := f.Result(ctx)
	require.NoError(t, err, "the task is completed by the other worker")
	assert.Equal(t, "rescuer", c.waitEntered(t))
}

// A task that kills every worker that runs it fails after its max
// deliveries with ErrWorkerLost, and leaves the queue: JetStream would keep
// it otherwise. An at-most-once task fails after the first death.
func TestPoisonTaskFailsAfterMaxDeliveries(t *testing.T) {
	c := newProcCluster(t, time.Second)
	e := newEngine(t, nil)
	ctx := within(t)
	gated := wat(t, e, "barrier")

	// A supervisor that replaces each dead worker, as a service manager would.
	deaths := make(chan string, 16)
	stop := make(chan struct{})
	supervised := make(chan error, 1)
	go func() {
		for n := 1; ; n++ {
			p, err := spawnWorker(c.url, fmt.Sprintf("victim%d", n), c.set, "die")
			if err != nil {
				supervised <- err
				return
			}
			select {
			case <-p.done:
				deaths <- p.name
			case <-stop:
				p.kill()
				supervised <- nil
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		require.NoError(t, <-supervised)
	})

	for _, tc := range []struct {
		opts   cluster.TaskOptions
		deaths int
	}{
		{cluster.AtMostOnce, 1},
		{cluster.TaskOptions{MaxDeliveries: 2}, 2},
	} {
		f := c.x.SubmitWith(ctx, engine.Task{Module: gated, Func: "run"}, tc.opts)
		for range tc.deaths {
			c.waitEntered(t)
			await(ctx, t, deaths)
		}
		_, err := f.Result(ctx)
		require.ErrorIs(t, err, cluster.ErrWorkerLost)
		assert.Contains(t, err.Error(), fmt.Sprintf("handed to a worker %d time(s)", tc.deaths))
		assert.Contains(t, err.Error(), `module "barrier.wasm"`)
		select {
		case name := <-deaths:
			t.Fatalf("%s died: the task ran once more than allowed", name)
		default:
		}
		// The worker that refused it acknowledged it after publishing the
		// result: wait for that acknowledgement to land.
		for taskCount(t, c.nc, c.set) != 0 {
			pause(ctx, t)
		}
	}
}

// await receives from ch, failing the test if ctx ends first.
func await[T any](ctx context.Context, t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatal("waited in vain")
		var zero T
		return zero
	}
}

// pause paces a bounded poll of an outside condition (the broker's state).
func pause(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
		t.Fatal("the condition never held")
	}
}

// A task that runs longer than the ack deadline is not taken from its live
// worker: the worker's heartbeats keep it. Had they stopped, the idle second
// worker would have been handed the task and entered the gate too.
func TestLongTaskIsKeptByHeartbeats(t *testing.T) {
	c := newProcCluster(t, time.Second)
	e := newEngine(t, nil)
	ctx := within(t)
	c.worker(t, "w1", "block")
	f := c.x.Submit(ctx, engine.Task{Module: wat(t, e, "barrier"), Func: "run"})
	first := c.waitEntered(t)
	c.worker(t, "w2", "block")

	// Time passing is what is under test: three ack deadlines.
	time.Sleep(3 * c.set.AckWait)
	select {
	case name := <-c.entered:
		t.Fatalf("the running task was handed to %s as well", name)
	default:
	}
	c.release(t)
	_, err := f.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "w1", first)
}
