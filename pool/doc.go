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
// Shutdown(ctx) is graceful and Close() immediate, like net/http's Server.
//
//	p, err := pool.New(e, pool.Config{Mode: pool.Threads, Workers: 4})
//	if err != nil { ... }
//	defer p.Close()
//	f := p.Submit(ctx, engine.Task{Module: m, Func: "upper", Input: []byte("hi")})
//	res, err := f.Result(ctx)
package pool
