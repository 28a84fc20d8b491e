package pool_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// issue 13: a long-lived pool sent ever new modules stays bounded. A
// Threads worker kept a warm instance of every module it ever ran, and so
// the engine every module's code; each mode's worker now holds at most what
// the engine keeps (MaxModules), plus the module it is running.
func TestPoolManyModulesStayBounded(t *testing.T) {
	const max, n, workers = 16, 300, 2
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			e, err := engine.New(context.Background(), engine.Config{MaxModules: max})
			require.NoError(t, err)
			defer func() { require.NoError(t, e.Close(context.Background())) }()
			p, err := pool.New(e, pool.Config{Mode: mode, Workers: workers})
			require.NoError(t, err)
			defer func() { require.NoError(t, p.Close()) }()
			ctx := within(t)
			for i := range uint32(n) {
				m, err := e.Compile(ctx, testmod.Const(i))
				require.NoError(t, err)
				res, err := p.Submit(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}}).Result(ctx)
				require.NoError(t, err, "module %d", i)
				require.Equal(t, []uint64{uint64(i)}, res.Values)
				s := e.ModuleStats()
				require.LessOrEqual(t, s.Modules, max, "after module %d", i)
				// An idle worker holds its warm instances, some of modules
				// evicted meanwhile, until its next task sweeps them: at
				// most what it held then (Threads).
				codes := max + workers*(max+1)
				require.LessOrEqual(t, s.Codes, codes, "after module %d", i)
				// A variant each, in the engine's shared runtime and in the
				// pool's (Threads: one shared; Processes: one per worker).
				require.LessOrEqual(t, s.CompiledModules, int64((1+workers)*codes), "after module %d", i)
				require.LessOrEqual(t, p.Stats().WarmInstances, int64(workers*(max+1)), "after module %d", i)
			}
			assert.Equal(t, uint64(n-max), e.ModuleStats().Evictions)
		})
	}
}

// A module closed while a Threads worker keeps a warm instance of it: the
// worker's next task drops the instance, and the engine releases the code.
func TestPoolReleasesClosedModules(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Mode: pool.Threads, Workers: 1})
	ctx := within(t)
	run := func(m *engine.Module, n uint32) error {
		res, err := p.Submit(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}}).Result(ctx)
		if err == nil {
			assert.Equal(t, []uint64{uint64(n)}, res.Values)
		}
		return err
	}
	closing, other := compile(t, e, 1), compile(t, e, 2)
	require.NoError(t, run(closing, 1))
	require.Equal(t, int64(1), p.Stats().WarmInstances)
	require.NoError(t, closing.Close(ctx))
	assert.Equal(t, 2, e.ModuleStats().Codes, "the warm instance holds the closed module's code")

	require.NoError(t, run(other, 2))
	assert.Equal(t, int64(1), p.Stats().WarmInstances, "the closed module's instance was dropped")
	assert.Equal(t, 1, e.ModuleStats().Codes, "and its code released")
	err := run(closing, 1)
	require.ErrorIs(t, err, engine.ErrModuleClosed)
	assert.Contains(t, err.Error(), closing.Name())
	assert.Zero(t, p.Stats().WorkerRestarts, "a dropped instance is no restart")
}

func compile(t *testing.T, e *engine.Engine, n uint32) *engine.Module {
	t.Helper()
	m, err := e.Compile(context.Background(), testmod.Const(n))
	require.NoError(t, err)
	return m
}

// A worker process keeps every module it is sent, and so does the pool's
// handle of it: one that holds as many as the engine's MaxModules is
// replaced before its next batch, so that neither grows for ever.
func TestWorkerProcessesManyModulesStayBounded(t *testing.T) {
	const max, n = 8, 40
	e, err := engine.New(context.Background(), engine.Config{MaxModules: max, CacheDir: testmod.CompileCache()})
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close(context.Background())) }()
	p, err := pool.New(e, pool.Config{Isolation: pool.Subprocess, Workers: 1})
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	ctx := within(t)
	for i := range uint32(n) {
		m, err := e.Compile(ctx, testmod.Const(i))
		require.NoError(t, err)
		res, err := p.Submit(ctx, engine.Task{Module: m, Func: "run", Params: []uint64{}}).Result(ctx)
		require.NoError(t, err, "module %d", i)
		require.Equal(t, []uint64{uint64(i)}, res.Values)
	}
	st := p.Stats()
	assert.GreaterOrEqual(t, st.ProcessRestarts, int64(n/max-1), "a worker process replaced about every %d modules", max)
	assert.Zero(t, st.ProcessCrashes)
}
