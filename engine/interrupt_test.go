package engine_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/engine"
)

// barrierHost grants busy's and nap's test.barrier: each call sends on
// started, so that a test knows the guest is running its endless part.
func barrierHost(started chan<- struct{}) engine.HostModule {
	return engine.HostModule{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
			started <- struct{}{}
		}), nil, nil).Export("barrier")
	}}
}

// endless are tasks that never end on their own: only a stop can end them.
// Between them they hold every shape of guest code a stop has to reach: a
// loop without calls, a recursion without loops (no loop header to check:
// only function entries), and a Go guest (a loop in every function).
func endless(t *testing.T, e *engine.Engine) map[string]engine.Task {
	busy := compileWAT(t, e, "busy")
	return map[string]engine.Task{
		"wat loop":      {Module: busy, Func: "loop"},
		"wat recursion": {Module: busy, Func: "recurse"},
		"go fib(90)":    {Module: compileGo(t, e, "fib"), Func: "fib", Input: []byte("90")},
		"c fib(90)":     {Module: compileC(t, e, "kernels"), Func: "fib", Input: []byte("90")},
	}
}

var endlessNames = []string{"wat loop", "wat recursion", "go fib(90)", "c fib(90)"}

// waitErr returns what errc delivers; a call that never ends fails the test
// (after long enough that no machine is that slow) instead of hanging it.
func waitErr(t *testing.T, errc <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s did not stop the guest", what)
		return nil
	}
}

// TestEveryStopStopsEveryGuest: a timeout, a context's deadline, a cancel,
// an Interrupt, closing the runtime and closing the engine each stop a
// running guest of every shape, and each says which it was.
func TestEveryStopStopsEveryGuest(t *testing.T) {
	ctx := context.Background()
	cause := errors.New("the operator pulled the plug")
	stops := []struct {
		name string
		// stop runs task on rt, started is sent when the guest runs, and
		// returns the task's error.
		stop func(t *testing.T, e *engine.Engine, rt *engine.Runtime, task engine.Task, started <-chan struct{}) error
		want []error
	}{
		{"Task.Timeout", func(t *testing.T, e *engine.Engine, rt *engine.Runtime, task engine.Task, _ <-chan struct{}) error {
			task.Timeout = 30 * time.Millisecond
			_, err := rt.Run(ctx, task)
			return err
		}, []error{engine.ErrTimeout, context.DeadlineExceeded}},
		{"context deadline", func(t *testing.T, e *engine.Engine, rt *engine.Runtime, task engine.Task, _ <-chan struct{}) error {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
			defer cancel()
			_, err := rt.Run(dctx, task)
			return err
		}, []error{engine.ErrTimeout, context.DeadlineExceeded}},
		{"cancel", func(t *testing.T, e *engine.Engine, rt *engine.Runtime, task engine.Task, started <-chan struct{}) error {
			cctx, cancel := context.WithCancelCause(ctx)
			go func() { <-started; cancel(cause) }()
			_, err := rt.Run(cctx, task)
			return err
		}, []error{engine.ErrCancelled, context.Canceled, cause}},
		{"Interrupt", func(t *testing.T, e *engine.Engine, rt *engine.Runtime, task engine.Task, started <-chan struct{}) error {
			inst, err := rt.Instantiate(ctx, task)
			require.NoError(t, err)
			defer inst.Close(ctx)
			go func() { <-started; inst.Interrupt(cause) }()
			_, err = inst.Call(ctx, task)
			return err
		}, []error{engine.ErrCancelled, cause}},
		{"Runtime.Close", func(t *testing.T, e *engine.Engine, rt *engine.Runtime, task engine.Task, started <-chan struct{}) error {
			go func() { <-started; _ = rt.Close(ctx) }()
			_, err := rt.Run(ctx, task)
			return err
		}, []error{engine.ErrClosed}},
		{"Engine.Close", func(t *testing.T, e *engine.Engine, rt *engine.Runtime, task engine.Task, started <-chan struct{}) error {
			go func() { <-started; _ = e.Close(ctx) }()
			_, err := rt.Run(ctx, task)
			return err
		}, []error{engine.ErrClosed}},
	}
	for _, s := range stops {
		t.Run(s.name, func(t *testing.T) {
			for _, name := range endlessNames {
				t.Run(name, func(t *testing.T) {
					// An engine each: one stop closes it.
					started := make(chan struct{}, 1)
					e := newEngine(t, engine.Config{HostModules: []engine.HostModule{barrierHost(started)}})
					task := endless(t, e)[name]
					rt, err := e.NewRuntime(ctx)
					require.NoError(t, err)
					defer rt.Close(ctx)
					if task.Module.Name() != "busy.wasm" {
						// Only busy signals: start the others' stop at once.
						started <- struct{}{}
					}
					errc := make(chan error, 1)
					go func() { errc <- s.stop(t, e, rt, task, started) }()
					err = waitErr(t, errc, s.name)
					for _, want := range s.want {
						assert.ErrorIs(t, err, want)
					}
					var trap *engine.TrapError
					assert.False(t, errors.As(err, &trap), "a stop is never the guest's trap: %v", err)
				})
			}
		})
	}
}

