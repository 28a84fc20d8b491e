package engine_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/engine"
)

func TestTrapsAreClassified(t *testing.T) {
	e := newEngine(t, engine.Config{})
	for _, tc := range []struct {
		module string
		kind   engine.TrapKind
	}{
		{"unreachable", engine.TrapUnreachable},
		{"oob", engine.TrapOutOfBounds},
		{"divzero", engine.TrapDivideByZero},
		{"intoverflow", engine.TrapIntegerOverflow},
		{"badconv", engine.TrapInvalidConversion},
		{"indirect", engine.TrapIndirectCall},
		{"recurse", engine.TrapStackOverflow},
	} {
		t.Run(tc.module, func(t *testing.T) {
			m := compileWAT(t, e, tc.module)
			_, err := e.Run(context.Background(), engine.Task{Module: m, Func: "run"})
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			assert.Equal(t, tc.kind, trap.Kind, "trap: %v", err)
			assert.Equal(t, "run", trap.Func)
			assert.Contains(t, err.Error(), tc.module+".wasm")
			assert.NotContains(t, err.Error(), "\n", "an error reads as one line")
		})
	}
	assert.Equal(t, "divide by zero", engine.TrapDivideByZero.String())
}

func TestTimeoutStopsInfiniteLoops(t *testing.T) {
	e := newEngine(t, engine.Config{})
	for _, tc := range []struct {
		name string
		m    *engine.Module
		fn   string
	}{
		{"wat", compileWAT(t, e, "spin"), "spin"},
		{"go", compileGo(t, e, "hostile"), "spin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), engine.Task{Module: tc.m, Func: tc.fn, Timeout: 50 * time.Millisecond})
			require.ErrorIs(t, err, engine.ErrTimeout)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, engine.ErrCancelled)
			assert.Contains(t, err.Error(), "timed out after 50ms")
		})
	}
}

func TestContextDeadlineIsATimeout(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.Run(ctx, engine.Task{Module: compileWAT(t, e, "spin"), Func: "spin"})
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestCancelStopsRunningGuest(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWAT(t, e, "spin")
	ctx, cancel := context.WithCancel(context.Background())
	// spin never returns on its own, so whenever the cancel lands, only the
	// cancel can end the call.
	stop := time.AfterFunc(20*time.Millisecond, cancel)
	defer stop.Stop()
	_, err := e.Run(ctx, engine.Task{Module: m, Func: "spin"})
	require.ErrorIs(t, err, engine.ErrCancelled)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, engine.ErrTimeout)
}

