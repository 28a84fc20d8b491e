// Package wasmbin is the engine's WebAssembly binary toolkit: everything
// that reads, checks or rewrites a module's bytes before wazero compiles
// them. The engine keeps the orchestration (when to check, what to report,
// what to compile and cache); this package owns the binary format, with one
// bounds-checked reader, one section walker and one instruction decoder for
// every pass, the way wazero keeps its own decoder in internal/wasm/binary
// behind a small root package.
//
// The API is three calls:
//
//   - Check reads a module as wazero will and refuses, before wazero sees
//     them, the bytes that would make wazero allocate what they declare
//     rather than what they hold (a 20-byte module claiming four billion
//     imports), and modules over the host's limits (locals per function,
//     table elements). It returns the module's Facts: its largest memory
//     minimum, an import no host can provide, whether its tables need a
//     cap, whether its code can change anything but memory and globals.
//   - Rewrite turns checked bytes into the bytes to compile, in one copy:
//     tables capped, data segments merged (exactly: see datamerge.go), and
//     with RewriteOptions.Preinitialize the mutable globals exported for the
//     engine's pre-initialisation templates.
//   - Instrument compiles into a module's code the checks that let the host
//     stop a guest and meter its fuel (see instrument.go). It is called on
//     Rewrite's output.
//
// Errors are values: a *LimitError is a module over a limit (its Memory
// field says whether the limit is on host memory), a *ShortError one whose
// bytes end before what they declare, ErrNotInstrumentable one whose code
// Instrument cannot rewrite; any other error says why the bytes are not a
// module wazero could accept.
//
// The package is internal: it is the engine's, and its API changes with it.
//
// An example, as the engine compiles a module:
//
//	facts, err := wasmbin.Check(wasm)
//	var le *wasmbin.LimitError
//	switch {
//	case errors.As(err, &le) && le.Memory:
//		return fmt.Errorf("%w: %v", ErrMemoryLimit, err)
//	case err != nil:
//		return fmt.Errorf("%w: %v", ErrBadModule, err)
//	case facts.MemoryMinPages*65536 > memoryLimit:
//		return ErrMemoryLimit
//	}
//	rw, err := wasmbin.Rewrite(wasm, facts, wasmbin.RewriteOptions{Preinitialize: true})
//	if err != nil {
//		return err
//	}
//	code := rw.Wasm // what wazero compiles; rw.GlobalExports name the globals
//	                // a template saves, when rw.Preinitializable
package wasmbin
