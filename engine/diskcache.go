package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// cacheEntries counts the files in the on-disk cache, or -1 if it cannot. A
// compile that leaves the count unchanged read its code from the cache: the
// only signal wazero's public API gives for a hit.
func (e *Engine) cacheEntries() int {
	if e.cfg.CacheDir == "" {
		return -1
	}
	n := 0
	err := filepath.WalkDir(e.cfg.CacheDir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == instrumentedDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}

// repairCacheEntry replaces the damaged cache entry for wasm. wazero names an
// entry after a key it computes internally and, on a corrupt entry, fails the
// compile without removing it. So the module is compiled once more into a
// scratch cache inside CacheDir: the one file that appears there has the same
// name the damaged entry has, and renaming it into place is atomic, so other
// processes sharing the cache never see a half-written entry.
func (e *Engine) repairCacheEntry(ctx context.Context, wasm []byte) error {
	scratch, err := os.MkdirTemp(e.cfg.CacheDir, ".repair-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)

	cache, err := newFileCache(scratch)
	if err != nil {
		return err
	}
	r := newWazeroRuntime(ctx, runtimeConfig(e.cfg, cache))
	_, err = compileModule(ctx, r, wasm)
	_ = r.Close(ctx)
	_ = cache.Close(ctx)
	if err != nil {
		return err
	}
	moved := false
	err = filepath.WalkDir(scratch, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(scratch, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(e.cfg.CacheDir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		moved = true
		return os.Rename(path, dst)
	})
	if err == nil && !moved {
		err = errors.New("the scratch compile wrote no cache entry")
	}
	return err
}
