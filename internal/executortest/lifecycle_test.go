package executortest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// lifecycle is a scenario of cancels, Shutdown and Close around tasks in
// flight, run on a fresh executor of one worker: it returns the outcomes
// of its tasks, in order, for every executor to match.
type lifecycle struct {
	name string
	run  func(t *testing.T, x pool.Executor, m lifecycleModules) []outcome
	// check asserts the reference's outcomes.
	check func(t *testing.T, outs []outcome)
}

// lifecycleModules are what the lifecycles run: an endless task (a loop
// without calls, or a recursion without loops: only function entries can
// stop that one) and an echo.
type lifecycleModules struct {
	endless engine.Task
	echo    *engine.Module
}

func (m lifecycleModules) spinTask() engine.Task { return m.endless }
func (m lifecycleModules) echoTask(s string) engine.Task {
	return engine.Task{Module: m.echo, Func: "echo", Input: []byte(s)}
}

// untilRunning waits until f runs (on a cluster: until a worker said it
// has it), bounded.
func untilRunning(t *testing.T, f *future.Future[engine.Result]) {
	t.Helper()
	require.Eventually(t, func() bool { return f.State() == future.Running }, time.Minute, time.Millisecond,
		"the task never started")
}

func result(ctx context.Context, f *future.Future[engine.Result]) outcome {
	res, err := f.Result(ctx)
	return outcome{res: res, err: err}
}

func lifecycles() []lifecycle {
	return []lifecycle{
		{name: "cancelled before it is submitted", run: func(t *testing.T, x pool.Executor, m lifecycleModules) []outcome {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return []outcome{result(within(t), x.Submit(ctx, m.echoTask("never")))}
		}, check: func(t *testing.T, outs []outcome) {
			matches(t, outs[0].err, engine.ErrCancelled, context.Canceled)
			assert.ErrorContains(t, outs[0].err, "while queued")
		}},
		{name: "cancelled while it runs", run: func(t *testing.T, x pool.Executor, m lifecycleModules) []outcome {
			ctx := within(t)
			f := x.Submit(ctx, m.spinTask())
			untilRunning(t, f)
			assert.True(t, f.Cancel())
			spun := result(ctx, f)
			// One worker: the next task runs only if the spin really stopped.
			return []outcome{spun, result(ctx, x.Submit(ctx, m.echoTask("after")))}
		}, check: func(t *testing.T, outs []outcome) {
			matches(t, outs[0].err, future.ErrCancelled, context.Canceled)
			require.NoError(t, outs[1].err)
			assert.Equal(t, "after", string(outs[1].res.Output))
		}},
		{name: "its context's deadline passes while it runs", run: func(t *testing.T, x pool.Executor, m lifecycleModules) []outcome {
			ctx, cancel := context.WithTimeout(within(t), 300*time.Millisecond)
			defer cancel()
			spun := result(within(t), x.Submit(ctx, m.spinTask()))
			return []outcome{spun, result(within(t), x.Submit(within(t), m.echoTask("after")))}
		}, check: func(t *testing.T, outs []outcome) {
			matches(t, outs[0].err, engine.ErrTimeout, context.DeadlineExceeded)
			require.NoError(t, outs[1].err)
		}},
		{name: "Close with a task running and one queued", run: func(t *testing.T, x pool.Executor, m lifecycleModules) []outcome {
			ctx := within(t)
			running := x.Submit(ctx, m.spinTask())
			untilRunning(t, running)
			queued := x.Submit(ctx, m.echoTask("queued"))
			require.NoError(t, x.Close())
			late := x.Submit(ctx, m.echoTask("late"))
			return []outcome{result(ctx, running), result(ctx, queued), result(ctx, late)}
		}, check: func(t *testing.T, outs []outcome) {
			matches(t, outs[0].err, engine.ErrCancelled, context.Canceled, pool.ErrShutdown)
			matches(t, outs[1].err, engine.ErrCancelled, context.Canceled, pool.ErrShutdown)
			require.ErrorIs(t, outs[2].err, pool.ErrShutdown)
			assert.NotErrorIs(t, outs[2].err, engine.ErrCancelled, "refused, not cancelled")
		}},
		{name: "Shutdown whose context ends with a task running", run: func(t *testing.T, x pool.Executor, m lifecycleModules) []outcome {
			ctx := within(t)
			running := x.Submit(ctx, m.spinTask())
			untilRunning(t, running)
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			assert.ErrorIs(t, x.Shutdown(short), context.DeadlineExceeded)
			return []outcome{result(ctx, running), result(ctx, x.Submit(ctx, m.echoTask("late")))}
		}, check: func(t *testing.T, outs []outcome) {
			matches(t, outs[0].err, engine.ErrCancelled, context.Canceled, pool.ErrShutdown)
			require.ErrorIs(t, outs[1].err, pool.ErrShutdown)
		}},
		{name: "Shutdown finishes what was submitted", run: func(t *testing.T, x pool.Executor, m lifecycleModules) []outcome {
			ctx := within(t)
			fs := []*future.Future[engine.Result]{x.Submit(ctx, m.echoTask("a")), x.Submit(ctx, m.echoTask("b")), x.Submit(ctx, m.echoTask("c"))}
			require.NoError(t, x.Shutdown(ctx))
			var outs []outcome
			for _, f := range fs {
				select {
				case <-f.Done():
				default:
					t.Error("Shutdown returned before a submitted task was done")
				}
				outs = append(outs, result(ctx, f))
			}
			return append(outs, result(ctx, x.Submit(ctx, m.echoTask("late"))))
		}, check: func(t *testing.T, outs []outcome) {
			for i, want := range []string{"a", "b", "c"} {
				require.NoError(t, outs[i].err)
				assert.Equal(t, want, string(outs[i].res.Output))
			}
			require.ErrorIs(t, outs[3].err, pool.ErrShutdown)
		}},
	}
}

// TestEveryExecutorStopsTasksTheSameWay runs each lifecycle on a fresh
// executor of every kind, and holds each to the reference's outcomes. The
// texts may say where a task was stopped; what they match may not differ.
func TestEveryExecutorStopsTasksTheSameWay(t *testing.T) {
	e := newEngine(t)
	spin, err := e.CompileFile(context.Background(), testmod.WAT(t, "spin"))
	require.NoError(t, err)
	fibrec, err := e.CompileFile(context.Background(), testmod.WAT(t, "fibrec"))
	require.NoError(t, err)
	echo, err := e.CompileFile(context.Background(), testmod.WAT(t, "echo"))
	require.NoError(t, err)
	ks := kinds()
	for _, endless := range []struct {
		name string
		task engine.Task
	}{
		{"loop", engine.Task{Module: spin, Func: "spin"}},
		{"recursion", engine.Task{Module: fibrec, Func: "fib", Params: []uint64{60}}},
	} {
		m := lifecycleModules{endless: endless.task, echo: echo}
		for _, l := range lifecycles() {
			t.Run(endless.name+"/"+l.name, func(t *testing.T) {
				all := make([][]outcome, len(ks))
				for i, k := range ks {
					t.Run(k.name, func(t *testing.T) {
						all[i] = l.run(t, k.start(t, e, 1), m)
					})
				}
				t.Run(ks[0].name+" (the reference)", func(t *testing.T) { l.check(t, all[0]) })
				for i, k := range ks[1:] {
					t.Run(k.name+" matches", func(t *testing.T) {
						require.Len(t, all[i+1], len(all[0]))
						for j := range all[0] {
							assertSame(t, all[0][j], all[i+1][j], variance{text: true})
						}
					})
				}
			})
		}
	}
}
