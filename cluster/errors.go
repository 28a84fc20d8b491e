package cluster

import "github.com/wasmpool/wasmpool/internal/taskerr"

// The cluster's errors are defined in internal/taskerr, where the one error
// codec of every wire knows them; these are their public names.
var (
	// ErrWorkerLost is the error of a task whose workers died (or went
	// silent past the ack deadline) before finishing it as many times as the
	// task allows deliveries: a task that kills every worker that runs it, or
	// an at-most-once task whose worker died after beginning it. A worker that hands a
	// task back on purpose (it is shutting down) does not count.
	ErrWorkerLost = taskerr.ErrWorkerLost
	// ErrUnavailable means the broker could not be reached, or refused the
	// task, for longer than the executor's PublishTimeout: the cluster, not
	// the task, failed, and nothing timed out (the CLI's error kind
	// "unavailable", exit status 75). Its error wraps the broker's last
	// word.
	ErrUnavailable = taskerr.ErrUnavailable
	// ErrNotAllowed is the error of a task asking a worker for something its
	// configuration forbids, such as mounting a directory of the worker's
	// host when the worker was not started with AllowMounts.
	ErrNotAllowed = taskerr.ErrNotAllowed
	// ErrNoWorker is the error of a task that requires what no live worker
	// has (a label, a capability it grants, mounts, memory: Requirements)
	// for longer than the executor's RouteWait. Its message names what is
	// missing and the workers that were live (the CLI's error kind
	// "no_worker", exit status 69).
	ErrNoWorker = taskerr.ErrNoWorker
)
