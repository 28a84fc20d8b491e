package engine

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmpool/wasmpool/internal/wasmbin"
)

// Engine compiles modules and runs tasks, each in its own sandbox. It is safe
// for concurrent use. One Engine per process is the intended use: compiled
// code is shared by every runtime it creates, and kept within the bounds of
// Config.MaxModules and MaxModuleBytes (see modcache.go).
type Engine struct {
	cfg        Config
	memLimit   uint64
	outLimit   int
	maxModules int
	maxBytes   int64
	cache      wazero.CompilationCache
	rtConfig   wazero.RuntimeConfig
	base       wazero.ModuleConfig // see newBaseConfig
	shared     *Runtime
	caps       map[string]Capability

	dropped      atomic.Uint64 // see ModulesDropped
	openCompiled atomic.Int64  // see ModuleStats.CompiledModules

	mu       sync.Mutex
	modules  map[moduleKey]*compileCall // resident modules, and those compiling
	lru      list.List                  // of the resident *Module, most recently used first
	codes    map[string]*code           // alive, by digest: what twins and compiles again share
	runtimes map[*Runtime]struct{}
	closed   bool
	stats    counters // see Stats

	residentBytes                  int64
	liveCodes                      int
	nCompiles, nEvictions, nCloses uint64
}

// moduleKey makes compiling content-addressed: the same bytes under the same
// name are the same *Module, as long as it is resident. Compile uses an empty
// name, so the same bytes given twice to Compile return the same pointer.
type moduleKey struct{ digest, name string }

// compileCall lets concurrent compiles of the same bytes share one result.
// Only a success stays in Engine.modules.
type compileCall struct {
	done chan struct{}
	m    *Module
	err  error
}

// New creates an Engine. Close it to release compiled code and runtimes.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.MemoryLimitBytes > maxWasmPages*wasmPageSize {
		return nil, fmt.Errorf("engine: MemoryLimitBytes %d is over the 4 GiB a 32-bit guest can address", cfg.MemoryLimitBytes)
	}
	if cfg.MaxModules < 0 || cfg.MaxModuleBytes < 0 {
		return nil, fmt.Errorf("engine: MaxModules (%d) and MaxModuleBytes (%d) cannot be negative", cfg.MaxModules, cfg.MaxModuleBytes)
	}
	for i, h := range cfg.HostModules {
		if h.Name == "" || h.Define == nil {
			return nil, fmt.Errorf("engine: HostModules[%d] needs a Name and a Define function", i)
		}
		if h.Name == ABIModule || h.Name == wasiModule {
			return nil, fmt.Errorf("engine: HostModules[%d]: the name %q is reserved", i, h.Name)
		}
	}
	caps, err := buildCapabilities(cfg)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		caps:       caps,
		cfg:        cfg,
		memLimit:   cfg.memoryLimit(),
		outLimit:   cfg.outputLimit(),
		maxModules: cfg.maxModules(),
		maxBytes:   cfg.MaxModuleBytes,
		modules:    map[moduleKey]*compileCall{},
		codes:      map[string]*code{},
		runtimes:   map[*Runtime]struct{}{},
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("engine: cache directory: %w", err)
		}
		e.cache, err = newFileCache(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("engine: cache directory: %w", err)
		}
	} else {
		e.cache = wazero.NewCompilationCache()
	}
	e.rtConfig = runtimeConfig(cfg, e.cache)
	e.base = newBaseConfig(cfg)
	e.shared, err = e.newRuntime(ctx)
	if err != nil {
		_ = e.cache.Close(ctx)
		return nil, err
	}
	return e, nil
}

func runtimeConfig(cfg Config, cache wazero.CompilationCache) wazero.RuntimeConfig {
	rc := wazero.NewRuntimeConfig()
	if cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	return rc.
		// Never wazero's close-on-context-done: it leaves native code at
		// every loop back-edge (several times slower on real loops) and
		// checks nothing at function entries. The engine's instrumentation
		// stops guests instead (interrupt.go).
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(maxWasmPages).
		WithCompilationCache(cache)
}

