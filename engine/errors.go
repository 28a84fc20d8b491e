package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every failed task returns an *Error that wraps one of these
// (or a *TrapError, *ExitError or *TaskError), so callers match the cause with
// errors.Is or errors.As and still get a message that names the module.
var (
	// ErrTimeout means the task ran past its Timeout or its context's deadline.
	// It also matches context.DeadlineExceeded, so code written for plain
	// contexts keeps working.
	ErrTimeout error = &ctxSentinel{msg: "timed out", ctxErr: context.DeadlineExceeded}
	// ErrCancelled means the task's context was cancelled before it finished.
	// It also matches context.Canceled.
	ErrCancelled error = &ctxSentinel{msg: "cancelled", ctxErr: context.Canceled}
	// ErrMemoryLimit means the guest asked for more linear memory than
	// Config.MemoryLimitBytes allows (or declares a minimum above it), or
	// declares tables over the engine's cap of 10,000,000 elements.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrFuelExhausted means the task used up its Task.Fuel: it ran as many
	// WebAssembly instructions as its budget allowed. It is never a trap of
	// the guest's own.
	ErrFuelExhausted = errors.New("fuel exhausted")
	// ErrOutputLimit means the guest wrote more than Config.OutputLimitBytes to
	// its output or to its stderr.
	ErrOutputLimit = errors.New("output limit exceeded")
	// ErrNoFunction means the task named a function the module does not
	// export, or one whose signature does not fit the call.
	ErrNoFunction = errors.New("no such function")
	// ErrBadModule means the bytes are not a valid WebAssembly module, or the
	// module imports something this host does not provide.
	ErrBadModule = errors.New("bad module")
	// ErrClosed means the engine, or the Runtime the task ran in, was
	// closed before or while the call was made.
	ErrClosed = errors.New("engine closed")
	// ErrModuleClosed means the task's module was closed (Module.Close)
	// before the task began: compile the bytes again for a new *Module.
	ErrModuleClosed = errors.New("module closed")
	// ErrInstanceUnusable means Instance.Call was given what that instance
	// cannot run: it failed earlier (Broken), or the task is for another
	// module or sandbox (see Fits). Build a new instance for the task.
	ErrInstanceUnusable = errors.New("instance unusable")
	// ErrBadMount means one of Task.Mounts cannot be given to the guest: its
	// host path is empty, missing or not a directory, or two mounts share a
	// guest path. The task's own mistake, not the module's; a missing
	// directory also matches fs.ErrNotExist.
	ErrBadMount = errors.New("bad mount")
)

// ctxSentinel is a sentinel that also matches a context error, so that
// errors.Is(err, context.DeadlineExceeded) holds for a task that timed out.
type ctxSentinel struct {
	msg    string
	ctxErr error
}

func (s *ctxSentinel) Error() string        { return s.msg }
func (s *ctxSentinel) Is(target error) bool { return target == s.ctxErr }

// Error is the error every failed task and every failed compile returns. It
// names the module so that a log line on its own says which plugin failed;
// Err holds the cause to match with errors.Is / errors.As.
type Error struct {
	Module string // the module's Name()
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("module %q: %v", e.Module, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// TrapKind says why the guest trapped.
type TrapKind int

const (
	TrapOther TrapKind = iota
	TrapUnreachable
	TrapOutOfBounds
	TrapStackOverflow
	TrapDivideByZero
	TrapIntegerOverflow
	TrapInvalidConversion
	TrapIndirectCall
)

var trapKindNames = [...]string{
	TrapOther:             "other",
	TrapUnreachable:       "unreachable",
	TrapOutOfBounds:       "out of bounds",
	TrapStackOverflow:     "stack overflow",
	TrapDivideByZero:      "divide by zero",
	TrapIntegerOverflow:   "integer overflow",
	TrapInvalidConversion: "invalid conversion",
	TrapIndirectCall:      "indirect call mismatch",
}

func (k TrapKind) String() string {
	if k < 0 || int(k) >= len(trapKindNames) {
		return fmt.Sprintf("TrapKind(%d)", int(k))
	}
	return trapKindNames[k]
}

// TrapError is a WebAssembly trap: the guest did something the machine
// refuses (unreachable, a bad memory access, a division by zero...).
type TrapError struct {
	Kind    TrapKind
	Func    string // the export the task called ("_start" for a command)
	Message string // what wazero said, first line
	Stack   string // the wasm stack trace, when there is one
	// Abort is the guest runtime's own last words when it trapped on purpose
	// to give up ("panic: boom", "fatal error: ... deadlock!", "thread 'main'
	// panicked at ..."): a Go reactor, and a Rust program of any kind, abort
	// with an unreachable trap on a panic. Empty otherwise.
	Abort string
}

func (e *TrapError) Error() string {
	if e.Abort != "" {
		return fmt.Sprintf("function %q trapped: %s: the guest's runtime aborted: %s", e.Func, e.Message, e.Abort)
	}
	return fmt.Sprintf("function %q trapped: %s", e.Func, e.Message)
}

// ExitError is a guest that exited with a non-zero code: a command's exit
// status (a Go command that panics exits with 2). A Go reactor export that
// panics traps instead: see TrapError.Abort.
type ExitError struct {
	Code   uint32
	Stderr []byte // the tail of what the guest wrote to stderr, to say why
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exited with code %d", e.Code)
	// A Go or Rust runtime's last words come before the stack it prints:
	// "panic: boom", not the last frame of its trace.
	why := runtimeAbort(e.Stderr)
	if why == "" {
		why = lastLine(e.Stderr)
	}
	if why != "" {
		msg += ": " + why
	}
	return msg
}

// TaskError is a failure the guest reported itself through the SDK
// (error_write, then a non-zero return).
type TaskError struct {
	Message string
}

func (e *TaskError) Error() string { return "task failed: " + e.Message }

// limitError adds the figure to a limit sentinel without hiding it from
// errors.Is.
type limitError struct {
	sentinel error
	detail   string
}

func (e *limitError) Error() string { return e.sentinel.Error() + ": " + e.detail }
func (e *limitError) Unwrap() error { return e.sentinel }

// detailError adds a sentence to a sentinel (ErrBadModule, ErrNoFunction,
// ErrTimeout...) and optionally keeps the underlying cause reachable.
type detailError struct {
	sentinel error
	detail   string
	cause    error
}

func (e *detailError) Error() string { return e.detail }
func (e *detailError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.sentinel, e.cause}
	}
	return []error{e.sentinel}
}

func withDetail(sentinel error, cause error, format string, args ...any) error {
	return &detailError{sentinel: sentinel, detail: fmt.Sprintf(format, args...), cause: cause}
}

// lastLine returns the last non-empty line of b, trimmed, for short messages.
func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n\t ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.TrimSpace(s)
}
