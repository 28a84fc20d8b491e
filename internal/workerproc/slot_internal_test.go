package workerproc

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// exitedChild is a worker process that has exited (its pipe still open to
// read what the slot asks of it), as the pool's own stop leaves one.
func exitedChild(t *testing.T, stopping bool) *child {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	c := &child{msgs: make(chan childMsg, 1), exited: make(chan struct{}), in: w, w: wire.NewWriter(w),
		stopping: stopping, modules: map[*engine.Module]uint64{}}
	close(c.exited)
	return c
}

// issue 13: a worker process the pool stops on purpose, under a running
// task (a Shutdown whose context ended, Close), counted as a crash, and its
// task could fail with ErrWorkerCrashed. However the death and the task's
// stop come to the slot, the task ends as the stop and no crash counts.
func TestAStopOnPurposeIsNoCrash(t *testing.T) {
	cases := []struct {
		name     string
		stopping bool  // the pool closed the child's stdin
		cause    error // why the task's context ended, if it did
		is       []error
	}{
		{"Close: the task was interrupted, then the process stopped", true, taskerr.ErrShutdown,
			[]error{engine.ErrCancelled, taskerr.ErrShutdown}},
		{"the process stopped before the task was told", true, nil, []error{engine.ErrCancelled, taskerr.ErrShutdown}},
		{"the task's deadline passed and its process ended", false, context.DeadlineExceeded, []error{engine.ErrTimeout}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range 20 { // the slot's select picks either of what is ready
				var crashes, restarts, built, discarded atomic.Int64
				sv := &Supervisor{grace: time.Hour, counters: Counters{InstancesBuilt: &built, InstanceRestarts: &discarded,
					Crashes: &crashes, Restarts: &restarts}}
				ch := exitedChild(t, c.stopping)
				s := &Slot{sv: sv, c: ch}
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				if c.cause != nil {
					cancel(c.cause)
				}
				j := &Job{Ctx: ctx, Task: engine.Task{Module: new(engine.Module), Func: "spin"}, id: 1}
				var got error
				r := &batchRun{s: s, c: ch, events: make(chan *Job, 1), finish: func(j *Job, _ engine.Result, err error) {
					j.finished, got = true, err
				}}
				r.watch(j)
				rest, _, _ := r.await([]*Job{j})
				r.unwatch()
				assert.Empty(t, rest)
				require.Error(t, got)
				for _, target := range c.is {
					assert.ErrorIs(t, got, target)
				}
				assert.NotErrorIs(t, got, taskerr.ErrWorkerCrashed)
				assert.Zero(t, crashes.Load(), "no crash: %v", got)
			}
		})
	}
}

// A worker process that is gone while it compiles a batch's module hands
// every job of the batch without an outcome back, those whose module it
// held included: none is dropped.
func TestAWorkerProcessGoneWhileLoadingLosesNoJob(t *testing.T) {
	var crashes, restarts, built, discarded atomic.Int64
	sv := &Supervisor{grace: time.Hour, counters: Counters{InstancesBuilt: &built, InstanceRestarts: &discarded,
		Crashes: &crashes, Restarts: &restarts}}
	ch := exitedChild(t, true)
	held, sent := new(engine.Module), new(engine.Module)
	ch.modules[held] = initModuleID + 1
	s := &Slot{sv: sv, c: ch}
	a := &Job{Ctx: context.Background(), Task: engine.Task{Module: held, Func: "f"}}
	b := &Job{Ctx: context.Background(), Task: engine.Task{Module: sent, Func: "f"}}
	r := &batchRun{s: s, c: ch, events: make(chan *Job, 2), finish: func(j *Job, _ engine.Result, err error) {
		t.Errorf("a job got an outcome (%v) from a worker process that never ran it", err)
	}}
	rest, _, err := r.run([]*Job{a, b})
	assert.NoError(t, err)
	assert.ElementsMatch(t, []*Job{a, b}, rest, "both go to the next worker process")
	assert.Zero(t, crashes.Load(), "stopped on purpose")
}
