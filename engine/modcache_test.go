package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// The engine's module cache (issue 13): a long-lived process is bounded
// whatever modules it is given, and Module.Close releases one for good.

// memEngine is an engine whose compiled code stays in memory, so that a
// test of many modules writes nothing to the shared disk cache.
func memEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	return e
}

func compileConst(t testing.TB, e *engine.Engine, n uint32) *engine.Module {
	t.Helper()
	m, err := e.Compile(context.Background(), testmod.Const(n))
	require.NoError(t, err)
	return m
}

func runConst(t testing.TB, e *engine.Engine, m *engine.Module, n uint32) {
	t.Helper()
	res, err := e.Run(context.Background(), engine.Task{Module: m, Func: "run", Params: []uint64{}})
	require.NoError(t, err)
	require.Equal(t, []uint64{uint64(n)}, res.Values)
}

// Engine kept every module it ever compiled: 300 distinct ones, run in the
// shared runtime and in an isolated one, leave at most MaxModules resident
// and only their compiled code open.
func TestModuleCacheStaysBounded(t *testing.T) {
	const max = 16
	e := memEngine(t, engine.Config{MaxModules: max})
	ctx := context.Background()
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	for i := range uint32(300) {
		m := compileConst(t, e, i)
		runConst(t, e, m, i)
		res, err := rt.Run(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}})
		require.NoError(t, err)
		require.Equal(t, []uint64{uint64(i)}, res.Values)
		s := e.ModuleStats()
		require.LessOrEqual(t, s.Modules, max, "after module %d", i)
		require.LessOrEqual(t, s.Codes, max, "after module %d", i)
		// One variant each, in the shared runtime and in rt.
		require.LessOrEqual(t, s.CompiledModules, int64(2*max), "after module %d", i)
	}
	s := e.ModuleStats()
	assert.Equal(t, max, s.Modules)
	assert.Equal(t, uint64(300), s.Compiles)
	assert.Equal(t, uint64(300-max), s.Evictions)
	assert.Equal(t, uint64(300-max), e.ModulesDropped())

	// Closing the isolated runtime releases its copies: wazero keeps a
	// runtime's compiled modules past the runtime when the compilation
	// cache is shared, until each is closed.
	require.NoError(t, rt.Close(ctx))
	assert.Equal(t, int64(max), e.ModuleStats().CompiledModules)
}

// Least recently used first; a module still used is kept, one evicted
// stays a valid handle (compiled again when used), and Compile of evicted
// bytes makes a new module.
func TestModuleCacheEvictsLeastRecentlyUsed(t *testing.T) {
	e := memEngine(t, engine.Config{MaxModules: 2})
	a, b := compileConst(t, e, 1), compileConst(t, e, 2)
	runConst(t, e, a, 1) // b is now the least recently used
	c := compileConst(t, e, 3)
	s := e.ModuleStats()
	assert.Equal(t, 2, s.Modules)
	assert.Equal(t, uint64(1), s.Evictions)
	assert.Same(t, a, compileConst(t, e, 1), "a was used: still resident, the same module")
	assert.Same(t, c, compileConst(t, e, 3))

	// b was evicted: it still runs, compiled again, which evicts a (c was
	// compiled after a's last use).
	runConst(t, e, b, 2)
	s = e.ModuleStats()
	assert.Equal(t, uint64(4), s.Compiles, "b compiled again")
	assert.Equal(t, 2, s.Modules)
	assert.NotSame(t, a, compileConst(t, e, 1), "a was evicted: its bytes make a new module")
	assert.False(t, a.Closed(), "an evicted module is not closed")
	runConst(t, e, a, 1)
}

