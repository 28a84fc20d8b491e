package pool_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// subprocessPool is newPool for a Subprocess pool: its worker processes are
// this test binary, started through TestMain's ServeChild.
func subprocessPool(t testing.TB, e *engine.Engine, cfg pool.Config) *pool.Pool {
	t.Helper()
	cfg.Isolation = pool.Subprocess
	return newPool(t, e, cfg)
}

// probeEngine is a test engine that grants childprobe's host module.
func probeEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	cfg.HostModules = append(cfg.HostModules, probeHost())
	return testEngine(t, cfg, nil)
}

func TestSubprocessRunsTasksInWorkerProcesses(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			p := subprocessPool(t, e, pool.Config{Mode: mode, Workers: 2})
			pids := p.WorkerPIDs()
			require.Len(t, pids, 2)
			assert.NotContains(t, pids, os.Getpid())

			ctx := within(t)
			upper, fib, add := goModule(t, e, "upper"), goModule(t, e, "fib"), watModule(t, e, "add")
			var fs []*future.Future[engine.Result]
			for range 10 {
				fs = append(fs, p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("hello")}))
				fs = append(fs, p.Submit(ctx, engine.Task{Module: fib, Func: "fib", Input: []byte("20")}))
			}
			for i, f := range fs {
				res, err := f.Result(ctx)
				require.NoError(t, err)
				want := map[int]string{0: "HELLO", 1: "6765"}[i%2]
				assert.Equal(t, want, string(res.Output))
				assert.Positive(t, res.Duration)
			}
			res, err := p.Submit(ctx, engine.Task{Module: add, Func: "add", Params: []uint64{2, 3}}).Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, []uint64{5}, res.Values, "raw calls cross over too")
			big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB each way
			res, err = p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: big}).Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, bytes.ToUpper(big), res.Output)

			st := p.Stats()
			assert.Equal(t, int64(22), st.Succeeded)
			assert.Positive(t, st.InstancesBuilt, "the worker processes' counters reach the pool")
			assert.Zero(t, st.ProcessCrashes)
			assert.Equal(t, pids, p.WorkerPIDs(), "no worker process was replaced")
		})
	}
}

func TestSubprocessModesKeepTheirMeaning(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e := testEngine(t, engine.Config{}, nil)
			counter := goModule(t, e, "counter")
			p := subprocessPool(t, e, pool.Config{Mode: mode, Workers: 1, Init: &engine.Task{Module: counter, Func: "count"}})
			want := []string{"2", "3"} // the warm instance carries over, after Init counted 1
			if mode == pool.Processes {
				want = []string{"2", "2"} // a fresh, initialised instance per task
			}
			assert.Equal(t, want, counts(t, p, counter, 2))
		})
	}
}

// TestSubprocessInitFailureBreaksThePool: Init failing in a worker process
// breaks the whole pool, as it does in this one.
func TestSubprocessInitFailureBreaksThePool(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	upper, fail := goModule(t, e, "upper"), watModule(t, e, "fail")
	p := subprocessPool(t, e, pool.Config{Workers: 2, Init: &engine.Task{Func: "fail"}})
	ctx := within(t)
	_, err := p.Submit(ctx, engine.Task{Module: fail, Func: "fail"}).Result(ctx)
	require.ErrorIs(t, err, pool.ErrBroken)
	var te *engine.TaskError
	assert.ErrorAs(t, err, &te, "the cause is named")
	assert.Contains(t, err.Error(), "Init")
	for range 3 {
		_, err := p.Submit(ctx, engine.Task{Module: upper, Func: "upper"}).Result(ctx)
		assert.ErrorIs(t, err, pool.ErrBroken)
	}
}

// TestSubprocessErrorsMatchInProcess runs failing tasks both ways: the error
// from a worker process reads the same and matches the same as the one
// from this process.
func TestSubprocessErrorsMatchInProcess(t *testing.T) {
	e := testEngine(t, engine.Config{MemoryLimitBytes: 32 << 20, OutputLimitBytes: 1 << 20}, nil)
	hostile, div, fail, exit := goModule(t, e, "hostile"), watModule(t, e, "divzero"), watModule(t, e, "fail"), watModule(t, e, "exit")
	tasks := []struct {
		name  string
		task  engine.Task
		check func(t *testing.T, err error)
	}{
		{"trap", engine.Task{Module: div, Func: "run"}, func(t *testing.T, err error) {
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			assert.Equal(t, engine.TrapDivideByZero, trap.Kind)
		}},
		{"go panic", engine.Task{Module: hostile, Func: "panic"}, func(t *testing.T, err error) {
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			assert.Equal(t, "panic: boom", trap.Abort)
		}},
		{"memory", engine.Task{Module: hostile, Func: "membomb"}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, engine.ErrMemoryLimit)
		}},
		{"output", engine.Task{Module: hostile, Func: "flood"}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, engine.ErrOutputLimit)
		}},
		{"no function", engine.Task{Module: div, Func: "nope"}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, engine.ErrNoFunction)
		}},
		{"task error", engine.Task{Module: fail, Func: "fail"}, func(t *testing.T, err error) {
			var te *engine.TaskError
			require.ErrorAs(t, err, &te)
			assert.NotEmpty(t, te.Message)
		}},
		{"exit", engine.Task{Module: exit, Args: []string{"a", "b", "c"}}, func(t *testing.T, err error) {
			var ee *engine.ExitError
			require.ErrorAs(t, err, &ee)
			assert.NotZero(t, ee.Code)
		}},
		{"bad mount", engine.Task{Module: hostile, Func: "echo", Mounts: []engine.Mount{{HostPath: "/no/such/dir", GuestPath: "/x"}}}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, os.ErrNotExist)
			assert.ErrorIs(t, err, engine.ErrBadMount)
		}},
		{"guest stderr", engine.Task{Module: hostile, Func: "fail", Env: map[string]string{"A": "b"}, Args: []string{"x"}}, func(t *testing.T, err error) {
			assert.ErrorContains(t, err, "hostile failure")
		}},
	}
	inProc := newPool(t, e, pool.Config{Workers: 1})
	sub := subprocessPool(t, e, pool.Config{Workers: 1})
	ctx := within(t)
	for _, c := range tasks {
		t.Run(c.name, func(t *testing.T) {
			wantRes, want := inProc.Submit(ctx, c.task).Result(ctx)
			require.Error(t, want)
			c.check(t, want)
			gotRes, got := sub.Submit(ctx, c.task).Result(ctx)
			require.Error(t, got)
			c.check(t, got)
			assert.Equal(t, want.Error(), got.Error())
			var ee *engine.Error
			require.ErrorAs(t, got, &ee)
			assert.Equal(t, c.task.Module.Name(), ee.Module)
			for _, s := range []error{engine.ErrTimeout, engine.ErrCancelled, engine.ErrMemoryLimit, engine.ErrOutputLimit,
				engine.ErrNoFunction, engine.ErrBadModule, context.Canceled, context.DeadlineExceeded, pool.ErrWorkerCrashed} {
				assert.Equal(t, errors.Is(want, s), errors.Is(got, s), "errors.Is(err, %v)", s)
			}
			assert.Equal(t, wantRes.ExitCode, gotRes.ExitCode)
			assert.Equal(t, string(wantRes.Output), string(gotRes.Output))
			assert.Equal(t, string(wantRes.Stderr), string(gotRes.Stderr))
		})
	}
	assert.Zero(t, sub.Stats().ProcessCrashes, "guest failures are not worker process crashes")
}