// A warm instance keeps its call timer armed between calls (re-arming it
// per call costs more than a short call). Neither way that could go wrong
// may happen: a shorter timeout after a longer one must still fire on time,
// and a timer left from earlier calls must not stop a later call early.
func TestWarmInstanceTimeoutsAcrossCalls(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	spin := compileGo(t, e, "hostile")
	warm := func() *engine.Instance {
		inst, err := rt.Instantiate(ctx, engine.Task{Module: spin, Func: "echo"})
		require.NoError(t, err)
		return inst
	}

	inst := warm()
	_, err = inst.Call(ctx, engine.Task{Module: spin, Func: "echo", Input: []byte("x"), Timeout: time.Hour})
	require.NoError(t, err)
	_, err = inst.Call(ctx, engine.Task{Module: spin, Func: "spin", Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.Contains(t, err.Error(), "timed out after 20ms", "stopped by its own timeout, not the test's context")
	require.NoError(t, inst.Close(ctx))

	inst = warm()
	const timeout = 50 * time.Millisecond
	for range 5 {
		_, err = inst.Call(ctx, engine.Task{Module: spin, Func: "echo", Input: []byte("x"), Timeout: timeout})
		require.NoError(t, err)
	}
	res, err := inst.Call(ctx, engine.Task{Module: spin, Func: "spin", Timeout: timeout})
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.Contains(t, err.Error(), "timed out after 50ms")
	assert.GreaterOrEqual(t, res.Duration, timeout, "stopped before its own deadline")
	require.NoError(t, inst.Close(ctx))
}

func TestInterruptStopsARunningCallFromAnotherGoroutine(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	task := engine.Task{Module: compileWAT(t, e, "spin"), Func: "spin"}
	cause := errors.New("the operator pulled the plug")

	inst, err := rt.Instantiate(ctx, task)
	require.NoError(t, err)
	// spin never returns on its own: whenever the interrupt lands, only the
	// interrupt can end the call.
	stop := time.AfterFunc(20*time.Millisecond, func() { inst.Interrupt(cause) })
	defer stop.Stop()
	_, err = inst.Call(ctx, task)
	require.ErrorIs(t, err, engine.ErrCancelled)
	assert.ErrorIs(t, err, cause, "the interrupt's cause is kept")
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, inst.Broken())
	_, err = inst.Call(ctx, task)
	assert.Error(t, err, "an interrupted instance runs nothing more")
	require.NoError(t, inst.Close(ctx))

	// Interrupted before its call starts: the call fails at once, saying why.
	inst, err = rt.Instantiate(ctx, engine.Task{Module: compileWAT(t, e, "echo"), Func: "echo"})
	require.NoError(t, err)
	inst.Interrupt(cause)
	assert.True(t, inst.Broken())
	_, err = inst.Call(ctx, engine.Task{Module: inst.Module(), Func: "echo", Input: []byte("x")})
	require.ErrorIs(t, err, engine.ErrCancelled)
	assert.ErrorIs(t, err, cause)
	require.NoError(t, inst.Close(ctx))
}

// Closing a runtime makes wazero close its modules with exit code 0, and
// refuse new ones with an error of its own: a task cut short by closing the
// engine, or run on it afterwards, must fail with ErrClosed, neither succeed
// nor read as a trap.
func TestClosingTheEngineFailsItsTasks(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	add, spin := compileWAT(t, e, "add"), compileWAT(t, e, "spin")
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	warm, err := rt.Instantiate(ctx, engine.Task{Module: add, Func: "add"})
	require.NoError(t, err)
	defer warm.Close(ctx)

	errc := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, engine.Task{Module: spin, Func: "spin"})
		errc <- err
	}()
	require.NoError(t, e.Close(ctx))
	// spin never returns on its own: whether the close lands before its
	// call or during it, only the close can end it.
	select {
	case err := <-errc:
		require.ErrorIs(t, err, engine.ErrClosed)
	case <-time.After(time.Minute):
		t.Fatal("closing the engine did not stop a running task")
	}

	add12 := engine.Task{Module: add, Func: "add", Params: []uint64{1, 2}}
	_, err = warm.Call(ctx, add12)
	require.ErrorIs(t, err, engine.ErrClosed, "a warm instance of a closed engine")
	_, err = e.Run(ctx, add12)
	require.ErrorIs(t, err, engine.ErrClosed)
	var trap *engine.TrapError
	assert.False(t, errors.As(err, &trap), "%v", err)
}

func TestMemoryLimit(t *testing.T) {
	e := newEngine(t, engine.Config{MemoryLimitBytes: 16 << 20})
	for _, tc := range []struct {
		name string
		m    *engine.Module
		fn   string
	}{
		{"wat grow then trap", compileWAT(t, e, "membomb"), "run"},
		{"wat grow then return status", compileWAT(t, e, "membomb_soft"), "run"},
		{"go allocate forever", compileGo(t, e, "hostile"), "membomb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), engine.Task{Module: tc.m, Func: tc.fn, Timeout: time.Minute})
			require.ErrorIs(t, err, engine.ErrMemoryLimit)
			assert.Contains(t, err.Error(), "16 MiB")
		})
	}
}

func TestOutputLimit(t *testing.T) {
	const limit = 1 << 20
	e := newEngine(t, engine.Config{OutputLimitBytes: limit})
	for _, tc := range []struct {
		name string
		m    *engine.Module
		fn   string
	}{
		{"wat ABI flood", compileWAT(t, e, "flood"), "flood"},
		{"go ABI flood", compileGo(t, e, "hostile"), "flood"},
		{"go stderr flood", compileGo(t, e, "hostile"), "stderrflood"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), engine.Task{Module: tc.m, Func: tc.fn, Timeout: time.Minute})
			require.ErrorIs(t, err, engine.ErrOutputLimit)
			assert.LessOrEqual(t, len(res.Output), limit, "the host never holds more than the limit")
			assert.LessOrEqual(t, len(res.Stderr), limit)
		})
	}
}

