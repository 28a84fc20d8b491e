// Package pool runs WebAssembly tasks on a pool of workers behind a futures
// API: Python's concurrent.futures, rebuilt for Go, where every task is a
// sandbox.
//
// Submit returns a future; Map yields results in input order; the future
// package's AsCompleted and Wait collect them as they finish. A task's
// timeout or Cancel really stops it, and a trap, timeout or memory blow-up
// fails only that task's future.
//
// Two modes sit behind the one API:
//
//   - Threads: workers share one runtime and each keeps a warm instance per
//     module, reused across tasks. A task costs a function call. Like a
//     thread's globals, a guest's state may carry over from task to task; an
//     instance that saw any error is thrown away and rebuilt.
//   - Processes: each worker owns a runtime and every task gets a fresh
//     instance. A task costs an instantiation, and nothing of one task can
//     be seen by another. Commands (_start) always run this way.
//
// Both modes run in this process by default. Config.Isolation = Subprocess
// runs every worker in a worker process of its own instead, with the same
// modes inside and the same futures outside, for plugins that must not be
// able to take the host down: a worker process that dies (a signal, a Go
// runtime fatal error, the kernel's limits) fails only the task it ran,
// with ErrWorkerCrashed, and the pool starts a fresh one. A timeout or a
// cancel stops the guest inside its worker process, as it would here; the
// pool kills the worker process only when the task has not stopped within
// KillGrace (a guest stuck in a host function, or an engine with
// NoInterrupt). Tiny tasks travel to a worker process many to a frame, so
// that the round trip is paid once per batch. A program that embeds such a
// pool makes itself the worker program with one line at the top of main:
//
//	func main() {
//		pool.ServeChild() // serves as a worker process when started as one
//		...
//		p, err := pool.New(e, pool.Config{Isolation: pool.Subprocess, TaskTimeout: time.Second})
//
// (or uses the wasmpool CLI on PATH, or Config.WorkerCommand). Pool and
// worker process talk over the worker process's stdin and stdout with a
// small versioned protocol (package internal/workerproc, on the frames and
// codecs of internal/wire that the cluster shares); its stderr is kept for
// its last words, which crash errors quote.
//
// Shutdown(ctx) is graceful and Close() immediate, like net/http's Server.
//
//	p, err := pool.New(e, pool.Config{Mode: pool.Threads, Workers: 4})
//	if err != nil { ... }
//	defer p.Close()
//	f := p.Submit(ctx, engine.Task{Module: m, Func: "upper", Input: []byte("hi")})
//	res, err := f.Result(ctx)
package pool
