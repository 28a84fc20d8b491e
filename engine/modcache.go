package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
)

// The engine's module cache. A process that runs for weeks (an embedder, a
// cluster worker) may be given any number of distinct modules, so what the
// engine keeps of them is bounded (Config.MaxModules, MaxModuleBytes), the
// least recently used going first.
//
// A *Module is a handle: its bytes and what they declare. What it costs is
// its code: the compiled variants (in the shared runtime and in each
// isolated runtime that ran it) and the memory templates. A resident module
// holds its code; so does every live instance of it. Eviction makes a
// module not resident; its code is released when no instance holds it any
// more, and the module, used again, is compiled again. Close is eviction
// for good: the module refuses new tasks.

// moduleInfo is what a module's bytes declare, the same for twins (the same
// bytes under other names): immutable once compiled.
type moduleInfo struct {
	digest string
	wasm   []byte // the bytes as given: what Digest, Size and Bytes describe
	base   []byte // wasm checked and rewritten (see compileNew), before instrumentation
	// preGlobals is the export names of the mutable globals, for a module
	// that can be pre-initialised (Config.Preinitialize); nil otherwise.
	preGlobals []string

	exports    []Export
	imports    []Import
	command    bool // exports _start
	initialize bool // exports _initialize (a reactor)
	memMin     uint64
}

// code is a module's compiled form, shared by twins.
type code struct {
	info *moduleInfo
	// plain is the code tasks without a fuel budget run: instrumented with
	// the interruption checks unless Config.NoInterrupt. metered, the same
	// with the fuel counter too, is compiled when a task first needs it.
	plain   variant
	metered lazyVariant
	preinit *preinit // nil unless pre-initialised

	// Under Engine.mu. The code is released when resident and users are
	// both zero.
	resident int   // resident modules that hold it
	users    int   // live instances
	bytes    int64 // as MaxModuleBytes counts them
	freed    bool

	rtMu sync.Mutex
	rts  map[*Runtime]struct{} // isolated runtimes holding a compiled copy of a variant
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
// fuel budget, compiled on first use. The caller holds the code (a user).
func (c *code) variantFor(ctx context.Context, e *Engine, fuel bool) (*variant, error) {
	if !fuel {
		return &c.plain, nil
	}
	l := &c.metered
	l.mu.Lock()
	if l.v != nil {
		defer l.mu.Unlock()
		return l.v, nil
	}
	// A failure is not kept: it may be the caller's context ending.
	v, err := e.compileVariant(ctx, c.info.base, true)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	l.v = &v
	l.mu.Unlock()
	e.addBytes(c, int64(len(v.code)))
	return &v, nil
}

// ModuleStats describes the engine's module cache.
type ModuleStats struct {
	// Modules is how many are resident (at most Config.MaxModules), and
	// Bytes what they hold as Config.MaxModuleBytes counts it.
	Modules int
	Bytes   int64
	// Codes is how many compiled forms are alive: the resident modules',
	// and those of evicted or closed modules that instances still hold.
	Codes int
	// CompiledModules is how many wazero compiled modules the engine holds
	// open: each compiled variant, in the shared runtime and in each
	// isolated one that ran it.
	CompiledModules int64
	// Compiles counts compilations: a module's first, and each of a module
	// used again after its eviction. Twins and cache hits do not count.
	Compiles uint64
	// Evictions counts modules evicted to stay within the bounds, Closes
	// those closed by Module.Close.
	Evictions uint64
	Closes    uint64
}

// ModuleStats returns the module cache's figures now.
func (e *Engine) ModuleStats() ModuleStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return ModuleStats{
		Modules: e.lru.Len(), Bytes: e.residentBytes, Codes: e.liveCodes,
		CompiledModules: e.openCompiled.Load(),
		Compiles:        e.nCompiles, Evictions: e.nEvictions, Closes: e.nCloses,
	}
}

// ModulesDropped counts the modules that have left the cache, evicted or
// closed. It is cheap: something that keeps instances (a pool's worker)
// compares it with the figure it last saw, and on a change closes those
// that are Stale, letting the engine release their code.
func (e *Engine) ModulesDropped() uint64 { return e.dropped.Load() }

