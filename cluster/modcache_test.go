package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// loads counts a fake module store's fetches, per digest.
type loads struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *loads) loader(digest string, err error) func(context.Context) (*engine.Module, error) {
	return func(context.Context) (*engine.Module, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.n == nil {
			l.n = map[string]int{}
		}
		l.n[digest]++
		if err != nil {
			return nil, err
		}
		return new(engine.Module), nil
	}
}

func (l *loads) of(digest string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[digest]
}

// issue 13: a worker kept every module it was ever sent. It keeps at most
// MaxModules, the least recently used dropped first.
func TestModuleCacheIsBounded(t *testing.T) {
	mc := newModuleCache(2, time.Minute)
	var l loads
	ctx := context.Background()
	get := func(d string) {
		_, release, err := mc.get(ctx, d, l.loader(d, nil))
		require.NoError(t, err)
		release()
	}
	for i := range 100 {
		get(fmt.Sprint("m", i))
		assert.LessOrEqual(t, mc.len(), 2)
	}
	get("a")
	get("b")
	get("a") // b is now the least recently used
	get("c")
	get("a")
	assert.Equal(t, 1, l.of("a"), "kept: used last")
	get("b")
	assert.Equal(t, 2, l.of("b"), "dropped, then fetched again")
	mc.close()
	assert.Zero(t, mc.len())
}

// A module a task holds (fetched, its task queued in the pool) is not
// evicted: closed, the task would fail with engine.ErrModuleClosed. Once
// the task lets go, it is, and the engine's module is closed.
func TestModuleCacheKeepsHeldModules(t *testing.T) {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{})
	require.NoError(t, err)
	defer e.Close(ctx)
	compile := func(n uint32) func(context.Context) (*engine.Module, error) {
		return func(ctx context.Context) (*engine.Module, error) { return e.Compile(ctx, testmod.Const(n)) }
	}
	mc := newModuleCache(1, time.Minute)
	held, release, err := mc.get(ctx, "held", compile(1))
	require.NoError(t, err)
	for i := range uint32(3) {
		_, r, err := mc.get(ctx, fmt.Sprint("other", i), compile(10+i))
		require.NoError(t, err)
		r()
		assert.False(t, held.Closed(), "held by its task")
	}
	assert.Equal(t, 1, mc.len(), "the held module took the one place: the others went as their tasks let go")
	release()
	release() // a second release does nothing
	assert.False(t, held.Closed(), "let go, but within max")
	_, r, err := mc.get(ctx, "last", compile(20))
	require.NoError(t, err)
	assert.True(t, held.Closed(), "evicted once its task let go, and closed")
	assert.Equal(t, 1, mc.len())
	r()
	mc.close()
	assert.Zero(t, e.ModuleStats().Codes, "every module the cache dropped is closed")
}

// issue 13: a failure (a module missing from the store, or one this worker
// cannot compile) was cached for ever. It is kept for ModuleFailureTTL;
// the broker's own trouble is not kept at all.
func TestModuleCacheForgetsFailures(t *testing.T) {
	mc := newModuleCache(10, time.Minute)
	clock := time.Unix(1000, 0)
	mc.now = func() time.Time { return clock }
	var l loads
	ctx := context.Background()
	bad := fmt.Errorf("%w: not in the store", engine.ErrBadModule)
	for range 3 {
		_, _, err := mc.get(ctx, "bad", l.loader("bad", bad))
		require.ErrorIs(t, err, engine.ErrBadModule)
	}
	assert.Equal(t, 1, l.of("bad"), "remembered for a while: its tasks fail at once")
	clock = clock.Add(time.Minute)
	_, _, err := mc.get(ctx, "bad", l.loader("bad", nil))
	require.NoError(t, err, "tried again once the failure expired")
	assert.Equal(t, 2, l.of("bad"))

	for range 2 {
		_, _, err := mc.get(ctx, "flaky", l.loader("flaky", transient{errors.New("broker down")}))
		require.Error(t, err)
	}
	assert.Equal(t, 2, l.of("flaky"), "the broker's trouble is never kept")
}

func TestModuleCacheLoadsOnceForConcurrentTasks(t *testing.T) {
	mc := newModuleCache(10, time.Minute)
	var l loads
	release := make(chan struct{})
	slow := func(ctx context.Context) (*engine.Module, error) {
		<-release
		return l.loader("m", nil)(ctx)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			m, release, err := mc.get(context.Background(), "m", slow)
			defer release()
			assert.NoError(t, err)
			assert.NotNil(t, m)
		})
	}
	close(release)
	wg.Wait()
	assert.Equal(t, 1, l.of("m"))
}

// issue 13: the module store kept every module for ever, and each executor
// remembered every module it stored. The store has a TTL; an executor
// stores a module again once the copy there may be half that old, and
// remembers a bounded number.
func TestUploadsExpireAndStayBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	u := newUploads(time.Hour)
	assert.False(t, u.fresh("a", now))
	u.stored("a", now)
	assert.True(t, u.fresh("a", now.Add(29*time.Minute)))
	assert.False(t, u.fresh("a", now.Add(30*time.Minute)), "stored again before the store could drop it under a queued task")
	for i := range 3 * maxUploads {
		u.stored(fmt.Sprint(i), now)
		assert.LessOrEqual(t, len(u.at), maxUploads)
	}
	assert.False(t, stale(now, 0, now.Add(1000*time.Hour)), "no TTL: never stale")
}
