package engine

import "sync/atomic"

// Stats are an engine's counters of its compiled code: how often a module's
// compilation was paid for, and how often it was spared.
type Stats struct {
	// ModulesCompiled counts the modules whose code wazero compiled.
	ModulesCompiled int64
	// DiskCacheHits counts the modules whose compiled code came from
	// Config.CacheDir instead (a compilation spared across processes).
	DiskCacheHits int64
	// MemoryCacheHits counts the Compile calls answered with a module this
	// engine had compiled already, from the same bytes.
	MemoryCacheHits int64
}

type counters struct {
	compiled, diskHits, memoryHits atomic.Int64
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{ModulesCompiled: c.compiled.Load(), DiskCacheHits: c.diskHits.Load(), MemoryCacheHits: c.memoryHits.Load()}
}

// compiledNew counts the outcome of a compilation of new bytes: hit says
// its code came from the disk cache.
func (c *counters) compiledNew(hit bool, err error) {
	switch {
	case err != nil:
	case hit:
		c.diskHits.Add(1)
	default:
		c.compiled.Add(1)
	}
}

// reused counts a Compile answered from the engine's own modules.
func (c *counters) reused(err error) {
	if err == nil {
		c.memoryHits.Add(1)
	}
}