// Close closes the module: it refuses new tasks (they fail with
// ErrModuleClosed), and its compiled code is released at once if no
// instance of it is left, else when the last one is closed (a task running
// finishes). Compiling the same bytes again afterwards makes a new Module.
//
// Compile returns the same *Module for the same bytes and name, to every
// caller: each Compile that returned it counts, and each Close undoes one,
// so that one holder closing its module does not close another's. The
// module closes when every Compile of it has been undone; call Close once
// per Compile, or never (the cache's bounds release an unused module
// anyway). Closing a module closed already does nothing.
func (m *Module) Close(ctx context.Context) error {
	e := m.e
	if e == nil {
		return nil // the zero Module
	}
	e.mu.Lock()
	if m.claims == 0 {
		e.mu.Unlock()
		return nil
	}
	m.claims--
	if m.claims > 0 {
		e.mu.Unlock()
		return nil
	}
	m.closed.Store(true)
	var free *code
	if m.elem != nil {
		free = e.dropLocked(m)
	}
	e.nCloses++
	e.dropped.Add(1)
	e.mu.Unlock()
	if free != nil {
		return e.freeCode(ctx, free)
	}
	return nil
}

// Closed reports whether the module was closed.
func (m *Module) Closed() bool { return m.closed.Load() }

func (m *Module) closedError() error {
	return &Error{Module: m.name, Err: withDetail(ErrModuleClosed, nil, "the module was closed (Module.Close): compile it again to run it")}
}

// acquire returns the module's code for a new instance, which must give it
// back (release) when it is closed. A module evicted meanwhile is compiled
// again, unless a twin's or an instance's code of the same bytes is still
// alive.
func (e *Engine) acquire(ctx context.Context, m *Module) (*code, error) {
	if m.e != e {
		return nil, &Error{Module: m.name, Err: withDetail(ErrBadModule, nil, "the module was not compiled by this Engine")}
	}
	for {
		e.mu.Lock()
		switch {
		case m.closed.Load():
			e.mu.Unlock()
			return nil, m.closedError()
		case e.closed:
			e.mu.Unlock()
			return nil, &Error{Module: m.name, Err: ErrClosed}
		case m.code != nil:
			c := m.code
			c.users++
			e.touchLocked(m)
			e.mu.Unlock()
			return c, nil
		case m.loading != nil:
			// Another task compiles it again: a compile ends on its own,
			// and the task's own Timeout is classified by its call.
			ch := m.loading
			e.mu.Unlock()
			<-ch
			continue
		}
		if c := e.codes[m.info.digest]; c != nil {
			c.users++
			free := e.admitLocked(m, c)
			e.mu.Unlock()
			e.freeCodes(ctx, free)
			return c, nil
		}
		ch := make(chan struct{})
		m.loading = ch
		e.mu.Unlock()

		c, err := e.compileCode(ctx, m.info)

		e.mu.Lock()
		m.loading = nil
		close(ch)
		if err == nil && (m.closed.Load() || e.closed) {
			e.mu.Unlock()
			_ = e.closeCode(ctx, c)
			continue // says why
		}
		if err != nil {
			e.mu.Unlock()
			return nil, &Error{Module: m.name, Err: err}
		}
		e.nCompiles++
		e.addCodeLocked(c)
		c.users++
		free := e.admitLocked(m, c)
		e.mu.Unlock()
		e.freeCodes(ctx, free)
		return c, nil
	}
}

// readmit makes m resident again with c, the code of an instance of it
// that runs a task: a module in use is not left out of the cache.
func (e *Engine) readmit(m *Module, c *code) {
	e.mu.Lock()
	if m.elem != nil || m.loading != nil || m.closed.Load() || e.closed || c.freed {
		e.mu.Unlock()
		return
	}
	free := e.admitLocked(m, c)
	e.mu.Unlock()
	e.freeCodes(context.Background(), free)
}

// release gives back what acquire returned.
func (e *Engine) release(ctx context.Context, c *code) {
	e.mu.Lock()
	c.users--
	free := c.users == 0 && c.resident == 0 && e.retireLocked(c)
	e.mu.Unlock()
	if free {
		_ = e.freeCode(ctx, c)
	}
}

// addCodeLocked makes a new code one that twins and re-compiles share.
func (e *Engine) addCodeLocked(c *code) {
	e.codes[c.info.digest] = c
	e.liveCodes++
}

// admitLocked makes m resident with c, then evicts what the bounds
// require: the codes it returns are to be freed once e.mu is let go.
func (e *Engine) admitLocked(m *Module, c *code) []*code {
	m.code = c
	if c.resident++; c.resident == 1 {
		e.residentBytes += c.bytes
	}
	now := time.Now().UnixNano()
	m.lastUsed.Store(now)
	m.listedAt = now
	m.elem = e.lru.PushFront(m)
	m.resident.Store(true)
	if _, ok := e.modules[m.key]; !ok {
		// Compile of the same bytes and name returns this module again
		// (closedChan: a call that has ended).
		e.modules[m.key] = &compileCall{done: closedChan, m: m}
	}
	return e.evictLocked(m)
}

// touchLocked marks m used now: the front of the list.
func (e *Engine) touchLocked(m *Module) {
	if m.elem == nil {
		return
	}
	now := time.Now().UnixNano()
	m.lastUsed.Store(now)
	m.listedAt = now
	e.lru.MoveToFront(m.elem)
}

