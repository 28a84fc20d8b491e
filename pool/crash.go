package pool

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
)

// ErrWorkerCrashed is matched by the error of a task whose worker process
// (Subprocess isolation) died under it: killed by a signal, exited, ran out
// of memory, or broke the protocol. The error is a *CrashError that says
// which. Only that task fails; the pool starts a fresh worker process.
//
// It belongs to the pool, not the engine: the engine runs guests and knows
// nothing of processes, and a crash is about where the pool ran the task,
// not about the task (the same task may well succeed on a retry).
var ErrWorkerCrashed = errors.New("worker process crashed")

// CrashError describes a worker process that died while running a task.
type CrashError struct {
	PID int
	// Func is the export the task called ("_start" for a command).
	Func string
	// Exit is how the process ended: "exit status 2", "killed by signal
	// SIGKILL".
	Exit string
	// Signal is the name of the signal that killed it ("SIGKILL"), if one
	// did.
	Signal string
	// Reason is what the pool makes of it, when it can tell: the process
	// broke the protocol, reached a ProcessLimits limit, or ran out of memory.
	Reason string
	// Stderr holds the last lines the process wrote to its stderr: the Go
	// runtime's last words, for a fatal error.
	Stderr string
	// OutOfMemory: the process died for want of memory (its address-space
	// limit, or the Go runtime's "out of memory"). The error then matches
	// engine.ErrMemoryLimit too.
	OutOfMemory bool
}

func (e *CrashError) Error() string {
	var b strings.Builder
	b.WriteString("worker process ")
	if e.PID != 0 {
		fmt.Fprintf(&b, "%d ", e.PID)
	}
	if e.Reason != "" {
		b.WriteString(e.Reason)
	} else {
		b.WriteString("crashed")
	}
	if e.Func != "" {
		fmt.Fprintf(&b, " while running function %q", e.Func)
	}
	if e.Exit != "" {
		fmt.Fprintf(&b, " (%s)", e.Exit)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, "; its last words on stderr: %s", strings.Join(strings.Split(e.Stderr, "\n"), " | "))
	}
	return b.String()
}

func (e *CrashError) Unwrap() []error {
	if e.OutOfMemory {
		return []error{ErrWorkerCrashed, engine.ErrMemoryLimit}
	}
	return []error{ErrWorkerCrashed}
}

// outOfMemory tells a Go runtime that died for want of memory from its last
// words ("fatal error: runtime: out of memory", "runtime: cannot allocate
// memory"; with the race detector, "ThreadSanitizer failed to allocate").
func outOfMemory(stderr string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "failed to allocate"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
