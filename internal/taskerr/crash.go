package taskerr

import (
	"fmt"
	"strings"

	"github.com/wasmpool/wasmpool/engine"
)

// CrashError is pool.CrashError: a worker process that died while running
// a task.
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
