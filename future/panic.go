package future

import (
	"log"
	"runtime/debug"
	"sync/atomic"
)

// PanicHandler receives a value recovered from a panicking OnDone callback
// and the stack where it panicked.
type PanicHandler func(value any, stack []byte)

var panicHandler atomic.Pointer[PanicHandler]

// SetPanicHandler sets what is done with a panic recovered from an OnDone
// callback and returns the previous handler. The default logs it with the
// standard log package. A callback's panic is a bug in the callback; it is
// reported rather than re-raised because re-raising would crash the worker
// that happened to complete the future, and with it every other task.
func SetPanicHandler(h PanicHandler) PanicHandler {
	var old *PanicHandler
	if h == nil {
		old = panicHandler.Swap(nil)
	} else {
		old = panicHandler.Swap(&h)
	}
	if old == nil {
		return nil
	}
	return *old
}

func reportPanic(v any) {
	stack := debug.Stack()
	if h := panicHandler.Load(); h != nil {
		// A panicking handler must not escape either.
		defer func() { _ = recover() }()
		(*h)(v, stack)
		return
	}
	log.Printf("future: an OnDone callback panicked: %v\n%s", v, stack)
}
