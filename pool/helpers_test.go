package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"go.uber.org/goleak"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

func TestMain(m *testing.M) {
	// Subprocess tests start this test binary as their worker processes,
	// and as a parent of worker processes that dies.
	pool.ServeChildWith(pool.ChildHost{HostModules: []engine.HostModule{probeHost()}, Capabilities: []engine.Capability{echoCapability()}})
	if len(os.Args) > 1 && os.Args[1] == parentArg {
		os.Exit(parentMain(os.Args[2:]))
	}
	goleak.VerifyTestMain(m)
}

var modes = []pool.Mode{pool.Threads, pool.Processes}

// barrier is a host capability ("test"."barrier") that blocks each caller
// until n callers are inside it at once. Tasks of the barrier module can only
// finish if n workers run them at the same time, which proves, without
// timing, that the pool has n working workers.
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	release chan struct{}
	entered chan struct{} // one value per caller that has entered
}

func newBarrier(n int) *barrier {
	return &barrier{n: n, release: make(chan struct{}), entered: make(chan struct{}, 1024)}
}

func (b *barrier) wait(ctx context.Context) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	b.mu.Lock()
	b.arrived++
	ch := b.release
	if b.arrived == b.n {
		close(b.release)
		b.arrived = 0
		b.release = make(chan struct{})
	}
	b.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// testEngine returns an engine that grants the barrier capability.
func testEngine(t testing.TB, cfg engine.Config, b *barrier) *engine.Engine {
	t.Helper()
	if b != nil {
		cfg.HostModules = append(cfg.HostModules, engine.HostModule{Name: "test", Define: func(hb wazero.HostModuleBuilder) {
			hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
				b.wait(ctx)
			}), nil, nil).Export("barrier")
		}})
	}
	if cfg.CacheDir == "" {
		// Compile each module once per machine, not once per test.
		cfg.CacheDir = testmod.CompileCache()
	}
	e, err := engine.New(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	return e
}

func newPool(t testing.TB, e *engine.Engine, cfg pool.Config) *pool.Pool {
	t.Helper()
	p, err := pool.New(e, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func goModule(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.Path(t, name))
	require.NoError(t, err)
	return m
}

func watModule(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.WAT(t, name))
	require.NoError(t, err)
	return m
}

// within bounds a test's waits: a deadlock fails the test instead of hanging.
func within(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// assertFullCapacity proves the pool has n working workers: n barrier tasks
// can only finish if all n run at once.
func assertFullCapacity(t *testing.T, p *pool.Pool, m *engine.Module, n int) {
	t.Helper()
	ctx := within(t)
	var fs []*future.Future[engine.Result]
	for range n {
		fs = append(fs, p.Submit(ctx, engine.Task{Module: m, Func: "run"}))
	}
	for _, f := range fs {
		_, err := f.Result(ctx)
		require.NoError(t, err, "all %d workers must run a barrier task at once", n)
	}
}

// errorClass names the one class an error belongs to, so a test can assert
// the exact class: a task that both timed out and trapped would read
// "ambiguous", not pass as either.
func errorClass(err error) string {
	if err == nil {
		return "ok"
	}
	var (
		classes []string
		trap    *engine.TrapError
		exit    *engine.ExitError
		te      *engine.TaskError
	)
	for _, c := range []struct {
		name string
		err  error
	}{
		{"timeout", engine.ErrTimeout}, {"cancelled", context.Canceled},
		{"memory limit", engine.ErrMemoryLimit}, {"output limit", engine.ErrOutputLimit},
		{"bad module", engine.ErrBadModule}, {"no function", engine.ErrNoFunction},
		{"shutdown", pool.ErrShutdown}, {"broken", pool.ErrBroken},
	} {
		if errors.Is(err, c.err) {
			classes = append(classes, c.name)
		}
	}
	if errors.As(err, &trap) {
		name := "trap " + trap.Kind.String()
		if trap.Abort != "" {
			name += ": " + trap.Abort
		}
		classes = append(classes, name)
	}
	if errors.As(err, &exit) {
		classes = append(classes, fmt.Sprintf("exit %d", exit.Code))
	}
	if errors.As(err, &te) {
		classes = append(classes, "task")
	}
	switch len(classes) {
	case 0:
		return "unclassified: " + err.Error()
	case 1:
		return classes[0]
	}
	// A pool shutdown interrupting a task is also a cancel: one event.
	if len(classes) == 2 && classes[0] == "cancelled" && classes[1] == "shutdown" {
		return "cancelled"
	}
	return fmt.Sprintf("ambiguous %q: %v", classes, err)
}

// heapInUse is the live Go heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
