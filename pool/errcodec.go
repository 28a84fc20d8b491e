package pool

import (
	"context"
	"errors"
	"io/fs"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// A task's error crosses from a worker process to the pool as its text plus
// what it matches: the sentinels below and the typed errors users reach for
// with errors.As. The pool rebuilds an error that reads the same and matches
// the same, so a task fails identically whichever side of the pipe it ran on.

// remoteSentinels are the sentinels an error is checked against, one bit
// each in the encoding: append only, the bit is the index.
var remoteSentinels = []error{
	engine.ErrTimeout,
	engine.ErrCancelled,
	engine.ErrMemoryLimit,
	engine.ErrOutputLimit,
	engine.ErrNoFunction,
	engine.ErrBadModule,
	engine.ErrClosed,
	ErrShutdown,
	context.Canceled,
	context.DeadlineExceeded,
	fs.ErrNotExist,
	fs.ErrPermission,
	engine.ErrInstanceUnusable,
	engine.ErrBadMount,
}

// maxErrorText bounds each string of an encoded error: a wasm stack trace of
// a deep recursion can be long, and a result frame must stay under the
// pool's read limit whatever the guest did.
const maxErrorText = 16 << 10

// remoteError is an error rebuilt from a worker process's encoding.
type remoteError struct {
	msg   string
	wraps []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.wraps }

func clip(s string) string {
	if len(s) > maxErrorText {
		return s[:maxErrorText] + "…"
	}
	return s
}

func encodeError(enc *wire.Encoder, err error) {
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
	enc.String(clip(inner.Error()))
	var flags uint64
	for i, s := range remoteSentinels {
		if errors.Is(err, s) {
			flags |= 1 << i
		}
	}
	enc.Uvarint(flags)

	var trap *engine.TrapError
	enc.Bool(errors.As(err, &trap))
	if trap != nil {
		enc.Uvarint(uint64(trap.Kind))
		enc.String(clip(trap.Func))
		enc.String(clip(trap.Message))
		enc.String(clip(trap.Stack))
		enc.String(clip(trap.Abort))
	}
	var exit *engine.ExitError
	enc.Bool(errors.As(err, &exit))
	if exit != nil {
		enc.Uvarint(uint64(exit.Code))
		enc.String(clip(string(exit.Stderr)))
	}
	var task *engine.TaskError
	enc.Bool(errors.As(err, &task))
	if task != nil {
		enc.String(clip(task.Message))
	}
}

func decodeError(d *wire.Decoder) error {
	if !d.Bool() {
		return nil
	}
	var module string
	hasModule := d.Bool()
	if hasModule {
		module = d.String()
	}
	re := &remoteError{msg: d.String()}
	flags := d.Uvarint()
	for i, s := range remoteSentinels {
		if flags&(1<<i) != 0 {
			re.wraps = append(re.wraps, s)
		}
	}
	if d.Bool() {
		trap := &engine.TrapError{Kind: engine.TrapKind(min(d.Uvarint(), 1<<16))}
		trap.Func, trap.Message, trap.Stack, trap.Abort = d.String(), d.String(), d.String(), d.String()
		re.wraps = append(re.wraps, trap)
	}
	if d.Bool() {
		exit := &engine.ExitError{Code: uint32(min(d.Uvarint(), 1<<32-1))}
		if b := d.ByteString(); b != nil {
			exit.Stderr = append([]byte(nil), b...)
		}
		re.wraps = append(re.wraps, exit)
	}
	if d.Bool() {
		re.wraps = append(re.wraps, &engine.TaskError{Message: d.String()})
	}
	if hasModule {
		return &engine.Error{Module: module, Err: re}
	}
	return re
}
