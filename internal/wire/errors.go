package wire

import (
	"context"
	"errors"
	"io/fs"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
)

// The one error codec of every wire (worker processes, the cluster). A
// task's error crosses as its text plus what it matches: the sentinels
// below, and the typed errors users reach for with errors.As, with their
// fields. The receiver rebuilds an error that reads the same and matches
// the same, so a task fails identically wherever it ran.

// Sentinels are the errors an encoded error is checked against, one bit
// each: a new one goes at the end (the bit is the index), and the protocol
// versions of the wires that use this codec change with it.
var Sentinels = []error{
	engine.ErrTimeout,
	engine.ErrCancelled,
	engine.ErrMemoryLimit,
	engine.ErrOutputLimit,
	engine.ErrNoFunction,
	engine.ErrBadModule,
	engine.ErrClosed,
	engine.ErrInstanceUnusable,
	engine.ErrBadMount,
	engine.ErrFuelExhausted,
	taskerr.ErrShutdown,
	taskerr.ErrBroken,
	taskerr.ErrWorkerCrashed,
	taskerr.ErrWorkerLost,
	taskerr.ErrUnavailable,
	taskerr.ErrNotAllowed,
	context.Canceled,
	context.DeadlineExceeded,
	fs.ErrNotExist,
	fs.ErrPermission,
	fs.ErrExist,
	errors.ErrUnsupported,
	engine.ErrNoCapability,
	engine.ErrHostPanic,
}

// MaxErrorText bounds each string of an encoded error: a wasm stack trace
// of a deep recursion can be long, and a result must stay under its
// reader's limit whatever the guest did.
const MaxErrorText = 16 << 10

// RemoteError is an error rebuilt from its encoding: it reads as the
// original did and unwraps to what the original matched.
type RemoteError struct {
	Msg   string
	Wraps []error
}

func (e *RemoteError) Error() string   { return e.Msg }
func (e *RemoteError) Unwrap() []error { return e.Wraps }

// Clip cuts s to MaxErrorText.
func Clip(s string) string {
	if len(s) > MaxErrorText {
		return s[:MaxErrorText] + "…"
	}
	return s
}

// EncodeError appends err (nil included). The module an *engine.Error
// names travels apart from the rest, so the receiver can name the module
// as it knows it.
func EncodeError(enc *Encoder, err error) {
	enc.Bool(err != nil)
	if err == nil {
		return
	}
	inner := err
	var ee *engine.Error
	hasModule := errors.As(err, &ee)
	enc.Bool(hasModule)
	if hasModule {
		enc.String(ee.Module)
		inner = ee.Err
	}
	enc.String(Clip(inner.Error()))

	var (
		trap  *engine.TrapError
		exit  *engine.ExitError
		task  *engine.TaskError
		crash *taskerr.CrashError
	)
	typed := make([]error, 0, 4)
	enc.Bool(errors.As(err, &trap))
	if trap != nil {
		enc.Uvarint(uint64(trap.Kind))
		enc.String(Clip(trap.Func))
		enc.String(Clip(trap.Message))
		enc.String(Clip(trap.Stack))
		enc.String(Clip(trap.Abort))
		typed = append(typed, trap)
	}
	enc.Bool(errors.As(err, &exit))
	if exit != nil {
		enc.Uvarint(uint64(exit.Code))
		enc.ByteString([]byte(Clip(string(exit.Stderr))))
		typed = append(typed, exit)
	}
	enc.Bool(errors.As(err, &task))
	if task != nil {
		enc.String(Clip(task.Message))
		typed = append(typed, task)
	}
	enc.Bool(errors.As(err, &crash))
	if crash != nil {
		enc.Varint(int64(crash.PID))
		enc.String(Clip(crash.Func))
		enc.String(Clip(crash.Exit))
		enc.String(Clip(crash.Signal))
		enc.String(Clip(crash.Reason))
		enc.String(Clip(crash.Stderr))
		enc.Bool(crash.OutOfMemory)
		typed = append(typed, crash)
	}
	// A sentinel a typed error already matches (a crash's ErrWorkerCrashed)
	// comes back through it: listing it again would only hide the typed
	// error behind a wrapper.
	var flags uint64
	for i, s := range Sentinels {
		if errors.Is(err, s) && !anyIs(typed, s) {
			flags |= 1 << i
		}
	}
	enc.Uvarint(flags)
}

func anyIs(errs []error, target error) bool {
	for _, e := range errs {
		if errors.Is(e, target) {
			return true
		}
	}
	return false
}

// DecodeError reads what EncodeError wrote. A non-empty module names the
// module of the rebuilt error (the receiver's name for it); otherwise the
// encoded one does, if there was one.
func DecodeError(d *Decoder, module string) error {
	if !d.Bool() {
		return nil
	}
	if d.Bool() {
		encoded := d.String()
		if module == "" {
			module = encoded
		}
	}
	msg := d.String()
	var wraps []error
	if d.Bool() {
		trap := &engine.TrapError{Kind: engine.TrapKind(min(d.Uvarint(), 1<<16))}
		trap.Func, trap.Message, trap.Stack, trap.Abort = d.String(), d.String(), d.String(), d.String()
		wraps = append(wraps, trap)
	}
	if d.Bool() {
		exit := &engine.ExitError{Code: uint32(min(d.Uvarint(), 1<<32-1))}
		if b := d.ByteString(); b != nil {
			exit.Stderr = append([]byte(nil), b...)
		}
		wraps = append(wraps, exit)
	}
	if d.Bool() {
		wraps = append(wraps, &engine.TaskError{Message: d.String()})
	}
	if d.Bool() {
		crash := &taskerr.CrashError{PID: int(clampInt(d.Varint()))}
		crash.Func, crash.Exit, crash.Signal, crash.Reason, crash.Stderr = d.String(), d.String(), d.String(), d.String(), d.String()
		crash.OutOfMemory = d.Bool()
		wraps = append(wraps, crash)
	}
	flags := d.Uvarint()
	for i, s := range Sentinels {
		if flags&(1<<i) != 0 {
			wraps = append(wraps, s)
		}
	}
	if d.Err() != nil {
		return nil
	}
	var inner error = &RemoteError{Msg: msg, Wraps: wraps}
	if len(wraps) == 1 && wraps[0].Error() == msg {
		inner = wraps[0] // a trap, exit, task or crash error as it was
	}
	if module != "" {
		return &engine.Error{Module: module, Err: inner}
	}
	return inner
}

func clampInt(v int64) int64 { return max(min(v, 1<<31-1), -1<<31) }
