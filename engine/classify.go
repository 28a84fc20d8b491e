package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// timeoutCause marks a context that ended because the task's own Timeout
// ran out, so the error can say "after 2s" rather than just "deadline".
type timeoutCause struct{ d time.Duration }

func (c *timeoutCause) Error() string        { return fmt.Sprintf("timed out after %v", c.d) }
func (c *timeoutCause) Is(target error) bool { return target == context.DeadlineExceeded }

// classify turns what wazero returned for one call, which ended at now, into
// the error the user sees, in order of what is most telling: a host-side
// fault (ABI misuse, output limit) first, then why the call context was
// stopped (timeout, cancel, interrupt), then the guest's own exit, then the
// memory limit, then the closing of its runtime, then the guest's trap.
func (inst *Instance) classify(err error, t *Task, now time.Time) error {
	st := &inst.st
	if st.fault != nil {
		return st.fault
	}
	fn := t.Func
	if fn == "" {
		fn = "_start"
	}
	inst.cc.expire(now)
	stopErr, cause := inst.cc.stopped()
	if err == nil {
		if stopErr != nil {
			// The deadline or a cancel fired while the guest was in a host
			// function that returned early because of it (a ctx-aware
			// capability, say) and the guest then returned before its next
			// checkpoint; or the call never started. Its result may rest on
			// cut-short work, and wazero has already marked the instance
			// closed: report what happened to the task, not a success.
			return contextError(stopErr, cause, fn)
		}
		return nil
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		code := exit.ExitCode()
		if stopErr != nil {
			// The deadline or a cancel came first: wazero closed the module
			// (a special exit code), or a host call gave up because of it (a
			// streamed stdin read) and the guest exited on that error. The
			// guest's own code says nothing about the task then.
			return contextError(stopErr, cause, fn)
		}
		if code == 0 {
			if inst.rt.isClosed() {
				// Closing a runtime closes its modules with exit code 0,
				// which would otherwise read as a clean exit of a call
				// that was cut short.
				return closedError(fn)
			}
			return nil
		}
		// The guest's own exit wins over the memory limit it may have hit:
		// a program that handles malloc failing says so with its code.
		return &ExitError{Code: code, Stderr: tail(st.stderr.buf, 4<<10)}
	}
	if stopErr != nil {
		return contextError(stopErr, cause, fn)
	}
	if inst.mem != nil && inst.mem.hit {
		return inst.memoryLimitError(fn)
	}
	var de *detailError
	if errors.As(err, &de) {
		return err // already ours (e.g. a bad mount)
	}
	if errors.Is(err, ErrClosed) {
		return err
	}
	if inst.rt.isClosed() {
		return closedError(fn) // wazero's "runtime closed" is no trap
	}
	te := trapFrom(err, fn)
	if inst.v != nil {
		te.Stack = inst.v.trace.rewrite(te.Stack)
	}
	if te.Kind == TrapUnreachable {
		te.Abort = runtimeAbort(st.stderr.buf)
	}
	return te
}

func contextError(err, cause error, fn string) error {
	var tc *timeoutCause
	switch {
	case errors.As(cause, &tc):
		return withDetail(ErrTimeout, nil, "function %q timed out after %v", fn, tc.d)
	case errors.Is(err, context.DeadlineExceeded):
		return withDetail(ErrTimeout, nil, "function %q timed out: the context's deadline passed", fn)
	case errors.Is(cause, ErrClosed):
		return closedError(fn)
	case cause == nil || cause == context.Canceled:
		return withDetail(ErrCancelled, nil, "function %q was cancelled", fn)
	default:
		// Keep the canceller's reason (say, the pool shutting down) matchable.
		return withDetail(ErrCancelled, cause, "function %q was cancelled: %v", fn, cause)
	}
}

func closedError(fn string) error {
	return withDetail(ErrClosed, nil, "function %q was stopped: its runtime was closed", fn)
}

// runtimeAbort finds why a guest's language runtime gave up, in what it wrote
// to stderr just before trapping. A Go reactor (like any Go library) aborts
// with an unreachable trap on a panic or a fatal error instead of exiting,
// and so does any Rust program built for wasm32-wasi (panics abort there), so
// the trap alone says nothing; the runtime's own line ("panic: boom",
// "fatal error: all goroutines are asleep - deadlock!", "thread 'main'
// panicked at 'boom', src/main.rs:2:5") says everything.
func runtimeAbort(stderr []byte) string {
	s := string(stderr)
	for _, prefix := range []string{"panic: ", "fatal error: ", "thread '"} {
		// The first such line is the cause; later ones are follow-ups
		// ("panic: boom [recovered]", "panic during panic").
		for from := 0; ; {
			i := strings.Index(s[from:], prefix)
			if i < 0 {
				break
			}
			i += from
			from = i + len(prefix)
			if i > 0 && s[i-1] != '\n' {
				continue
			}
			line, _, _ := strings.Cut(s[i:], "\n")
			if prefix == "thread '" && !strings.Contains(line, "' panicked at ") {
				continue
			}
			if len(line) > 200 {
				line = line[:200] + "…"
			}
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// trapMessages maps wazero's runtime error texts to trap kinds. wazero keeps
// its error values internal, so the text is the stable interface.
var trapMessages = []struct {
	text string
	kind TrapKind
}{
	{"unreachable", TrapUnreachable},
	{"out of bounds memory access", TrapOutOfBounds},
	{"invalid table access", TrapOutOfBounds},
	{"stack overflow", TrapStackOverflow},
	{"integer divide by zero", TrapDivideByZero},
	{"integer overflow", TrapIntegerOverflow},
	{"invalid conversion to integer", TrapInvalidConversion},
	{"indirect call type mismatch", TrapIndirectCall},
}

func trapFrom(err error, fn string) *TrapError {
	text := err.Error()
	msg, stack, _ := strings.Cut(text, "\nwasm stack trace:\n")
	msg = trimStartPrefix(msg)
	msg = strings.TrimPrefix(msg, "wasm error: ")
	te := &TrapError{Kind: TrapOther, Func: fn, Message: msg, Stack: strings.TrimSpace(stack)}
	for _, tm := range trapMessages {
		if msg == tm.text {
			te.Kind = tm.kind
			break
		}
	}
	if te.Kind == TrapOther {
		te.Message = firstLine(msg)
	}
	return te
}

// trimStartPrefix drops the "module[NAME] function[_start] failed: " (or
// "start function[N] failed: ") that wazero puts before a trap in a start
// function: the trap's text follows it, and the kind must be read from that
// text as for any other call.
func trimStartPrefix(msg string) string {
	// A module's own start section (wazero names its function by index,
	// which instrumentation changes).
	if rest, ok := strings.CutPrefix(msg, "start function["); ok {
		if i := strings.Index(rest, "] failed: "); i >= 0 {
			return rest[i+len("] failed: "):]
		}
	}
	if !strings.HasPrefix(msg, "module[") {
		return msg
	}
	const failed = "] failed: "
	if i := strings.Index(msg, failed); i >= 0 && strings.Contains(msg[:i], "] function[") {
		return msg[i+len(failed):]
	}
	return msg
}

func asExit(err error) (*ExitError, bool) {
	var ee *ExitError
	ok := errors.As(err, &ee)
	return ee, ok
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return append([]byte(nil), b...)
}
