package engine

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero"
)

// wazeroInitMu serialises the wazero calls that may be the first of the
// process to read wazero's own version: it is kept in an unsynchronised
// global, filled from the binary's build information on the first call, so
// two engines (or a file cache and a runtime) created at once race on it.
// Once it is filled, it is only ever read. Neither call is on a task's path:
// engines, caches and runtimes are made once, tasks run many times.
var wazeroInitMu sync.Mutex

// newFileCache is wazero.NewCompilationCacheWithDir, serialised.
func newFileCache(dir string) (wazero.CompilationCache, error) {
	wazeroInitMu.Lock()
	defer wazeroInitMu.Unlock()
	return wazero.NewCompilationCacheWithDir(dir)
}

// newWazeroRuntime is wazero.NewRuntimeWithConfig, serialised: the first
// runtime of a compilation cache sets up the compiler, which reads the
// version too.
func newWazeroRuntime(ctx context.Context, rc wazero.RuntimeConfig) wazero.Runtime {
	wazeroInitMu.Lock()
	defer wazeroInitMu.Unlock()
	return wazero.NewRuntimeWithConfig(ctx, rc)
}