// A module called on a warm instance is in use, though nothing compiles or
// instantiates it: eviction gives it a second chance.
func TestModuleCacheKeepsWarmModules(t *testing.T) {
	e := memEngine(t, engine.Config{MaxModules: 2})
	ctx := context.Background()
	hot := compileConst(t, e, 1)
	inst, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer inst.Close(ctx)
	warm, err := inst.Instantiate(ctx, engine.Task{Module: hot, Func: "run", Params: []uint64{}})
	require.NoError(t, err)
	defer warm.Close(ctx)
	cold := compileConst(t, e, 2) // the most recently listed, hot the least
	// Calls mark their module used once a millisecond at most: call until
	// one has.
	for start := time.Now(); time.Since(start) <= 2*time.Millisecond; {
		_, err := warm.Call(ctx, engine.Task{Module: hot, Func: "run", Params: []uint64{}})
		require.NoError(t, err)
	}
	compileConst(t, e, 3)
	assert.False(t, warm.Stale(), "the warm module was kept")
	assert.NotSame(t, cold, compileConst(t, e, 2), "the cold one was evicted")
}

func TestModuleCacheBytesBound(t *testing.T) {
	one := int64(len(testmod.Const(1)))
	// Each module counts its bytes, rewritten and instrumented forms: more
	// than one, less than ten times its size; a bound of ten sizes keeps a
	// few and not all.
	e := memEngine(t, engine.Config{MaxModuleBytes: 10 * one})
	for i := range uint32(50) {
		runConst(t, e, compileConst(t, e, i), i)
		s := e.ModuleStats()
		require.LessOrEqual(t, s.Bytes, 10*one)
		require.GreaterOrEqual(t, s.Modules, 1)
	}
	assert.Less(t, e.ModuleStats().Modules, 10)
	assert.Positive(t, e.ModuleStats().Evictions)
}

func TestModuleCacheTwinsShareCode(t *testing.T) {
	e := memEngine(t, engine.Config{})
	ctx := context.Background()
	wasm := testmod.Const(7)
	a, err := e.CompileNamed(ctx, "a.wasm", wasm)
	require.NoError(t, err)
	b, err := e.CompileNamed(ctx, "b.wasm", wasm)
	require.NoError(t, err)
	s := e.ModuleStats()
	assert.Equal(t, 2, s.Modules)
	assert.Equal(t, 1, s.Codes, "one compiled form for the same bytes")
	require.NoError(t, a.Close(ctx))
	runConst(t, e, b, 7)
	require.NoError(t, b.Close(ctx))
	assert.Zero(t, e.ModuleStats().Codes)
	assert.Zero(t, e.ModuleStats().CompiledModules)
}

// waitHost is the host module hostwait.wasm imports: test.wait blocks
// until the test lets it go, after saying so on entered.
type waitHost struct {
	entered chan struct{}
	release chan struct{}
}

func newWaitHost() (*waitHost, engine.HostModule) {
	h := &waitHost{entered: make(chan struct{}, 16), release: make(chan struct{})}
	return h, engine.HostModule{Name: "test", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithFunc(func(ctx context.Context) {
			h.entered <- struct{}{}
			select {
			case <-h.release:
			case <-ctx.Done():
			}
		}).Export("wait")
	}}
}

// Closing a module while a task runs lets the task finish, refuses new
// ones, and releases the code when the task is over.
func TestModuleCloseWhileRunning(t *testing.T) {
	h, host := newWaitHost()
	e := memEngine(t, engine.Config{HostModules: []engine.HostModule{host}})
	ctx := context.Background()
	m := compileWAT(t, e, "hostwait")
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, engine.Task{Module: m, Func: "run"})
		done <- err
	}()
	<-h.entered
	require.NoError(t, m.Close(ctx))
	assert.True(t, m.Closed())
	s := e.ModuleStats()
	assert.Zero(t, s.Modules, "closed: no longer resident")
	assert.Equal(t, 1, s.Codes, "the running task still holds the code")
	assert.Positive(t, s.CompiledModules)

	_, err := e.Run(ctx, engine.Task{Module: m, Func: "run"})
	require.ErrorIs(t, err, engine.ErrModuleClosed)
	var ee *engine.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "hostwait.wasm", ee.Module)
	assert.Contains(t, err.Error(), `module "hostwait.wasm"`)

	close(h.release)
	require.NoError(t, <-done, "the task running when its module closed finishes")
	s = e.ModuleStats()
	assert.Zero(t, s.Codes, "released once the last task ended")
	assert.Zero(t, s.CompiledModules)
	assert.Equal(t, uint64(1), s.Closes)

	again := compileWAT(t, e, "hostwait")
	assert.NotSame(t, m, again, "the same bytes compiled after Close: a new module")
	assert.False(t, again.Closed())
}