// Config returns the configuration the engine was created with.
func (e *Engine) Config() Config { return e.cfg }

// MemoryLimit is the per-instance memory cap in bytes, after defaults and
// rounding.
func (e *Engine) MemoryLimit() uint64 { return e.memLimit }

// OutputLimit is the cap on a task's output and on its stderr, in bytes,
// after defaults.
func (e *Engine) OutputLimit() int { return e.outLimit }

// Compile compiles wasm, or returns the *Module already compiled from the same
// bytes. The module's Name is a short digest. Errors match ErrBadModule (or
// ErrMemoryLimit for a module whose declared minimum memory is over the
// limit, or whose tables' declared minima are over 10,000,000 elements).
// Hostile bytes cost no more than their size: see wasmbin.Check.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	return e.compile(ctx, wasm, "", false)
}

// CompileNamed is Compile for bytes that have a name of their own (the base
// name of the file they came from, say): errors and a command's argv[0] use
// it instead of a digest. A worker process uses it to give a module the name
// it has in the pool that sent it.
func (e *Engine) CompileNamed(ctx context.Context, name string, wasm []byte) (*Module, error) {
	return e.compile(ctx, wasm, name, false)
}

// CompileFile reads and compiles the module at path; its Name is the file's
// base name.
func (e *Engine) CompileFile(ctx context.Context, path string) (*Module, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Module: filepath.Base(path), Err: withDetail(ErrBadModule, err, "cannot read the module: %v", unwrapPathError(err))}
	}
	return e.compile(ctx, wasm, filepath.Base(path), true)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// compile compiles wasm under name; owned says the engine may keep the
