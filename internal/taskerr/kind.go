package taskerr

import (
	"context"
	"errors"
	"io/fs"

	"github.com/wasmpool/wasmpool/engine"
)

// Error kinds: the class of a task's failure, as the CLI's JSON lines give
// it ("error_kind", DESIGN.md's result line) and as package metrics labels
// failed tasks. One vocabulary for both, so that a dashboard and a batch's
// output agree.
const (
	KindTrap       = "trap"
	KindTimeout    = "timeout"
	KindCancelled  = "cancelled"
	KindMemory     = "memory"
	KindOutput     = "output"
	KindExit       = "exit"
	KindTask       = "task"
	KindBadModule  = "bad_module"
	KindNoFunction = "no_function"
	KindBadLine    = "bad_line"
	KindCrash      = "crash"
	KindFuel       = "fuel"
	// KindUnavailable is a task the cluster's broker could not be reached
	// for (ErrUnavailable): nothing about the task, nothing timed out.
	KindUnavailable = "unavailable"
	// KindCapability is a task refused because it grants a capability the
	// host that got it does not provide (engine.ErrNoCapability): neither
	// the guest's failure nor the module's, but where it was sent, which
	// another host (a worker with --allow-host, say) may run.
	KindCapability = "capability"
	// KindNoWorker is a cluster task that no live worker could run, for want
	// of a label, capability, mounts or memory it requires
	// (cluster.ErrNoWorker): where it could go does not exist yet.
	KindNoWorker = "no_worker"
)

// Kind names the class of a task's failure: "" for nil, and "task" for
// anything not more specific (an I/O error reading an input, say). The
// order of the cases matters: a timeout that also wraps a trap is a
// timeout, an outage whose retries ran out of time is "unavailable", a crash for want of memory is "memory".
func Kind(err error) string {
	var (
		trap *engine.TrapError
		exit *engine.ExitError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, engine.ErrBadMount), IsMissingFile(err):
		// A mount the task names that the host running it cannot give, or a
		// module file that is not there: the request's mistake (a batch
		// line's, in the CLI), not a module's content.
		return KindBadLine
	case errors.Is(err, engine.ErrCancelled), errors.Is(err, context.Canceled), errors.Is(err, ErrShutdown):
		return KindCancelled
	case errors.Is(err, ErrNoWorker):
		// Before capability: a missing capability is one reason among
		// those the error names, and no worker refused anything.
		return KindNoWorker
	case errors.Is(err, ErrUnavailable):
		// Before the timeout: an outage's error wraps the deadline of the
		// submitter's retries, and is not the task's timeout.
		return KindUnavailable
	case errors.Is(err, engine.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, engine.ErrFuelExhausted):
		return KindFuel
	case errors.Is(err, engine.ErrMemoryLimit):
		return KindMemory
	case errors.Is(err, engine.ErrOutputLimit):
		return KindOutput
	case errors.Is(err, ErrWorkerCrashed):
		return KindCrash
	case errors.As(err, &trap):
		return KindTrap
	case errors.As(err, &exit):
		return KindExit
	case errors.Is(err, engine.ErrNoCapability):
		return KindCapability
	case errors.Is(err, engine.ErrNoFunction):
		return KindNoFunction
	case errors.Is(err, engine.ErrBadModule):
		return KindBadModule
	}
	return KindTask
}

// IsMissingFile reports whether a module could not be read at all (missing,
// or not readable): then it is the path that is wrong, not the module.
func IsMissingFile(err error) bool {
	return errors.Is(err, engine.ErrBadModule) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission))
}