func TestABIMisuseIsAnOutOfBoundsTrap(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWAT(t, e, "abuse")
	for _, fn := range []string{"read_neg", "read_huge", "read_past", "write_oob", "write_wrap", "write_neglen", "error_oob"} {
		t.Run(fn, func(t *testing.T) {
			_, err := e.Run(context.Background(), engine.Task{Module: m, Func: fn, Input: []byte("some input")})
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			assert.Equal(t, engine.TrapOutOfBounds, trap.Kind, "%v", err)
			assert.Equal(t, fn, trap.Func)
		})
	}
	_, err := e.Run(context.Background(), engine.Task{Module: m, Func: "ok"})
	assert.NoError(t, err)

	// A module with no memory at all: every pointer is out of bounds.
	nomem := compileWAT(t, e, "nomem")
	for _, fn := range []string{"read", "write"} {
		_, err := e.Run(context.Background(), engine.Task{Module: nomem, Func: fn, Input: []byte("x")})
		var trap *engine.TrapError
		require.ErrorAs(t, err, &trap, fn)
		assert.Equal(t, engine.TrapOutOfBounds, trap.Kind, "%v", err)
		assert.NotContains(t, err.Error(), "nil pointer", "the host's own failure must not show")
	}
}

func TestMemoryBytes(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	inst, err := rt.Instantiate(ctx, engine.Task{Module: compileWAT(t, e, "add"), Func: "add"})
	require.NoError(t, err)
	assert.Zero(t, inst.MemoryBytes(), "a module without a memory")
	require.NoError(t, inst.Close(ctx))

	inst, err = rt.Instantiate(ctx, engine.Task{Module: compileWAT(t, e, "leftover"), Func: "poke"})
	require.NoError(t, err)
	assert.Equal(t, uint64(64<<10), inst.MemoryBytes(), "one page")
	_, err = inst.Call(ctx, engine.Task{Module: inst.Module(), Func: "poke", Input: []byte("x")})
	require.NoError(t, err)
	assert.Equal(t, uint64(4*64<<10), inst.MemoryBytes(), "poke grows by three pages")
	require.NoError(t, inst.Close(ctx))
	assert.Zero(t, inst.MemoryBytes(), "a closed instance")
}

func TestCommandExitCodes(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWAT(t, e, "exit")
	for _, code := range []int{0, 1, 255} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			args := make([]string, code)
			res, err := e.Run(context.Background(), engine.Task{Module: m, Args: args})
			assert.Equal(t, uint32(code), res.ExitCode)
			if code == 0 {
				require.NoError(t, err)
				return
			}
			var exit *engine.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, uint32(code), exit.Code)
		})
	}
}

func TestGoGuestFailures(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileGo(t, e, "hostile")
	// A Go reactor aborts (an unreachable trap) where a command would exit 2;
	// the error carries the runtime's own reason.
	for _, tc := range []struct{ fn, abort string }{
		{"panic", "panic: boom"},
		{"deadlock", "fatal error: all goroutines are asleep - deadlock!"},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			res, err := e.Run(context.Background(), engine.Task{Module: m, Func: tc.fn, Timeout: time.Minute})
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			assert.Equal(t, engine.TrapUnreachable, trap.Kind)
			assert.Equal(t, tc.abort, trap.Abort)
			assert.Contains(t, err.Error(), tc.abort)
			assert.Contains(t, string(res.Stderr), tc.abort)
		})
	}
}

func TestFreshInstancesNeverSeeEarlierMemory(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	m := compileWAT(t, e, "leftover")
	secret := bytes.Repeat([]byte("s3cr3t!"), 10)[:64]
	// A runtime recycles the memory of closed instances: each round writes
	// the secret in one instance, then reads the same places, in the first
	// page and in grown ones, from a new one.
	for round := range 3 {
		_, err := rt.Run(ctx, engine.Task{Module: m, Func: "poke", Input: secret})
		require.NoError(t, err)
		res, err := rt.Run(ctx, engine.Task{Module: m, Func: "peek"})
		require.NoError(t, err)
		require.Len(t, res.Output, 128)
		assert.Equal(t, make([]byte, 128), res.Output, "round %d: a fresh instance saw an earlier one's memory", round)
	}
}

