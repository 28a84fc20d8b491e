// Package guest is the Go guest SDK for wasmpool: the small amount of glue a
// Go program compiled to WebAssembly needs to be run as a wasmpool task.
//
// A task is an exported function with the signature () -> i32 that reads its
// input from the host, writes its output back, and returns 0 for success or
// non-zero for failure (with a message). The host side of that contract is the
// "wasmpool" import module (input_size, input_read, output_write and
// error_write); this package wraps it so that a task is one line:
//
//	//go:wasmexport upper
//	func upper() int32 { return guest.Serve(func(in []byte) ([]byte, error) { return bytes.ToUpper(in), nil }) }
//
// A module holding such exports is a WASI reactor: it needs an empty main
// function in package main and is built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o upper.wasm .
//
// The host calls the reactor's _initialize once per instance and then any
// number of tasks, so package-level state survives between tasks on a warm
// instance and is gone on a fresh one.
//
// Panics are not recovered. In a reactor (-buildmode=c-shared) the Go
// runtime treats a panic or a fatal error (such as "all goroutines are
// asleep - deadlock!") as a crash: it prints the message and the goroutine
// trace to stderr and then aborts with a WebAssembly unreachable trap whose
// innermost frame is runtime.abort, rather than exiting with status 2 as a
// command does. Either way the instance is finished. Fail, or an error
// returned to Serve, is the orderly way to fail.
//
// time.Sleep and other blocking waits work inside a task (the runtime idles
// in WASI poll_oneoff), but only as well as the host's clocks: with wazero's
// default fake clocks a sleep returns at once.
//
// The API is only available when building for GOOS=wasip1; on other
// platforms the package holds this documentation and nothing else.
package guest
