// Package future is a generic future and promise, with the helpers that make
// a set of them easy to consume: AsCompleted and Wait. It is Python's
// concurrent.futures.Future for Go, and knows nothing about WebAssembly; the
// pool package hands out Future[engine.Result] values built on it.
//
// A producer creates a pair with New, keeps the Promise and hands out the
// Future. The first outcome wins: Resolve after Cancel (or after another
// Resolve) changes nothing and returns false. Waiting never confuses the
// task's own error with the wait's: Result returns a task's error as a
// *Failure, and the bare ctx.Err() when the caller stopped waiting.
//
//	f, p := future.New[int]()
//	go func() {
//		if p.Start() { // false if cancelled before it started
//			p.Resolve(42, nil)
//		}
//	}()
//	v, err := f.Result(ctx)
package future