// TestStopsWhenEveryPRunsAGuest: with as many endless guests as there are
// Ps, each stops at its own timeout. A guest that never left native code
// would keep its P, and no timer (nor the test's own goroutine) would run.
func TestStopsWhenEveryPRunsAGuest(t *testing.T) {
	e := newEngine(t, engine.Config{HostModules: []engine.HostModule{barrierHost(make(chan struct{}, 64))}})
	tasks := endless(t, e)
	n := runtime.GOMAXPROCS(0) + 1
	errc := make(chan error, n*len(tasks))
	for _, task := range tasks {
		task.Timeout = 20 * time.Millisecond
		for range n {
			go func() {
				_, err := e.Run(context.Background(), task)
				errc <- err
			}()
		}
	}
	for range n * len(tasks) {
		require.ErrorIs(t, waitErr(t, errc, "a timeout"), engine.ErrTimeout)
	}
}

// TestGarbageCollectionWhileGuestsRun: the world can stop (a collection
// starts and ends) while every P runs a guest that will not return on its
// own, of the loop and of the loop-free kind.
func TestGarbageCollectionWhileGuestsRun(t *testing.T) {
	started := make(chan struct{}, 64)
	e := newEngine(t, engine.Config{HostModules: []engine.HostModule{barrierHost(started)}})
	busy := compileWAT(t, e, "busy")
	ctx, cancel := context.WithCancel(context.Background())
	n := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		fn := "loop"
		if i%2 == 1 {
			fn = "recurse"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.Run(ctx, engine.Task{Module: busy, Func: fn})
		}()
	}
	for range n {
		<-started
	}
	gc := make(chan error, 1)
	go func() { runtime.GC(); gc <- nil }()
	require.NoError(t, waitErr(t, gc, "a garbage collection"))
	cancel()
	wg.Wait()
	for _, err := range errs {
		assert.ErrorIs(t, err, engine.ErrCancelled)
	}
}

// TestOneDeadlineForInstantiationAndCall: a task's Timeout bounds its
// _initialize and its call together. Each of the two here fits in the
// timeout on its own; together they do not, and the task times out.
func TestOneDeadlineForInstantiationAndCall(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, engine.Config{HostModules: []engine.HostModule{{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
			// The host function is the work, and it watches its context.
			select {
			case <-time.After(60 * time.Millisecond):
			case <-ctx.Done():
			}
		}), nil, nil).Export("wait")
	}}}})
	m := compileWAT(t, e, "slowinit")
	_, err := e.Run(ctx, engine.Task{Module: m, Func: "run", Timeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.Contains(t, err.Error(), "timed out after 100ms")
	_, err = e.Run(ctx, engine.Task{Module: m, Func: "run", Timeout: time.Minute})
	require.NoError(t, err, "it does finish, given the time")
}

// TestHostFunctionContextIsTheCalls: the context a host function gets is
// that call's: its values, its deadline, its stop, with Cause agreeing with
// Err; kept past the call it reads as ended, and never as a later call of
// the same warm instance (another tenant's, in a pool).
func TestHostFunctionContextIsTheCalls(t *testing.T) {
	type tenantKey struct{}
	var kept []context.Context
	var causes []error
	e := newEngine(t, engine.Config{HostModules: []engine.HostModule{{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
			kept = append(kept, ctx)
			if ctx.Value(tenantKey{}) == "slow" {
				<-ctx.Done()
				causes = append(causes, context.Cause(ctx))
			}
		}), nil, nil).Export("wait")
	}}}})
	m := compileWAT(t, e, "hostwait")
	ctx := context.Background()
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	inst, err := rt.Instantiate(ctx, engine.Task{Module: m, Func: "run"})
	require.NoError(t, err)
	defer inst.Close(ctx)

	// A parent that can be cancelled (and is not): Cause must not answer
	// with its (nil) cause for a call the timeout stopped.
	parentA, cancelA := context.WithCancelCause(context.WithValue(ctx, tenantKey{}, "a"))
	defer cancelA(nil)
	_, err = inst.Call(parentA, engine.Task{Module: m, Func: "run", Timeout: time.Hour})
	require.NoError(t, err)
	require.Len(t, kept, 1)
	a := kept[0]
	assert.Equal(t, "a", a.Value(tenantKey{}), "the caller's values reach the host function")
	dl, ok := a.Deadline()
	assert.True(t, ok)
	assert.WithinDuration(t, time.Now().Add(time.Hour), dl, time.Minute, "the task's own deadline")
	select {
	case <-a.Done():
	default:
		t.Fatal("a context kept past its call must read as ended")
	}
	assert.Error(t, a.Err())

	parentB, cancelB := context.WithCancelCause(context.WithValue(ctx, tenantKey{}, "slow"))
	defer cancelB(nil)
	_, err = inst.Call(parentB, engine.Task{Module: m, Func: "run", Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, engine.ErrTimeout)
	require.Len(t, kept, 2)
	assert.Equal(t, "a", a.Value(tenantKey{}), "the first call's context never shows the second call's values")
	require.Len(t, causes, 1)
	assert.ErrorIs(t, causes[0], context.DeadlineExceeded, "Cause agrees with Err")
	assert.ErrorIs(t, kept[1].Err(), context.DeadlineExceeded)
}
