// Package executortest holds the differential suite of wasmpool's
// executors, and nothing else: its tests run one corpus (every kind of
// shipped module, the hostile ones included, every error class, every
// field of engine.Task, cancels, Shutdown and Close in flight) through
// every executor behind pool.Executor (a pool in both modes, in this
// process and with worker processes, an embedded.Node, and a
// cluster.Executor with a worker in another process), and require the same
// Result bytes and errors of the same identity from each: errors.Is for
// every sentinel of the one error codec, errors.As for every error type
// and its fields. What an executor cannot carry (a command's streams to
// another process) it must refuse with errors.ErrUnsupported.
package executortest
