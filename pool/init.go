package pool

// The pool's Init on new instances, and the task Timeout that bounds all
// that is done for a task: building its instance, Init, the call.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// newInstance instantiates t's module and runs the pool's Init on it when
// Init applies to that module (see Config.Init for what a failure does).
func (w *worker) newInstance(ctx context.Context, t engine.Task) (*engine.Instance, error) {
	p := w.p
	inst, err := w.rt.Instantiate(ctx, t)
	if err != nil || !p.initApplies(t) {
		return inst, err
	}
	init := *p.cfg.Init
	init.Module = t.Module
	init.Args, init.Env, init.Mounts = t.Args, t.Env, t.Mounts
	if init.Timeout == 0 {
		init.Timeout = p.cfg.TaskTimeout
	}
	if init.Fuel == 0 {
		init.Fuel = p.cfg.TaskFuel
	}
	if init.Grants == nil && init.GrantArgs == nil {
		// Init works for the task: it may call what the task may.
		init.Grants, init.GrantArgs = t.Grants, t.GrantArgs
	}
	_, err = inst.Call(ctx, init)
	if err == nil {
		return inst, nil
	}
	_ = inst.Close(context.WithoutCancel(ctx))
	switch {
	case ctx.Err() != nil:
		return nil, err // the task was stopped (or ran out of time): Init did not fail
	case initBreaks(err):
		return nil, p.moduleErrFor(t, p.breakWith(err))
	}
	return nil, p.moduleErrFor(t, &initError{fn: init.Func, err: innerError(err)})
}

// initApplies reports whether the pool's Init runs on a new instance for t:
// for an export task of Init's module, or, when Init names no module, of any
// module that exports Init's function.
func (p *Pool) initApplies(t engine.Task) bool {
	init := p.cfg.Init
	if init == nil || t.Func == "" {
		return false
	}
	if init.Module != nil {
		return init.Module == t.Module
	}
	return slices.ContainsFunc(t.Module.Exports(), func(x engine.Export) bool { return x.Name == init.Func })
}

// initBreaks reports whether an Init failure is the module's own, so that
// every later instance would fail the same way: the pool is then broken. A
// timeout, a cancel, a closed engine, a crash of the worker process are not:
// they fail the one task.
func initBreaks(err error) bool {
	if errors.Is(err, engine.ErrTimeout) || errors.Is(err, engine.ErrCancelled) || errors.Is(err, ErrWorkerCrashed) {
		return false
	}
	for _, s := range []error{engine.ErrNoFunction, engine.ErrBadModule, engine.ErrMemoryLimit, engine.ErrOutputLimit, engine.ErrFuelExhausted} {
		if errors.Is(err, s) {
			return true
		}
	}
	return errors.As(err, new(*engine.TrapError)) || errors.As(err, new(*engine.TaskError)) || errors.As(err, new(*engine.ExitError))
}

// initError is an Init failure that did not break the pool (its timeout,
// say): it fails the task the instance was for, and reads as Init's.
type initError struct {
	fn  string
	err error
}

func (e *initError) Error() string {
	return fmt.Sprintf("the pool's Init (%q) failed: %v", e.fn, e.err)
}
func (e *initError) Unwrap() error { return e.err }

// innerError is err without the module an *engine.Error names.
func innerError(err error) error {
	var ee *engine.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// withTaskTimeout bounds ctx by t's Timeout, counted from now, for a task
// that is more than one call: taskTimeoutError then words its expiry as
// the task's timeout.
func withTaskTimeout(ctx context.Context, t engine.Task) (context.Context, context.CancelFunc) {
	if t.Timeout <= 0 {
		return ctx, func() {}
	}
	deadline := time.Now().Add(t.Timeout)
	tctx, cancel := context.WithDeadlineCause(ctx, deadline, &taskTimeout{d: t.Timeout})
	return &taskCtx{Context: tctx, parent: ctx, deadline: deadline, d: t.Timeout}, cancel
}

// taskCtx is withTaskTimeout's context: it knows its own deadline, so that
// taskTimeoutError need not wait for the context's timer to have fired (a
// guest checks the deadline itself, and can be stopped by it first).
type taskCtx struct {
	context.Context
	parent   context.Context
	deadline time.Time
	d        time.Duration
}

// taskTimeoutError turns err, if it is the expiry of withTaskTimeout's
// context, into the task's timeout ("timed out after 2s").
func taskTimeoutError(ctx context.Context, t engine.Task, err error) error {
	tc, ok := ctx.(*taskCtx)
	if err == nil || !ok || !errors.Is(err, engine.ErrTimeout) || time.Now().Before(tc.deadline) {
		return err
	}
	if pd, ok := tc.parent.Deadline(); ok && pd.Before(tc.deadline) {
		return err // the caller's own deadline came first
	}
	fn := t.Func
	if fn == "" {
		fn = "_start"
	}
	return moduleErr(t, &timedOut{detail: fmt.Sprintf("function %q timed out after %v", fn, tc.d)})
}

func moduleErr(t engine.Task, err error) error {
	return &engine.Error{Module: t.Module.Name(), Err: err}
}

// taskTimeout is the cause of a context that ended at the task's Timeout.
type taskTimeout struct{ d time.Duration }

func (c *taskTimeout) Error() string        { return fmt.Sprintf("timed out after %v", c.d) }
func (c *taskTimeout) Is(target error) bool { return target == context.DeadlineExceeded }

// timedOut is a task's timeout, worded as the engine words it and matching
// the same sentinels.
type timedOut struct{ detail string }

func (e *timedOut) Error() string   { return e.detail }
func (e *timedOut) Unwrap() []error { return []error{engine.ErrTimeout} }
