package engine

import (
	"container/list"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Module is a compiled WebAssembly module, ready to instantiate. Modules are
// content-addressed: compiling the same bytes again returns the same *Module,
// so comparing two is comparing content. A Module belongs to the Engine that
// compiled it. The engine keeps a bounded number of modules compiled (see
// Config.MaxModules): one evicted stays valid, and is compiled again when a
// task needs it. Close releases one for good.
type Module struct {
	e    *Engine
	name string
	key  moduleKey
	info *moduleInfo // shared with its twins (same bytes, other name)

	compileTime time.Duration
	cacheHit    bool

	lastUsed atomic.Int64 // UnixNano of its last use: see touchUse
	closed   atomic.Bool
	resident atomic.Bool // elem != nil, for Instance.Stale

	// Under e.mu.
	claims   int           // Compiles that returned it, less Closes
	code     *code         // what it runs while resident, else nil
	elem     *list.Element // its place in e.lru while resident
	listedAt int64         // lastUsed when it was last put at the front
	loading  chan struct{} // a compile again in progress: closed when it ends
}

// facts is what the module's bytes declare; for the zero Module, nothing.
func (m *Module) facts() *moduleInfo {
	if m.info == nil {
		return &noInfo
	}
	return m.info
}

var noInfo moduleInfo

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
func (m *Module) Digest() string { return m.facts().digest }

// Exports lists the exported functions with their signatures, sorted by name.
func (m *Module) Exports() []Export { return append([]Export(nil), m.facts().exports...) }

// Imports lists what the module imports from the host.
func (m *Module) Imports() []Import { return append([]Import(nil), m.facts().imports...) }

// IsCommand reports whether the module is a WASI command (it exports _start):
// run it with an empty Task.Func.
func (m *Module) IsCommand() bool { return m.facts().command }

// Bytes returns the module's WebAssembly bytes, as compiled. The slice is
// the module's own, not a copy: it must be treated as read-only (changing it
// would make Digest lie). It is what a caller needs to ship the module
// elsewhere, to another process or host, which compiles the same bytes.
func (m *Module) Bytes() []byte { return m.facts().wasm }

// Size is the length of the module's bytes.
func (m *Module) Size() int { return len(m.facts().wasm) }

// WriteTo writes the module's WebAssembly bytes to w: how a pool hands a
// module to a worker process without copying it.
func (m *Module) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(m.facts().wasm)
	return int64(n), err
}

// MemoryMinBytes is the smallest linear memory the module declares.
func (m *Module) MemoryMinBytes() uint64 { return m.facts().memMin * wasmPageSize }

// CompileTime is how long compiling took, and CacheHit whether the compiled
// code came from the on-disk cache.
func (m *Module) CompileTime() time.Duration { return m.compileTime }

// CacheHit reports whether the compiled code was read from Config.CacheDir.
func (m *Module) CacheHit() bool { return m.cacheHit }

func (m *Module) export(name string) (Export, bool) {
	for _, x := range m.facts().exports {
		if x.Name == name {
			return x, true
		}
	}
	return Export{}, false
}

// exportNames lists the callable exports for an error message.
func (m *Module) exportNames() string {
	var names []string
	for _, x := range m.facts().exports {
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
