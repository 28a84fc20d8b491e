package pool

import (
	"context"
	"errors"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
)

// Outcome is how a task ended, as Stats counts it (Succeeded, Failed,
// TimedOut, Cancelled): the four do not overlap.
type Outcome int

const (
	TaskSucceeded Outcome = iota
	TaskFailed
	TaskTimedOut
	TaskCancelled
)

func (o Outcome) String() string {
	switch o {
	case TaskSucceeded:
		return "succeeded"
	case TaskFailed:
		return "failed"
	case TaskTimedOut:
		return "timed_out"
	case TaskCancelled:
		return "cancelled"
	}
	return "unknown"
}

// outcomeOf classifies a settled future as Stats counts it.
func outcomeOf(s future.State, err error) Outcome {
	switch {
	case s == future.Succeeded:
		return TaskSucceeded
	case s == future.Cancelled:
		return TaskCancelled
	case errors.Is(err, engine.ErrTimeout):
		return TaskTimedOut
	case errors.Is(err, engine.ErrCancelled):
		return TaskCancelled
	}
	return TaskFailed
}

// TaskEvent is what Config.OnTaskDone is told of every task the pool
// finishes, whichever way it ends: run, refused, cancelled while queued.
type TaskEvent struct {
	// Module is the name of the task's module ("" if it had none).
	Module  string
	Outcome Outcome
	// Err is the task's error (nil when it succeeded): what its future
	// gives, before the future wraps it in a *future.Failure.
	Err error
	// Ran says a worker ran the task to its end and the pool had its
	// result when the outcome was settled: Wait, Duration and Fuel are
	// then that run's. A task cancelled while queued or refused did not
	// run; nor, for these figures, did one cancelled while it ran (its
	// future settled before the worker was done).
	Ran bool
	// Wait is how long the task was queued before a worker took it.
	Wait time.Duration
	// Duration is the time spent inside the sandbox (engine.Result.Duration).
	Duration time.Duration
	// Fuel is what the task used of its budget (engine.Result.Fuel), when it
	// had one: FuelBudget is then that budget, else 0.
	Fuel, FuelBudget uint64
}

// ran is what a worker knows of a task it ran, for OnTaskDone: kept under
// the job's lock, because the future may settle on another goroutine (a
// Cancel) while the worker finishes.
type ran struct {
	ok             bool
	wait, duration time.Duration
	fuel           uint64
}

// recordRun keeps res for the task's TaskEvent, if anyone listens.
func (p *Pool) recordRun(j *job, res engine.Result) {
	if p.cfg.OnTaskDone == nil {
		return
	}
	j.mu.Lock()
	j.ran = ran{ok: true, wait: res.Wait, duration: res.Duration, fuel: res.Fuel}
	j.mu.Unlock()
}

// settled is the BeforeDone hook of a task, run as its future settles
// however it ends, before anyone can see the outcome: Stats count it, a
// running task whose future was cancelled is stopped (before Cancel
// returns), the queued-context watch ends, and the observer, if any, hears
// of it. It is the task's only hook: one closure per task, and no OnDone
// callback for the future to run.
func (p *Pool) settled(j *job) func(future.State, error) {
	return func(s future.State, err error) {
		p.count(s, err)
		if s == future.Cancelled {
			j.interrupt(context.Canceled)
		}
		p.watches.unwatch(j)
		if p.cfg.OnTaskDone != nil {
			p.observe(j, s, err)
		}
	}
}

// observe tells Config.OnTaskDone of a task that settled.
func (p *Pool) observe(j *job, s future.State, err error) {
	ev := TaskEvent{Outcome: outcomeOf(s, err), Err: err}
	if j.task.Module != nil {
		ev.Module = j.task.Module.Name()
	}
	j.mu.Lock()
	r := j.ran
	j.mu.Unlock()
	if r.ok {
		ev.Ran, ev.Wait, ev.Duration = true, r.wait, r.duration
		if j.task.Fuel > 0 {
			ev.Fuel, ev.FuelBudget = r.fuel, j.task.Fuel
		}
	}
	p.cfg.OnTaskDone(ev)
}
