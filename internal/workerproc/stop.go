package workerproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
)

func cancelReasonOf(j *Job) cancelReason {
	cause := context.Cause(j.Ctx)
	switch {
	case j.timedOut, errors.Is(cause, context.DeadlineExceeded):
		return cancelDeadline
	case errors.Is(cause, taskerr.ErrShutdown):
		return cancelShutdown
	}
	return cancelCanceled
}

// stoppedError is a task the pool stopped: it reads like the engine's own
// timeout and cancel errors, and matches the same sentinels and cause.
type stoppedError struct {
	detail   string
	sentinel error
	cause    error
}

func (e *stoppedError) Error() string { return e.detail }
func (e *stoppedError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.sentinel, e.cause}
	}
	return []error{e.sentinel}
}

// stopError is the error of a job this side stopped: at its Timeout by
// this side's clock, or because its context ended; killed says its worker
// process had to be killed to stop it.
func stopError(j *Job, killed bool) error {
	t := j.Task
	fn := funcName(t)
	cause := context.Cause(j.Ctx)
	e := &stoppedError{sentinel: engine.ErrCancelled}
	switch {
	case j.timedOut:
		e.sentinel, e.detail = engine.ErrTimeout, fmt.Sprintf("function %q timed out after %v", fn, t.Timeout)
	case errors.Is(cause, context.DeadlineExceeded):
		e.sentinel, e.detail = engine.ErrTimeout, fmt.Sprintf("function %q timed out: the context's deadline passed", fn)
	case cause == nil || cause == context.Canceled:
		e.detail = fmt.Sprintf("function %q was cancelled", fn)
	default:
		e.detail, e.cause = fmt.Sprintf("function %q was cancelled: %v", fn, cause), cause
	}
	if killed {
		e.detail += "; its worker process was killed to stop it"
	}
	return moduleErr(t, e)
}
