package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// TestEngineStatsCountCompilesAndCacheHits: a compilation is counted once,
// as paid for or as spared by the disk cache, and a Compile of bytes the
// engine already has (under any name) is a memory hit; a failed one is
// neither.
func TestEngineStatsCountCompilesAndCacheHits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	echo := testmod.WATBytes(t, "echo")

	e := newEngine(t, engine.Config{CacheDir: dir})
	_, err := e.Compile(ctx, echo)
	require.NoError(t, err)
	assert.Equal(t, engine.Stats{ModulesCompiled: 1}, e.Stats())
	_, err = e.Compile(ctx, echo)
	require.NoError(t, err)
	_, err = e.CompileNamed(ctx, "echo-again.wasm", echo)
	require.NoError(t, err)
	_, err = e.Compile(ctx, []byte("not wasm"))
	require.ErrorIs(t, err, engine.ErrBadModule)
	assert.Equal(t, engine.Stats{ModulesCompiled: 1, MemoryCacheHits: 2}, e.Stats())

	// Another engine on the same directory finds the compiled code there.
	e2 := newEngine(t, engine.Config{CacheDir: dir})
	m, err := e2.Compile(ctx, echo)
	require.NoError(t, err)
	require.True(t, m.CacheHit())
	assert.Equal(t, engine.Stats{DiskCacheHits: 1}, e2.Stats())
}
