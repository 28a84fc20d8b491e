package pool_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

func TestSubmitResultBothModes(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 2})
			upper := goModule(t, e, "upper")
			ctx := within(t)
			var fs []*future.Future[engine.Result]
			for i := range 20 {
				fs = append(fs, p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte(fmt.Sprintf("task %d", i))}))
			}
			for i, f := range fs {
				res, err := f.Result(ctx)
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("TASK %d", i), string(res.Output))
				assert.Equal(t, future.Succeeded, f.State())
			}
			require.NoError(t, p.Shutdown(ctx))
			st := p.Stats()
			assert.Equal(t, int64(20), st.Submitted)
			assert.Equal(t, int64(20), st.Succeeded)
			assert.Zero(t, st.Queued)
			assert.Zero(t, st.Running)
		})
	}
}

// counts runs the counter module's count export n times, one after another.
func counts(t *testing.T, p *pool.Pool, m *engine.Module, n int) []string {
	t.Helper()
	ctx := within(t)
	var out []string
	for range n {
		res, err := p.Submit(ctx, engine.Task{Module: m, Func: "count"}).Result(ctx)
		require.NoError(t, err)
		out = append(out, string(res.Output))
	}
	return out
}

func TestThreadsReuseWarmInstances(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Mode: pool.Threads, Workers: 1})
	counter := goModule(t, e, "counter")
	assert.Equal(t, []string{"1", "2", "3"}, counts(t, p, counter, 3), "state carries over in a warm instance")
	assert.Equal(t, int64(1), p.Stats().InstancesBuilt)
	assert.Equal(t, int64(1), p.Stats().WarmInstances)

	// Any error throws the instance away: the next task starts afresh.
	ctx := within(t)
	_, err := p.Submit(ctx, engine.Task{Module: counter, Func: "count", Timeout: time.Nanosecond}).Result(ctx)
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.Equal(t, []string{"1", "2"}, counts(t, p, counter, 2))
	assert.Equal(t, int64(1), p.Stats().WorkerRestarts)

	// Different settings never share an instance.
	res, err := p.Submit(ctx, engine.Task{Module: counter, Func: "count", Env: map[string]string{"K": "v"}}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "1", string(res.Output))
}

func TestThreadsMaxTasksPerWorker(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Mode: pool.Threads, Workers: 1, MaxTasksPerWorker: 2})
	counter := goModule(t, e, "counter")
	assert.Equal(t, []string{"1", "2", "1", "2", "1"}, counts(t, p, counter, 5))
	assert.Equal(t, int64(3), p.Stats().InstancesBuilt)
}

func TestThreadsIdleTimeoutFreesWarmInstances(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Mode: pool.Threads, Workers: 1, IdleTimeout: time.Millisecond})
	counter := goModule(t, e, "counter")
	assert.Equal(t, []string{"1"}, counts(t, p, counter, 1))

	// The idle sweep runs on the worker's own timer: wait for its effect,
	// bounded, rather than for a guessed duration.
	require.Eventually(t, func() bool { return p.Stats().WarmInstances == 0 }, time.Minute, time.Millisecond,
		"an instance idle past IdleTimeout is freed")
	assert.Equal(t, []string{"1"}, counts(t, p, counter, 1), "the next task gets a fresh instance")
	assert.Equal(t, int64(2), p.Stats().InstancesBuilt)
	assert.Zero(t, p.Stats().WorkerRestarts, "an idle drop is not a restart")
}

// issue 13: the idle timer was reset after every job, so under steady load
// no warm instance was ever freed, however long unused. Each expires on
// its own.
func TestThreadsIdleInstancesExpireUnderSteadyLoad(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	// Long enough that the load below leaves the worker no idle gap of
	// that length, which would let the old reset timer fire.
	p := newPool(t, e, pool.Config{Mode: pool.Threads, Workers: 1, IdleTimeout: 500 * time.Millisecond})
	counter, noop := goModule(t, e, "counter"), watModule(t, e, "noop")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	assert.Equal(t, []string{"1"}, counts(t, p, counter, 1))
	require.Equal(t, int64(1), p.Stats().WarmInstances)
	// The worker never idles: its queue is kept full of noop tasks, until
	// the counter's instance, unused meanwhile, is freed.
	load, stop := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		for load.Err() == nil {
			p.Submit(load, engine.Task{Module: noop, Func: "noop"})
		}
	}()
	// Both warm, then one: the busy noop instance is never idle, so the one
	// freed is the counter's.
	both, freed := false, false
	poll := time.NewTicker(time.Millisecond) // paces the look at Stats
	defer poll.Stop()
	for !freed && ctx.Err() == nil {
		warm := p.Stats().WarmInstances
		both = both || warm == 2
		freed = both && warm == 1
		<-poll.C
	}
	stop()
	<-loaded
	require.True(t, freed, "the counter's instance was never freed")
	assert.Equal(t, int64(2), p.Stats().InstancesBuilt, "the noop instance was kept")
	assert.Equal(t, []string{"1"}, counts(t, p, counter, 1), "the counter starts afresh")
}

func TestProcessesShareNothing(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Mode: pool.Processes, Workers: 1})
	counter := goModule(t, e, "counter")
	assert.Equal(t, []string{"1", "1", "1"}, counts(t, p, counter, 3))

	ctx := within(t)
	_, err := p.Submit(ctx, engine.Task{Module: counter, Func: "secret_set", Input: []byte("s3cr3t")}).Result(ctx)
	require.NoError(t, err)
	res, err := p.Submit(ctx, engine.Task{Module: counter, Func: "secret_get"}).Result(ctx)
	require.NoError(t, err)
	assert.Empty(t, res.Output, "a fresh instance cannot see an earlier task's data")
}