// A warm instance outlives its module's Close until it is closed itself,
// refusing calls meanwhile.
func TestModuleCloseWithLiveInstance(t *testing.T) {
	e := memEngine(t, engine.Config{})
	ctx := context.Background()
	m := compileConst(t, e, 5)
	rt, err := e.NewRuntime(ctx)
	require.NoError(t, err)
	defer rt.Close(ctx)
	task := engine.Task{Module: m, Func: "run", Params: []uint64{}}
	inst, err := rt.Instantiate(ctx, task)
	require.NoError(t, err)
	require.NoError(t, m.Close(ctx))
	assert.True(t, inst.Stale())
	assert.False(t, inst.Fits(&task), "an instance of a closed module fits no task")
	_, err = inst.Call(ctx, task)
	require.ErrorIs(t, err, engine.ErrModuleClosed)
	_, err = rt.Instantiate(ctx, task)
	require.ErrorIs(t, err, engine.ErrModuleClosed)
	assert.Equal(t, 1, e.ModuleStats().Codes)
	require.NoError(t, inst.Close(ctx))
	assert.Zero(t, e.ModuleStats().Codes)
	assert.Zero(t, e.ModuleStats().CompiledModules, "the isolated runtime's copy is released too")
}

// Compile returns the same module to every caller of the same bytes: one
// caller's Close must not close another's.
func TestModuleCloseCountsCompiles(t *testing.T) {
	e := memEngine(t, engine.Config{})
	ctx := context.Background()
	first, second := compileConst(t, e, 9), compileConst(t, e, 9)
	require.Same(t, first, second)
	require.NoError(t, first.Close(ctx))
	assert.False(t, second.Closed(), "one Compile is not undone yet")
	runConst(t, e, second, 9)
	require.NoError(t, second.Close(ctx))
	assert.True(t, second.Closed())
	require.NoError(t, second.Close(ctx), "closing a closed module does nothing")
	assert.Zero(t, e.ModuleStats().Codes)
}

func TestModuleCloseConcurrentWithRuns(t *testing.T) {
	e := memEngine(t, engine.Config{MaxModules: 4})
	ctx := context.Background()
	for round := range uint32(20) {
		m := compileConst(t, e, round)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 10 {
					res, err := e.Run(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}})
					if err != nil {
						assert.ErrorIs(t, err, engine.ErrModuleClosed)
						return
					}
					assert.Equal(t, []uint64{uint64(round)}, res.Values)
				}
			})
		}
		wg.Go(func() { assert.NoError(t, m.Close(ctx)) })
		// Other modules come and go meanwhile: evictions race with both.
		wg.Go(func() {
			for i := range uint32(6) {
				n := 1000 + 10*round + i
				other := compileConst(t, e, n)
				runConst(t, e, other, n)
			}
		})
		wg.Wait()
		_, err := e.Run(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}})
		require.ErrorIs(t, err, engine.ErrModuleClosed)
	}
	s := e.ModuleStats()
	assert.LessOrEqual(t, s.Modules, 4)
	assert.Equal(t, s.Modules, s.Codes, "no code is left over by a closed or evicted module")
	assert.Equal(t, int64(s.Codes), s.CompiledModules)
}

func TestModuleCacheConfigErrors(t *testing.T) {
	for _, cfg := range []engine.Config{{MaxModules: -1}, {MaxModuleBytes: -1}} {
		_, err := engine.New(context.Background(), cfg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "cannot be negative")
	}
	var zero engine.Module
	assert.NoError(t, zero.Close(context.Background()), "the zero Module closes as a no-op")
	assert.False(t, errors.Is(engine.ErrModuleClosed, engine.ErrClosed), "a closed module is not a closed engine")
}