func TestInstanceReuseAndBreakage(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)

	counter := compileGo(t, e, "counter")
	task := engine.Task{Module: counter, Func: "count"}
	inst, err := rt.Instantiate(ctx, task)
	require.NoError(t, err)
	for want := 1; want <= 3; want++ {
		res, err := inst.Call(ctx, task)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(want), string(res.Output), "a warm instance keeps its state")
	}
	_, err = inst.Call(ctx, engine.Task{Func: "count"})
	require.ErrorIs(t, err, engine.ErrBadModule, "a task without a module fails, and does not panic")
	assert.Equal(t, 3, inst.Calls())
	require.NoError(t, inst.Close(ctx))

	// A fresh instance per task sees none of it.
	for range 2 {
		res, err := rt.Run(ctx, task)
		require.NoError(t, err)
		assert.Equal(t, "1", string(res.Output))
	}

	// An instance that saw an error refuses further calls.
	spin := compileGo(t, e, "hostile")
	inst, err = rt.Instantiate(ctx, engine.Task{Module: spin, Func: "echo"})
	require.NoError(t, err)
	res, err := inst.Call(ctx, engine.Task{Module: spin, Func: "echo", Input: []byte("x")})
	require.NoError(t, err)
	assert.Equal(t, "x", string(res.Output))
	_, err = inst.Call(ctx, engine.Task{Module: spin, Func: "spin", Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.True(t, inst.Broken())
	_, err = inst.Call(ctx, engine.Task{Module: spin, Func: "echo"})
	assert.ErrorIs(t, err, engine.ErrInstanceUnusable)
	assert.ErrorContains(t, err, "cannot be reused")
	assert.False(t, inst.Fits(&engine.Task{Module: spin, Func: "echo"}))
	require.NoError(t, inst.Close(ctx))

	// Nor does an instance run another module's task.
	inst, err = rt.Instantiate(ctx, engine.Task{Module: spin, Func: "echo"})
	require.NoError(t, err)
	_, err = inst.Call(ctx, task) // the counter's
	assert.ErrorIs(t, err, engine.ErrInstanceUnusable)
	assert.ErrorContains(t, err, "not this instance's")
	require.NoError(t, inst.Close(ctx))
}

// A guest asleep in poll_oneoff (Go's time.Sleep) is in the host, not in
// guest code where wazero checks the context: before the engine supplied
// its own nanosleep, a timeout or cancel only took effect once the sleep
// was over, an hour here. The nap module tells the test, through a host
// function, that it is about to sleep; from there on only the engine's
// sleep can end the call early.
func TestTimeoutAndCancelWakeASleepingGuest(t *testing.T) {
	napping := make(chan struct{}, 1)
	e := newEngine(t, engine.Config{HostModules: []engine.HostModule{{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithFunc(func() { napping <- struct{}{} }).Export("barrier")
	}}}})
	m := compileWAT(t, e, "nap")
	run := func(ctx context.Context, timeout time.Duration, interrupt func()) error {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			_, err := e.Run(ctx, engine.Task{Module: m, Func: "run", Timeout: timeout})
			errc <- err
		}()
		<-napping
		if interrupt != nil {
			interrupt()
		}
		select {
		case err := <-errc:
			return err
		case <-time.After(time.Minute):
			t.Fatal("the sleeping guest was not stopped")
			return nil
		}
	}
	err := run(context.Background(), 50*time.Millisecond, nil)
	require.ErrorIs(t, err, engine.ErrTimeout)

	ctx, cancel := context.WithCancel(context.Background())
	err = run(ctx, 0, cancel)
	require.ErrorIs(t, err, engine.ErrCancelled)

	// A Go guest's short sleep still sleeps and finishes.
	res, err := e.Run(context.Background(), engine.Task{Module: compileGo(t, e, "hostile"), Func: "sleep", Input: []byte("1ms"), Timeout: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, "slept", string(res.Output))
}

// Unbounded recursion in compiled code grows wazero's wasm stack, a Go
// []byte, by doubling, from 10 KiB until it is over 50,000,000 bytes (a
// constant, callStackCeiling, that no API sets): the last stack is about 84
// MB and, while it is copied, the one before (42 MB) is live too. Measured:
// 161 MB allocated and a 141 MB peak live heap per overflowing call, 283 MB
// for two at once; the interpreter stops at 2,000 frames. So the memory a
// recursion takes is bounded, whatever the module, and is all given back when
// the instance is closed (a warm instance keeps its grown stack until then).
// This test holds the bound, so that a wazero upgrade raising it is noticed.
func TestRecursionStackIsBounded(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWAT(t, e, "recurse")
	before := liveHeap()
	var err error
	alloc := allocatedBy(func() { _, err = e.Run(context.Background(), engine.Task{Module: m, Func: "run"}) })
	var trap *engine.TrapError
	require.ErrorAs(t, err, &trap)
	require.Equal(t, engine.TrapStackOverflow, trap.Kind)
	t.Logf("one stack overflow allocated %d MB", alloc/1e6)
	assert.Less(t, alloc, uint64(256<<20), "an overflowing recursion allocated %d MB", alloc/1e6)
	assert.Greater(t, alloc, uint64(64<<20), "the figures above no longer describe wazero's stack: update them")
	after := liveHeap()
	assert.Less(t, int64(after)-int64(before), int64(16<<20), "the stack is freed with the instance")
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