func TestCommandsAlwaysGetFreshInstances(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 1})
			cmd := goModule(t, e, "wasicmd")
			ctx := within(t)
			for i := range 3 {
				res, err := p.Submit(ctx, engine.Task{Module: cmd, Args: []string{"upper"}, Input: []byte("x" + strconv.Itoa(i))}).Result(ctx)
				require.NoError(t, err)
				assert.Equal(t, "X"+strconv.Itoa(i), string(res.Output))
			}
			assert.Equal(t, int64(3), p.Stats().InstancesBuilt)
		})
	}
}

func TestAnyModuleOnAnyTask(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 2})
			upper, sha, add := goModule(t, e, "upper"), goModule(t, e, "sha256"), watModule(t, e, "add")
			ctx := within(t)
			f1 := p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("a")})
			f2 := p.Submit(ctx, engine.Task{Module: sha, Func: "sha256", Input: []byte("")})
			f3 := p.Submit(ctx, engine.Task{Module: add, Func: "add", Params: []uint64{1, 2}})
			r1, err := f1.Result(ctx)
			require.NoError(t, err)
			r2, err := f2.Result(ctx)
			require.NoError(t, err)
			r3, err := f3.Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, "A", string(r1.Output))
			assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", string(r2.Output))
			assert.Equal(t, []uint64{3}, r3.Values)
		})
	}
}

func TestFaultContainment(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			b := newBarrier(2)
			e := testEngine(t, engine.Config{MemoryLimitBytes: 32 << 20, OutputLimitBytes: 1 << 20}, b)
			p := newPool(t, e, pool.Config{Mode: mode, Workers: 2})
			upper, hostile := goModule(t, e, "upper"), goModule(t, e, "hostile")
			div, flood := watModule(t, e, "divzero"), watModule(t, e, "flood")
			ctx := within(t)

			type want struct {
				out string
				err error
			}
			var fs []*future.Future[engine.Result]
			var wants []want
			for i := range 60 {
				var task engine.Task
				var w want
				switch {
				case i%10 != 9:
					task = engine.Task{Module: upper, Func: "upper", Input: []byte("ok " + strconv.Itoa(i))}
					w.out = "OK " + strconv.Itoa(i)
				case i%40 == 9:
					task, w.err = engine.Task{Module: div, Func: "run"}, &engine.TrapError{}
				case i%40 == 19:
					task, w.err = engine.Task{Module: hostile, Func: "spin", Timeout: 20 * time.Millisecond}, engine.ErrTimeout
				case i%40 == 29:
					task, w.err = engine.Task{Module: hostile, Func: "membomb", Timeout: time.Minute}, engine.ErrMemoryLimit
				default:
					task, w.err = engine.Task{Module: flood, Func: "flood", Timeout: time.Minute}, engine.ErrOutputLimit
				}
				fs = append(fs, p.Submit(ctx, task))
				wants = append(wants, w)
			}
			for i, f := range fs {
				res, err := f.Result(ctx)
				w := wants[i]
				switch w.err.(type) {
				case nil:
					require.NoError(t, err, "task %d", i)
					assert.Equal(t, w.out, string(res.Output), "task %d", i)
				case *engine.TrapError:
					var trap *engine.TrapError
					require.ErrorAs(t, err, &trap, "task %d", i)
				default:
					require.ErrorIs(t, err, w.err, "task %d", i)
				}
			}
			assertFullCapacity(t, p, watModule(t, e, "barrier"), 2)
			st := p.Stats()
			assert.Equal(t, int64(54+2), st.Succeeded)
			assert.Equal(t, int64(2), st.TimedOut)
			assert.Equal(t, int64(4), st.Failed)
		})
	}
}

func TestBadConfig(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	for _, cfg := range []pool.Config{
		{Workers: -1},
		{QueueSize: -1},
		{Mode: pool.Mode(9)},
		{TaskTimeout: -time.Second},
		{Init: &engine.Task{}},
	} {
		_, err := pool.New(e, cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	_, err := pool.New(nil, pool.Config{})
	assert.Error(t, err)
	m, err := pool.ParseMode("process")
	require.NoError(t, err)
	assert.Equal(t, pool.Processes, m)
	_, err = pool.ParseMode("fork")
	assert.Error(t, err)
}

func TestTaskWithoutModule(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Workers: 1})
	_, err := p.Submit(within(t), engine.Task{}).Result(within(t))
	assert.True(t, errors.Is(err, engine.ErrBadModule))
}

// issue 13: Stats counted a task in an OnDone callback, which can run after
// a Result elsewhere has returned: a goroutine that saw the outcome could
// read Stats without it. Whoever sees a result sees it counted.
func TestStatsNeverLagAResult(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Workers: 1})
	noop := watModule(t, e, "noop")
	ctx := within(t)
	for i := range int64(5000) {
		f := p.Submit(ctx, engine.Task{Module: noop, Func: "noop"})
		// Spinning on State, this goroutine sees the outcome the moment it
		// is recorded, while the worker that recorded it goes on.
		for !f.State().Final() {
		}
		_, err := f.Result(ctx)
		require.NoError(t, err)
		if st := p.Stats(); st.Succeeded != i+1 {
			t.Fatalf("result %d seen, but Stats count %d succeeded", i+1, st.Succeeded)
		}
	}
}
