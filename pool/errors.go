package pool

import "github.com/wasmpool/wasmpool/internal/taskerr"

// The pool's errors are defined in internal/taskerr, where the one error
// codec of every wire knows them; these are their public names.
var (
	// ErrShutdown is the error of a task submitted after Shutdown or Close,
	// and the cause wrapped by a task that Close (or a Shutdown whose
	// context ended) cancelled, queued or running: such a task's error
	// matches engine.ErrCancelled and context.Canceled too.
	ErrShutdown = taskerr.ErrShutdown
	// ErrBroken is the error of every task once the pool's Init task has
	// failed for a reason of the module's own (see Config.Init); the error
	// wraps Init's failure too.
	ErrBroken = taskerr.ErrBroken
	// ErrWorkerCrashed is matched by the error of a task whose worker
	// process (Subprocess isolation) died under it: killed by a signal,
	// exited, ran out of memory, or broke the protocol. The error is a
	// *CrashError that says which. Only that task fails; the pool starts a
	// fresh worker process. A worker process the pool stops on purpose
	// (Close, a Shutdown whose context ended, a timeout it enforces) is no
	// crash.
	//
	// It belongs to the pool, not the engine: the engine runs guests and
	// knows nothing of processes, and a crash is about where the pool ran
	// the task, not about the task (the same task may well succeed on a
	// retry).
	ErrWorkerCrashed = taskerr.ErrWorkerCrashed
)

// CrashError describes a worker process that died while running a task:
// match it with errors.As. It matches ErrWorkerCrashed, and
// engine.ErrMemoryLimit too when OutOfMemory is set.
type CrashError = taskerr.CrashError
