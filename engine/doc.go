// Package engine runs one WebAssembly task in one sandbox, on wazero.
//
// It is the layer under the pool: it compiles modules (content-addressed, with
// an optional on-disk cache shared between processes), instantiates them with
// nothing but what the task grants (no host environment, no file outside the
// task's mounts, no network), calls one function or runs one WASI command,
// enforces the task's timeout, memory limit and output limit, and turns every
// way a guest can fail into an error value to match:
//
//	errors.Is(err, engine.ErrTimeout)       // also context.DeadlineExceeded
//	errors.Is(err, engine.ErrMemoryLimit)
//	var trap *engine.TrapError; errors.As(err, &trap) // trap.Kind == engine.TrapDivideByZero...
//	var exit *engine.ExitError; errors.As(err, &exit) // a command's non-zero exit code
//
// A task module talks to the host through the wasmpool ABI (see the guest
// package for the Go SDK): an export of type () -> i32 reads its input and
// writes its output through four host functions, and calls the capabilities
// its task is granted (Capability, Task.Grants) through three more. Any other export can be
// called with raw Params, and a WASI command (one that exports _start) runs
// with its stdin, stdout, args, env and mounts; its stdio is collected into
// the Result, or streamed through Task.Stdin, Stdout and Stderr.
//
// Running one task:
//
//	e, err := engine.New(ctx, engine.Config{})
//	if err != nil { ... }
//	defer e.Close(ctx)
//	m, err := e.CompileFile(ctx, "upper.wasm")
//	if err != nil { ... }
//	res, err := e.Run(ctx, engine.Task{Module: m, Func: "upper", Input: []byte("hi"), Timeout: time.Second})
//	fmt.Printf("%s\n", res.Output) // HI
//
// Engine.Run builds a fresh instance per task. To reuse warm instances or
// run tasks in parallel, use package pool, or Runtime and Instance directly.
//
// What the engine keeps of the modules it compiles is bounded, for a
// process that runs for weeks: Config.MaxModules (and MaxModuleBytes), the
// least recently used evicted first (an evicted *Module stays valid and is
// compiled again when used), and Module.Close releases one for good, once
// no task runs it.
package engine