// slice as it is (nobody else holds it).
func (e *Engine) compile(ctx context.Context, wasm []byte, name string, owned bool) (*Module, error) {
	sum := sha256.Sum256(wasm)
	digest := hex.EncodeToString(sum[:])
	key := moduleKey{digest: digest, name: name}
	if name == "" {
		name = digest[:12]
	}
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		c, ok := e.modules[key]
		if !ok {
			break // with e.mu held
		}
		select {
		case <-c.done:
			// Only a success stays in the map, and only while resident
			// and open (Close and eviction take it out, under e.mu).
			c.m.claims++
			e.touchLocked(c.m)
			e.mu.Unlock()
			e.stats.reused(nil)
			return c.m, nil
		default:
		}
		e.mu.Unlock()
		select {
		case <-c.done:
			if c.err != nil {
				return nil, c.err
			}
			// A success: claimed on the next turn of the loop, and
			// counted there as a reuse.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// A module of the same bytes under another name shares the compiled
	// code: a twin.
	c := &compileCall{done: make(chan struct{})}
	twin := e.codes[digest]
	if twin != nil {
		m := &Module{e: e, name: name, key: key, info: twin.info, claims: 1}
		free := e.admitLocked(m, twin)
		c.m = m
		close(c.done)
		e.mu.Unlock()
		e.freeCodes(ctx, free)
		e.stats.reused(nil)
		return m, nil
	}
	e.modules[key] = c
	e.mu.Unlock()

	info, cd, elapsed, hit, err := e.compileNew(ctx, wasm, name, digest, owned)
	e.stats.compiledNew(hit, err)
	e.mu.Lock()
	if err == nil && e.closed {
		err = ErrClosed
		_ = e.closeCode(ctx, cd)
	}
	if err != nil {
		// Failures are not cached: the next attempt compiles again, so a
		// transient failure (a cache dir briefly unreadable) is not permanent.
		delete(e.modules, key)
		c.err = err
		e.mu.Unlock()
		close(c.done)
		return nil, err
	}
	m := &Module{e: e, name: name, key: key, info: info, compileTime: elapsed, cacheHit: hit, claims: 1}
	e.nCompiles++
	e.addCodeLocked(cd)
	free := e.admitLocked(m, cd)
	c.m = m
	e.mu.Unlock()
	close(c.done)
	e.freeCodes(ctx, free)
	return m, nil
}

func (e *Engine) compileNew(ctx context.Context, wasm []byte, name, digest string, owned bool) (_ *moduleInfo, _ *code, elapsed time.Duration, cacheHit bool, _ error) {
	fail := func(err error) (*moduleInfo, *code, time.Duration, bool, error) {
		return nil, nil, 0, false, err
	}
	bad := func(cause error, format string, args ...any) (*moduleInfo, *code, time.Duration, bool, error) {
		return fail(&Error{Module: name, Err: withDetail(ErrBadModule, cause, format, args...)})
	}
	if !owned {
		// A copy: Bytes must stay true to Digest, and worker runtimes
		// compile code again later, whatever the caller does with its slice
		// meanwhile. (CompileFile's bytes are its own already.)
		wasm = slices.Clone(wasm)
	}
	// The module's own declarations are checked before wazero decodes it:
	// see wasmbin.Check for the host-crashing modules this keeps out.
	facts, err := wasmbin.Check(wasm)
	var le *wasmbin.LimitError
	switch {
	case errors.As(err, &le) && le.Memory:
		return fail(&Error{Module: name, Err: &limitError{sentinel: ErrMemoryLimit, detail: le.Error()}})
	case le != nil:
		return bad(err, "%v", le.Error())
	case err != nil:
		return bad(err, "not a valid WebAssembly module: %v", err)
	}
	minPages := facts.MemoryMinPages
	if minPages*wasmPageSize > e.memLimit {
		return fail(&Error{Module: name, Err: &limitError{sentinel: ErrMemoryLimit, detail: fmt.Sprintf(
			"the module declares a minimum memory of %s, over the limit of %s", formatBytes(minPages*wasmPageSize), formatBytes(e.memLimit))}})
	}
	if wasmbin.ImportsFrom(wasm, wasmbin.InterruptModule) {
		return bad(nil, "imports from host module %q, which is reserved for the engine's interruption checks", wasmbin.InterruptModule)
	}
	if u := facts.Unsatisfiable; u != nil {
		return bad(nil, "imports %s %s, which this host does not provide (host modules export only functions)", u.Kind, importName(u.Module, u.Name))
	}
	// What is compiled, here and in every worker runtime: the checked bytes
	// (tables capped), their data segments merged, their globals exported
	// for pre-initialisation. Digest and Bytes stay those of the input.
	cacheBefore := e.cacheEntries()
	start := time.Now()
	rw, err := wasmbin.Rewrite(wasm, facts, wasmbin.RewriteOptions{Preinitialize: e.cfg.Preinitialize})
	if err != nil {
		return bad(err, "cannot rewrite the module: %v", err)
	}
	info := &moduleInfo{digest: digest, wasm: wasm, base: rw.Wasm, memMin: minPages}
	if rw.Preinitializable {
		info.preGlobals = rw.GlobalExports
		if info.preGlobals == nil {
			info.preGlobals = []string{}
		}
	}
	plain, err := e.compileVariant(ctx, info.base, false)
	repaired := false
	var rerr *repairedError
	switch {
	case errors.As(err, &rerr):
		repaired, plain = true, rerr.v
	case err != nil && !bytes.Equal(info.base, wasm):
		// The rewrites touch only well-formed sections, so a module that
		// fails fails for another reason: report it on the user's own bytes,
		// whose offsets the message may quote.
		if werr := e.probe(ctx, wasm); werr != nil {
			return bad(werr, "not a valid WebAssembly module: %v", firstLine(werr.Error()))
		}
		fallthrough
	case err != nil:
		return fail(&Error{Module: name, Err: err})
	}
	elapsed = time.Since(start)
	// A repaired entry was compiled afresh, though it replaced a file.
	cacheHit = !repaired && e.cfg.CacheDir != "" && cacheBefore >= 0 && e.cacheEntries() == cacheBefore
	if err := e.describe(info, plain.compiled); err != nil {
		_ = e.closeCompiled(ctx, plain.compiled)
		return fail(&Error{Module: name, Err: err})
	}
	return info, e.newCode(info, plain), elapsed, cacheHit, nil
}

// newCode makes the code of a module from its plain variant.
func (e *Engine) newCode(info *moduleInfo, plain variant) *code {
	c := &code{info: info, plain: plain, bytes: int64(len(info.wasm) + len(info.base) + len(plain.code))}
	if info.preGlobals != nil {
		c.preinit = &preinit{globals: info.preGlobals, onAdd: func(n int64) { e.addBytes(c, n) }}
	}
	return c
}

// compileCode compiles a module again, after its eviction: what
// compileNew found out of it holds still.
func (e *Engine) compileCode(ctx context.Context, info *moduleInfo) (*code, error) {
	plain, err := e.compileVariant(ctx, info.base, false)
	if rerr := (*repairedError)(nil); errors.As(err, &rerr) {
		plain, err = rerr.v, nil
	}
	if err != nil {
		return nil, err
	}
	return e.newCode(info, plain), nil
}

// probe reports whether wazero compiles wasm, keeping nothing of it.
func (e *Engine) probe(ctx context.Context, wasm []byte) error {
	cm, err := compileModule(ctx, e.shared.r, wasm)
	if err == nil {
		_ = cm.Close(ctx)
	}
	return err
}

// repairedError carries a variant compiled after its damaged cache entry
// was replaced: a success, which compileNew must not count as a cache hit.
type repairedError struct{ v variant }

func (*repairedError) Error() string { return "repaired" }

// compileVariant instruments base (unless the engine runs without
// interruption checks and fuel is not wanted) and compiles it in the shared
// runtime. An error is the module's: the caller names it.
func (e *Engine) compileVariant(ctx context.Context, base []byte, fuel bool) (variant, error) {
	code := base
	var trace *traceMap
	if fuel || !e.cfg.NoInterrupt {
		var err error
		opts := wasmbin.InstrumentOptions{Fuel: fuel}
		trace = newTraceMap(base, opts)
		if code, err = e.instrument(base, opts); err != nil {
			// A module the pass cannot read is one wazero refuses too: let
			// it say why. One it can read but not rewrite (a feature the
			// engine does not enable) could not be stopped mid-call.
			if werr := e.probe(ctx, base); werr != nil {
				return variant{}, withDetail(ErrBadModule, werr, "not a valid WebAssembly module: %v", firstLine(werr.Error()))
			}
			return variant{}, withDetail(ErrBadModule, err, "%v", err)
		}
	}
	compiled, err := compileModule(ctx, e.shared.r, code)
	if err != nil && e.cfg.CacheDir != "" && strings.Contains(err.Error(), "compilationcache") {
		// A corrupt or truncated entry on disk: replace it and try once more,
		// so a damaged cache never becomes a permanent failure.
		if rerr := e.repairCacheEntry(ctx, code); rerr == nil {
			if compiled, err = compileModule(ctx, e.shared.r, code); err == nil {
				e.openCompiled.Add(1)
				return variant{}, &repairedError{variant{code: code, compiled: compiled, fuel: fuel, trace: trace}}
			}
		}
	}
	if err != nil {
		if !bytes.Equal(code, base) {
			if berr := e.probe(ctx, base); berr != nil {
				err = berr
			}
		}
		return variant{}, withDetail(ErrBadModule, err, "not a valid WebAssembly module: %v", firstLine(err.Error()))
	}
	e.openCompiled.Add(1)
	return variant{code: code, compiled: compiled, fuel: fuel, trace: trace}, nil
}

// describe fills in the module's exports and imports and refuses imports
// this host does not provide: better a clear error at compile time, naming
// the import, than an instantiation failure on every task.
func (e *Engine) describe(m *moduleInfo, compiled wazero.CompiledModule) error {
	for name, def := range compiled.ExportedFunctions() {
		m.exports = append(m.exports, Export{Name: name, Params: def.ParamTypes(), Results: def.ResultTypes()})
		switch name {
		case "_start":
			m.command = true
		case "_initialize":
			m.initialize = true
		}
	}
	slices.SortFunc(m.exports, func(a, b Export) int { return strings.Compare(a.Name, b.Name) })

	for _, def := range compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod == wasmbin.InterruptModule {
			continue // the instrumentation's own (a module's own is refused in compileNew)
		}
		m.imports = append(m.imports, Import{Module: mod, Name: name, Kind: "func", Params: def.ParamTypes(), Results: def.ResultTypes()})
		if err := e.checkImport(mod, name, def); err != nil {
			return err
		}
	}
	if mems := compiled.ImportedMemories(); len(mems) > 0 {
		mod, name, _ := mems[0].Import()
		return withDetail(ErrBadModule, nil, "imports memory %s, which this host does not provide (guests must define their own memory)", importName(mod, name))
	}
	return nil
}

