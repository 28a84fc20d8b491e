package cluster

import (
	"errors"
	"fmt"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

var (
	// ErrWorkerLost is the error of a task whose workers died (or went
	// silent past the ack deadline) before finishing it as many times as the
	// task allows deliveries: a task that kills every worker that runs it, or
	// an at-most-once task whose only worker died.
	ErrWorkerLost = errors.New("worker lost")
	// ErrUnavailable means the broker could not be reached, or refused the
	// task, for longer than the executor's PublishTimeout.
	ErrUnavailable = errors.New("cluster unavailable")
	// ErrNotAllowed is the error of a task asking a worker for something its
	// configuration forbids, such as mounting a directory of the worker's
	// host when the worker was not started with AllowMounts.
	ErrNotAllowed = errors.New("not allowed on this worker")
)

// remoteError is an error that happened on a worker, rebuilt on the
// submitter: it reads as it did there and matches the same sentinels.
type remoteError struct {
	msg  string
	errs []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.errs }

// sentinels are the errors a result can match, by their name on the wire.
var sentinels = []struct {
	name string
	err  error
}{
	{"timeout", engine.ErrTimeout},
	{"cancelled", engine.ErrCancelled},
	{"memory", engine.ErrMemoryLimit},
	{"output", engine.ErrOutputLimit},
	{"no_function", engine.ErrNoFunction},
	{"bad_module", engine.ErrBadModule},
	{"bad_mount", engine.ErrBadMount},
	{"shutdown", pool.ErrShutdown},
	{"broken", pool.ErrBroken},
	{"crash", pool.ErrWorkerCrashed}, // a worker's --isolation process died under the task
	{"worker_lost", ErrWorkerLost},
	{"not_allowed", ErrNotAllowed},
}

// wireError is an error as a result carries it.
type wireError struct {
	Msg  string     `json:"msg"`
	Is   []string   `json:"is,omitempty"`
	Trap *wireTrap  `json:"trap,omitempty"`
	Exit *wireExit  `json:"exit,omitempty"`
	Task *wireTaskE `json:"task,omitempty"`
}

type wireTrap struct {
	Kind    engine.TrapKind `json:"kind"`
	Func    string          `json:"func"`
	Message string          `json:"message"`
	Stack   string          `json:"stack,omitempty"`
	Abort   string          `json:"abort,omitempty"`
}

type wireExit struct {
	Code   uint32 `json:"code"`
	Stderr []byte `json:"stderr,omitempty"`
}

type wireTaskE struct {
	Message string `json:"message"`
}

// encodeError flattens err for the wire. The module prefix of an
// *engine.Error is left out: the submitter names the module as it knows it.
func encodeError(err error) *wireError {
	if err == nil {
		return nil
	}
	inner := err
	var ee *engine.Error
	if errors.As(err, &ee) {
		inner = ee.Err
	}
	w := &wireError{Msg: inner.Error()}
	for _, s := range sentinels {
		if errors.Is(inner, s.err) {
			w.Is = append(w.Is, s.name)
		}
	}
	var (
		trap *engine.TrapError
		exit *engine.ExitError
		task *engine.TaskError
	)
	switch {
	case errors.As(inner, &trap):
		w.Trap = &wireTrap{Kind: trap.Kind, Func: trap.Func, Message: trap.Message, Stack: trap.Stack, Abort: trap.Abort}
	case errors.As(inner, &exit):
		w.Exit = &wireExit{Code: exit.Code, Stderr: exit.Stderr}
	case errors.As(inner, &task):
		w.Task = &wireTaskE{Message: task.Message}
	}
	return w
}

// decode rebuilds the error under the module's name on this side.
func (w *wireError) decode(module string) error {
	if w == nil {
		return nil
	}
	var errs []error
	switch {
	case w.Trap != nil:
		errs = append(errs, &engine.TrapError{Kind: w.Trap.Kind, Func: w.Trap.Func, Message: w.Trap.Message, Stack: w.Trap.Stack, Abort: w.Trap.Abort})
	case w.Exit != nil:
		errs = append(errs, &engine.ExitError{Code: w.Exit.Code, Stderr: w.Exit.Stderr})
	case w.Task != nil:
		errs = append(errs, &engine.TaskError{Message: w.Task.Message})
	}
	for _, name := range w.Is {
		for _, s := range sentinels {
			if s.name == name {
				errs = append(errs, s.err)
			}
		}
	}
	var inner error = &remoteError{msg: w.Msg, errs: errs}
	if len(errs) == 1 && errs[0].Error() == w.Msg {
		inner = errs[0] // a trap, exit or task error as the worker had it
	}
	return &engine.Error{Module: module, Err: inner}
}

// moduleError is err under the module's name, as the pool words it.
func moduleError(module string, format string, args ...any) error {
	return &engine.Error{Module: module, Err: fmt.Errorf(format, args...)}
}
