package engine

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Module is a compiled WebAssembly module, ready to instantiate. Modules are
// content-addressed: compiling the same bytes again returns the same *Module,
// so holding on to one costs nothing and comparing two is comparing content.
// A Module belongs to the Engine that compiled it and lives as long as it.
type Module struct {
	e       *Engine
	name    string
	digest  string
	wasm    []byte   // the bytes as given: what Digest, Size and Bytes describe
	base    []byte   // wasm checked and rewritten (see compileNew), before instrumentation
	preinit *preinit // nil unless pre-initialised (Config.Preinitialize)

	// plain is the code tasks without a fuel budget run: instrumented with
	// the interruption checks unless Config.NoInterrupt. metered, the same
	// with the fuel counter too, is compiled when a task first needs it.
	plain   variant
	metered *lazyVariant // shared with the module's twins (same bytes, other name)

	exports    []Export
	imports    []Import
	command    bool // exports _start
	initialize bool // exports _initialize (a reactor)
	memMin     uint64

	compileTime time.Duration
	cacheHit    bool
}

// variant is one compiled form of a module.
type variant struct {
	code     []byte                // what is compiled
	compiled wazero.CompiledModule // in the engine's shared runtime
	fuel     bool                  // counts fuel
	trace    *traceMap             // nil for code compiled as given
}

type lazyVariant struct {
	mu sync.Mutex
	v  *variant
}

// variantFor returns the code a task runs: the metered one for a task with a
// fuel budget, compiled on first use.
func (m *Module) variantFor(ctx context.Context, fuel bool) (*variant, error) {
	if !fuel {
		return &m.plain, nil
	}
	l := m.metered
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.v == nil {
		// A failure is not kept: it may be the caller's context ending.
		v, err := m.e.compileVariant(ctx, m.base, true)
		if err != nil {
			return nil, err
		}
		l.v = &v
	}
	return l.v, nil
}

// Export is an exported function and its signature.
type Export struct {
	Name    string
	Params  []api.ValueType
	Results []api.ValueType
}

// Import is a function or memory the module needs from the host.
type Import struct {
	Module, Name string
	Kind         string // "func" or "memory"
	Params       []api.ValueType
	Results      []api.ValueType
}

// IsTask reports whether the export has the task signature () -> i32 of the
// wasmpool ABI: called with no Params, it is run as an SDK task.
func (x Export) IsTask() bool {
	return len(x.Params) == 0 && len(x.Results) == 1 && x.Results[0] == api.ValueTypeI32
}

// Signature renders the export's type the way the WebAssembly text format
// would, e.g. "(i32, i32) -> i32".
func (x Export) Signature() string { return signature(x.Params, x.Results) }

// Signature renders a function import's type; empty for a memory.
func (x Import) Signature() string {
	if x.Kind != "func" {
		return ""
	}
	return signature(x.Params, x.Results)
}

func signature(params, results []api.ValueType) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, p := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(p))
	}
	b.WriteString(") -> ")
	switch len(results) {
	case 0:
		b.WriteString("()")
	case 1:
		b.WriteString(api.ValueTypeName(results[0]))
	default:
		b.WriteByte('(')
		for i, r := range results {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(api.ValueTypeName(r))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Name is the file's base name for a module compiled from a file, or a short
// digest for one compiled from bytes. Errors use it to say which module failed.
func (m *Module) Name() string { return m.name }

// Digest is the hex SHA-256 of the module's bytes.
func (m *Module) Digest() string { return m.digest }

// Exports lists the exported functions with their signatures, sorted by name.
func (m *Module) Exports() []Export { return append([]Export(nil), m.exports...) }

// Imports lists what the module imports from the host.
func (m *Module) Imports() []Import { return append([]Import(nil), m.imports...) }

// IsCommand reports whether the module is a WASI command (it exports _start):
// run it with an empty Task.Func.
func (m *Module) IsCommand() bool { return m.command }

// Bytes returns the module's WebAssembly bytes, as compiled. The slice is
// the module's own, not a copy: it must be treated as read-only (changing it
// would make Digest lie). It is what a caller needs to ship the module
// elsewhere, to another process or host, which compiles the same bytes.
func (m *Module) Bytes() []byte { return m.wasm }

// Size is the length of the module's bytes.
func (m *Module) Size() int { return len(m.wasm) }

// WriteTo writes the module's WebAssembly bytes to w: how a pool hands a
// module to a worker process without copying it.
func (m *Module) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(m.wasm)
	return int64(n), err
}

// MemoryMinBytes is the smallest linear memory the module declares.
func (m *Module) MemoryMinBytes() uint64 { return m.memMin * wasmPageSize }

// CompileTime is how long compiling took, and CacheHit whether the compiled
// code came from the on-disk cache.
func (m *Module) CompileTime() time.Duration { return m.compileTime }

// CacheHit reports whether the compiled code was read from Config.CacheDir.
func (m *Module) CacheHit() bool { return m.cacheHit }

func (m *Module) export(name string) (Export, bool) {
	for _, x := range m.exports {
		if x.Name == name {
			return x, true
		}
	}
	return Export{}, false
}

// exportNames lists the callable exports for an error message.
func (m *Module) exportNames() string {
	var names []string
	for _, x := range m.exports {
		if x.Name == "_start" || x.Name == "_initialize" {
			continue
		}
		names = append(names, printable(x.Name)+" "+x.Signature())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
