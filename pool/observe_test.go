package pool_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// events records what OnTaskDone hears.
type events struct {
	mu   sync.Mutex
	list []pool.TaskEvent
}

func (ev *events) add(e pool.TaskEvent) {
	ev.mu.Lock()
	ev.list = append(ev.list, e)
	ev.mu.Unlock()
}

func (ev *events) byOutcome() map[pool.Outcome][]pool.TaskEvent {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	m := map[pool.Outcome][]pool.TaskEvent{}
	for _, e := range ev.list {
		m[e.Outcome] = append(m[e.Outcome], e)
	}
	return m
}

// TestOnTaskDoneHearsEveryTask: every task is heard of once, with the
// outcome Stats count it under, before its future shows it; the ones a
// worker ran carry their wait, run time and fuel, in both isolations.
func TestOnTaskDoneHearsEveryTask(t *testing.T) {
	for _, iso := range []pool.Isolation{pool.InProcess, pool.Subprocess} {
		t.Run(iso.String(), func(t *testing.T) {
			ctx := within(t)
			e := testEngine(t, engine.Config{}, nil)
			echo, div, spin, xs := watModule(t, e, "echo"), watModule(t, e, "divzero"), watModule(t, e, "spin"), watModule(t, e, "xorshift")
			var ev events
			p := newPool(t, e, pool.Config{Workers: 1, Isolation: iso, OnTaskDone: ev.add})

			tasks := []engine.Task{
				{Module: echo, Func: "echo", Input: []byte("a")},
				{Module: echo, Func: "echo", Input: []byte("b"), Fuel: 1 << 40},
				{Module: div, Func: "run"},
				{Module: spin, Func: "spin", Timeout: 50 * time.Millisecond},
				{Module: xs, Func: "run", Params: []uint64{100000}, Fuel: 1000},
				{}, // no module: refused, never run
			}
			for i, task := range tasks {
				_, err := p.Submit(ctx, task).Result(ctx)
				// BeforeDone: whoever has the result finds the task heard of.
				ev.mu.Lock()
				n := len(ev.list)
				ev.mu.Unlock()
				require.Equal(t, i+1, n, "task %d (err %v) was heard of before its result showed", i, err)
			}
			// Cancelled while queued: the one worker is busy with spin.
			block := p.Submit(ctx, engine.Task{Module: spin, Func: "spin", Timeout: time.Minute})
			queued := p.Submit(ctx, engine.Task{Module: echo, Func: "echo"})
			require.True(t, queued.Cancel())
			block.Cancel()
			require.NoError(t, p.Shutdown(ctx))

			got := ev.byOutcome()
			st := p.Stats()
			assert.Len(t, got[pool.TaskSucceeded], int(st.Succeeded))
			assert.Len(t, got[pool.TaskFailed], int(st.Failed))
			assert.Len(t, got[pool.TaskTimedOut], int(st.TimedOut))
			assert.Len(t, got[pool.TaskCancelled], int(st.Cancelled))
			require.Len(t, got[pool.TaskSucceeded], 2)
			require.Len(t, got[pool.TaskFailed], 3) // the trap, the fuel, the missing module
			require.Len(t, got[pool.TaskTimedOut], 1)
			require.Len(t, got[pool.TaskCancelled], 2)

			for _, s := range got[pool.TaskSucceeded] {
				assert.True(t, s.Ran)
				assert.NoError(t, s.Err)
				assert.Equal(t, "echo.wasm", s.Module)
				assert.Positive(t, s.Duration)
			}
			plain, metered := got[pool.TaskSucceeded][0], got[pool.TaskSucceeded][1]
			assert.Zero(t, plain.FuelBudget, "no budget, no fuel")
			assert.Zero(t, plain.Fuel)
			assert.Equal(t, uint64(1<<40), metered.FuelBudget)
			assert.Positive(t, metered.Fuel)

			var fuelOut pool.TaskEvent
			for _, f := range got[pool.TaskFailed] {
				switch f.Module {
				case "xorshift.wasm":
					fuelOut = f
				case "":
					assert.False(t, f.Ran, "a task without a module never runs")
					assert.ErrorIs(t, f.Err, engine.ErrBadModule)
				default:
					var trap *engine.TrapError
					assert.ErrorAs(t, f.Err, &trap)
					assert.True(t, f.Ran)
				}
			}
			require.ErrorIs(t, fuelOut.Err, engine.ErrFuelExhausted)
			assert.Equal(t, uint64(1000), fuelOut.FuelBudget)
			assert.Equal(t, uint64(1000), fuelOut.Fuel, "it used all of its budget")

			to := got[pool.TaskTimedOut][0]
			assert.ErrorIs(t, to.Err, engine.ErrTimeout)
			assert.True(t, to.Ran)
			assert.Positive(t, to.Duration, "it ran until stopped")
			for _, c := range got[pool.TaskCancelled] {
				if c.Module == "echo.wasm" {
					assert.False(t, c.Ran, "cancelled while queued")
				}
			}
		})
	}
}

// TestOnTaskDonePanicIsContained: an observer that panics loses neither the
// task's result nor the pool's counts.
func TestOnTaskDonePanicIsContained(t *testing.T) {
	ctx := within(t)
	var reported sync.WaitGroup
	reported.Add(1)
	old := future.SetPanicHandler(func(any, []byte) { reported.Done() })
	t.Cleanup(func() { future.SetPanicHandler(old) })
	e := testEngine(t, engine.Config{}, nil)
	p := newPool(t, e, pool.Config{Workers: 1, OnTaskDone: func(pool.TaskEvent) { panic("observer bug") }})
	res, err := p.Submit(ctx, engine.Task{Module: watModule(t, e, "echo"), Func: "echo", Input: []byte("ok")}).Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(res.Output))
	reported.Wait()
	assert.Equal(t, int64(1), p.Stats().Succeeded)
}