// touchUse records a call on a warm instance of m: an atomic store rather
// than the engine's lock (warm calls of every worker would contend on it),
// and only once a millisecond (a store of every call would bounce the cache
// line between the workers calling the module). Eviction gives a module
// used since it was last put at the front a second chance.
func (m *Module) touchUse(now time.Time) {
	if t := now.UnixNano(); t-m.lastUsed.Load() >= int64(time.Millisecond) {
		m.lastUsed.Store(t)
	}
}

// overLocked reports whether the resident modules are past the bounds.
func (e *Engine) overLocked() bool {
	return e.lru.Len() > e.maxModules || (e.maxBytes > 0 && e.residentBytes > e.maxBytes && e.lru.Len() > 1)
}

// evictLocked evicts the least recently used modules while the cache is
// past its bounds, never keep (the module just admitted). A module called
// on a warm instance since it was last put at the front goes back to the
// front instead, once per pass: the list is ordered by compiles and
// instantiations, the calls are seen here (see touchUse).
func (e *Engine) evictLocked(keep *Module) []*code {
	var free []*code
	chances := e.lru.Len()
	for e.overLocked() {
		el := e.lru.Back()
		m := el.Value.(*Module)
		if m == keep {
			if e.lru.Len() == 1 {
				break
			}
			// Not a chance spent: every other module goes in front of it
			// before it is at the back again.
			e.lru.MoveToFront(el)
			continue
		}
		if chances > 0 && m.lastUsed.Load() > m.listedAt {
			chances--
			m.listedAt = m.lastUsed.Load()
			e.lru.MoveToFront(el)
			continue
		}
		if c := e.dropLocked(m); c != nil {
			free = append(free, c)
		}
		e.nEvictions++
		e.dropped.Add(1)
	}
	return free
}

// dropLocked makes m not resident; it returns its code if that is to be
// freed now (no other module nor instance holds it).
func (e *Engine) dropLocked(m *Module) *code {
	e.lru.Remove(m.elem)
	m.elem = nil
	m.resident.Store(false)
	if cc, ok := e.modules[m.key]; ok && cc.m == m {
		delete(e.modules, m.key)
	}
	c := m.code
	m.code = nil
	if c.resident--; c.resident == 0 {
		e.residentBytes -= c.bytes
		if c.users == 0 && e.retireLocked(c) {
			return c
		}
	}
	return nil
}

// retireLocked marks c freed and forgets it; false if it was already.
func (e *Engine) retireLocked(c *code) bool {
	if c.freed {
		return false
	}
	c.freed = true
	if e.codes[c.info.digest] == c {
		delete(e.codes, c.info.digest)
	}
	e.liveCodes--
	return true
}

// addBytes counts what c holds more (a metered variant, a template) and
// evicts what that puts past MaxModuleBytes.
func (e *Engine) addBytes(c *code, n int64) {
	e.mu.Lock()
	if c.freed {
		e.mu.Unlock()
		return
	}
	c.bytes += n
	var free []*code
	if c.resident > 0 {
		e.residentBytes += n
		free = e.evictLocked(nil)
	}
	e.mu.Unlock()
	e.freeCodes(context.Background(), free)
}

func (e *Engine) freeCodes(ctx context.Context, cs []*code) {
	for _, c := range cs {
		_ = e.freeCode(ctx, c)
	}
}

// freeCode releases a retired code: its compiled variants, in the shared
// runtime and in every isolated one, and its templates.
func (e *Engine) freeCode(ctx context.Context, c *code) error {
	c.rtMu.Lock()
	rts := c.rts
	c.rts = nil
	c.rtMu.Unlock()
	for rt := range rts {
		rt.forget(ctx, c)
	}
	if c.preinit != nil {
		c.preinit.drop()
	}
	return e.closeCode(ctx, c)
}

// closeCode closes c's variants in the shared runtime.
func (e *Engine) closeCode(ctx context.Context, c *code) error {
	err := e.closeCompiled(ctx, c.plain.compiled)
	c.metered.mu.Lock()
	mv := c.metered.v
	c.metered.v = nil
	c.metered.mu.Unlock()
	if mv != nil {
		err = errors.Join(err, e.closeCompiled(ctx, mv.compiled))
	}
	return err
}

// closeCompiled closes a compiled module the engine kept: wazero keeps its
// code until then, across runtimes (they share one compilation cache).
func (e *Engine) closeCompiled(ctx context.Context, cm wazero.CompiledModule) error {
	if cm == nil {
		return nil
	}
	e.openCompiled.Add(-1)
	if err := cm.Close(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("engine: releasing compiled code: %w", err)
	}
	return nil
}
