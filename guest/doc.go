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
// A task reaches the host only through the capabilities its task is
// granted: Call calls a host function over bytes by capability and name,
// and HTTP makes HTTP requests through the host's "http" capability, to the
// hosts the task is allowed:
//
//	v, err := guest.Call("kv", "get", []byte("key"))
//	if errors.Is(err, guest.ErrNotGranted) { ... } // the task was not granted "kv"
//	resp, err := guest.HTTP.Get("https://api.example.com/items")
//
// The ABI behind them is three more imports of the "wasmpool" module:
// capability_call(name_ptr, name_len, fn_ptr, fn_len, in_ptr, in_len) ->
// status (0 ok, 1 the host function's error, 2 not granted, 3 no such
// function), then capability_result_size() -> len and
// capability_result_read(ptr, len) -> n for the output, or the message of
// any other status.
//
// time.Sleep and other blocking waits work inside a task (the runtime idles
// in WASI poll_oneoff), but only as well as the host's clocks: with wazero's
// default fake clocks a sleep returns at once.
//
// The API is only available when building for GOOS=wasip1; on other
// platforms the package holds this documentation and nothing else.
package guest
