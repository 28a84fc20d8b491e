// Package taskerr holds the errors a task can end with that the engine does
// not make: those of the executors around it (a pool, its worker processes,
// a cluster). They are defined once, here, so that the one error codec
// (package wire) knows every one of them on every wire; packages pool and
// cluster give them their public names (pool.ErrShutdown is ErrShutdown),
// and their documentation is there.
package taskerr

import (
	"errors"
	"fmt"

	"github.com/wasmpool/wasmpool/engine"
)

var (
	// ErrShutdown is pool.ErrShutdown.
	ErrShutdown = errors.New("pool is shut down")
	// ErrBroken is pool.ErrBroken.
	ErrBroken = errors.New("pool is broken")
	// ErrWorkerCrashed is pool.ErrWorkerCrashed.
	ErrWorkerCrashed = errors.New("worker process crashed")
	// ErrWorkerLost is cluster.ErrWorkerLost.
	ErrWorkerLost = errors.New("worker lost")
	// ErrUnavailable is cluster.ErrUnavailable.
	ErrUnavailable = errors.New("cluster unavailable")
	// ErrNotAllowed is cluster.ErrNotAllowed.
	ErrNotAllowed = errors.New("not allowed on this worker")
	// ErrNoWorker is cluster.ErrNoWorker. It is not among the wire codec's
	// sentinels: the submitter makes it, and no wire carries it.
	ErrNoWorker = errors.New("no worker can run the task")
)

// NoModule is the error of a task submitted without a module, to any
// executor: it matches engine.ErrBadModule.
var NoModule = fmt.Errorf("the task has no module: %w", engine.ErrBadModule)