func (e *Engine) checkImport(mod, name string, def api.FunctionDefinition) error {
	host := e.shared.r.Module(mod)
	if host == nil {
		return withDetail(ErrBadModule, nil, "imports %s, but host module %q is not granted to guests (granted: %s)",
			importName(mod, name), mod, e.grantedModules())
	}
	want, ok := host.ExportedFunctionDefinitions()[name]
	if !ok {
		return withDetail(ErrBadModule, nil, "imports %s, which host module %q does not provide", importName(mod, name), mod)
	}
	if !slices.Equal(want.ParamTypes(), def.ParamTypes()) || !slices.Equal(want.ResultTypes(), def.ResultTypes()) {
		return withDetail(ErrBadModule, nil, "imports %s as %s, but the host provides %s",
			importName(mod, name), signature(def.ParamTypes(), def.ResultTypes()), signature(want.ParamTypes(), want.ResultTypes()))
	}
	return nil
}

func (e *Engine) grantedModules() string {
	names := []string{ABIModule, wasiModule}
	for _, h := range e.cfg.HostModules {
		names = append(names, h.Name)
	}
	return strings.Join(names, ", ")
}

// Run runs one task in a fresh instance of the shared runtime and closes it.
// It is the simplest way to run a task; a pool reuses instances and runs
// tasks in parallel.
func (e *Engine) Run(ctx context.Context, t Task) (Result, error) {
	return e.shared.Run(ctx, t)
}

// Close releases every runtime the engine created and its compiled code.
// Tasks still running are stopped.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	runtimes := make([]*Runtime, 0, len(e.runtimes))
	for rt := range e.runtimes {
		runtimes = append(runtimes, rt)
	}
	e.mu.Unlock()
	var errs []error
	for _, rt := range runtimes {
		errs = append(errs, rt.Close(ctx))
	}
	errs = append(errs, e.cache.Close(ctx))
	return errors.Join(errs...)
}

// compileModule is wazero's CompileModule with any panic turned into an
// error: the decoder also parses a module's DWARF sections with
// debug/dwarf, and no input, however hostile, may panic the caller.
func compileModule(ctx context.Context, r wazero.Runtime, wasm []byte) (c wazero.CompiledModule, err error) {
	defer func() {
		if v := recover(); v != nil {
			c, err = nil, fmt.Errorf("wazero panicked while compiling: %v", v)
		}
	}()
	return r.CompileModule(ctx, wasm)
}

// printable returns a name from a module as it can go in a one-line
// message: as is, or quoted if it holds anything unprintable (a hostile
// module's names may hold newlines).
func printable(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		return q
	}
	return s
}

func importName(mod, name string) string { return printable(mod) + "." + printable(name) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
