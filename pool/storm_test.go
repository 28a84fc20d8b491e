package pool_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// stormSeed is the cancel storm's seed: WASMPOOL_STORM_SEED replays a run.
func stormSeed(t *testing.T) int64 {
	if s := os.Getenv("WASMPOOL_STORM_SEED"); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, "WASMPOOL_STORM_SEED")
		return seed
	}
	return time.Now().UnixNano()
}

// stormKind is one kind of task in the storm, and the outcomes it may have.
type stormKind struct {
	name    string
	allowed []string // errorClass values
}

var stormKinds = []stormKind{
	{"quick", []string{"ok", "cancelled", "shutdown"}},
	{"quick, context deadline", []string{"ok", "timeout", "cancelled", "shutdown"}},
	{"spin, task timeout", []string{"timeout", "cancelled", "shutdown"}},
	{"spin, cancelled future", []string{"cancelled", "shutdown"}},
	{"spin, cancelled context", []string{"cancelled", "shutdown"}},
}

// The cancel storm: 10,000 tasks per mode from four goroutines, while a
// fifth cancels futures and contexts at random, some tasks time out queued
// or running, and the pool is shut down half way. Every future must resolve
// exactly once, with an outcome its kind allows (and the right value if it
// succeeded); nothing may deadlock; and goleak (TestMain) finds no goroutine
// left. A failure prints the seed to replay it with.
func TestCancelStorm(t *testing.T) {
	seed := stormSeed(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cancel storm seed %d: replay with WASMPOOL_STORM_SEED=%d", seed, seed)
		}
	})
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) { cancelStorm(t, mode, seed) })
	}
}

func cancelStorm(t *testing.T, mode pool.Mode, seed int64) {
	const (
		tasks      = 10_000
		submitters = 4
	)
	// One P is left to the rest of the process: Go cannot preempt a
	// goroutine running wazero's compiled code, so when every P runs a
	// spinning guest, the timers and goroutines that deliver timeouts and
	// cancels wait for a preemption signal to land in the little Go code
	// each loop iteration runs. Measured on 2 cores, 2 workers: a 1ms
	// timeout took 25-55ms on average, up to 0.3-1s; with 1 worker, 1.9ms.
	workers := max(1, runtime.GOMAXPROCS(0)-1)
	e := testEngine(t, engine.Config{}, nil)
	p, err := pool.New(e, pool.Config{Mode: mode, Workers: workers, QueueSize: 32})
	require.NoError(t, err)
	add, spin := watModule(t, e, "add"), watModule(t, e, "spin")
	ctx := within(t)

	type entry struct {
		f     *future.Future[engine.Result]
		kind  int
		n     uint64
		calls atomic.Int32 // OnDone callbacks
	}
	entries := make([]*entry, tasks)
	type cancellation struct {
		f      *future.Future[engine.Result]
		cancel func()
	}
	toCancel := make(chan cancellation, tasks)
	var submitted atomic.Int64
	half := make(chan struct{})

	var wg sync.WaitGroup
	for s := range submitters {
		wg.Go(func() {
			rng := rand.New(rand.NewSource(seed + int64(s)))
			for i := s; i < tasks; i += submitters {
				en := &entry{kind: rng.Intn(len(stormKinds)), n: uint64(i)}
				task := engine.Task{Module: add, Func: "add", Params: []uint64{en.n, 1}}
				tctx, cancel := context.WithCancel(context.Background())
				switch en.kind {
				case 1:
					tctx, cancel = context.WithTimeout(context.Background(), time.Duration(rng.Intn(20_000))*time.Microsecond)
				case 2:
					task = engine.Task{Module: spin, Func: "spin", Timeout: time.Duration(200+rng.Intn(1800)) * time.Microsecond}
				case 3, 4:
					task = engine.Task{Module: spin, Func: "spin"}
				}
				en.f = p.Submit(tctx, task)
				en.f.OnDone(func(*future.Future[engine.Result]) { en.calls.Add(1); cancel() })
				entries[i] = en
				switch en.kind {
				case 3:
					toCancel <- cancellation{en.f, func() { en.f.Cancel() }}
				case 4:
					toCancel <- cancellation{en.f, cancel}
				}
				if submitted.Add(1) == tasks/2 {
					close(half)
				}
			}
		})
	}

	// The canceller: each cancel it is handed goes into a bag, and it draws
	// them from the bag at random, so a task is cancelled while queued or
	// while running.
	var whileRunning, whileQueued int // written by the canceller, read once it is done
	cancelled := make(chan struct{})
	go func() {
		defer close(cancelled)
		rng := rand.New(rand.NewSource(seed - 1))
		var bag []cancellation
		draw := func(i int) {
			switch bag[i].f.State() {
			case future.Running:
				whileRunning++
			case future.Pending:
				whileQueued++
			}
			bag[i].cancel()
			bag = slices.Delete(bag, i, i+1)
		}
		// A spin with no timeout holds its worker until it is cancelled:
		// on every tick a running one is, which also keeps the storm moving
		// when spins hold every worker and the submitters wait for room in
		// the queue.
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case c, ok := <-toCancel:
				if !ok {
					for len(bag) > 0 {
						draw(0)
					}
					return
				}
				bag = append(bag, c)
				if rng.Intn(4) == 0 {
					draw(rng.Intn(len(bag)))
				}
			case <-tick.C:
				if i := slices.IndexFunc(bag, func(c cancellation) bool { return c.f.State() == future.Running }); i >= 0 {
					draw(i)
				}
			}
		}
	}()

	// Shut down half way, giving what is queued and running 20ms to finish.
	shutdown := make(chan error, 1)
	go func() {
		<-half
		sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		shutdown <- p.Shutdown(sctx)
	}()

	wg.Wait()
	close(toCancel)
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("deadlock: the canceller never finished")
	}
	select {
	case err := <-shutdown:
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
		}
	case <-ctx.Done():
		t.Fatal("deadlock: Shutdown never returned")
	}

	outcomes := map[string]int{}
	for i, en := range entries {
		res, err := en.f.Result(ctx)
		require.NotErrorIs(t, ctx.Err(), context.DeadlineExceeded, "deadlock: task %d never resolved", i)
		class := errorClass(err)
		kind := stormKinds[en.kind]
		assert.Contains(t, kind.allowed, class, "task %d (%s): %v", i, kind.name, err)
		if class == "ok" {
			assert.Equal(t, []uint64{en.n + 1}, res.Values, "task %d", i)
		}
		_, again := en.f.Result(ctx)
		assert.Equal(t, err, again, "task %d: a future's outcome never changes", i)
		outcomes[kind.name+": "+class]++
	}
	require.NoError(t, p.Close())
	// Every future has resolved; its callbacks ran exactly once.
	for i, en := range entries {
		assert.Equal(t, int32(1), en.calls.Load(), "task %d: OnDone ran %d times", i, en.calls.Load())
	}
	st := p.Stats()
	assert.Equal(t, int64(tasks), st.Submitted)
	assert.Equal(t, st.Submitted, st.Succeeded+st.Failed+st.Cancelled+st.TimedOut, "every task counted once: %+v", st)
	assert.Zero(t, st.Running)
	assert.Zero(t, st.Queued)
	t.Logf("seed %d; cancelled %d tasks while running, %d while queued; outcomes: %s", seed, whileRunning, whileQueued, fmt.Sprint(outcomes))
	// A spin with nothing else to end it is always running or queued when
	// the canceller draws it: both happen, thousands of times.
	assert.Positive(t, whileRunning)
	assert.Positive(t, whileQueued)
}
