package testmod_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

var wasmMagic = []byte("\x00asm")

func TestPathBuildsOnceAndCaches(t *testing.T) {
	p := testmod.Path(t, "upper")
	assert.Equal(t, "upper.wasm", filepath.Base(p))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(b, wasmMagic), "a wasm binary")

	assert.Equal(t, p, testmod.Path(t, "upper"))
	// Memoized: a second call hashes no source and runs no build, which
	// would take hundreds of allocations; a map lookup takes a few.
	allocs := testing.AllocsPerRun(10, func() { testmod.Path(t, "upper") })
	assert.Less(t, allocs, 10.0, "the second call is memoized")
	assert.Equal(t, b, testmod.Bytes(t, "upper"))
}

func TestBuildUnknownModule(t *testing.T) {
	_, err := testmod.Build("no-such-module")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-such-module")
	_, err = testmod.Build("../upper")
	require.Error(t, err)
}

func TestNames(t *testing.T) {
	names, err := testmod.Names()
	require.NoError(t, err)
	assert.Contains(t, names, "upper")
	assert.Contains(t, names, "wasicmd")
}

func TestRoot(t *testing.T) {
	root, err := testmod.Root()
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(root, "go.mod"))
	assert.DirExists(t, filepath.Join(root, "modules", "go"))
}

func TestCommittedModules(t *testing.T) {
	p := testmod.WAT(t, "add")
	assert.Equal(t, "add.wasm", filepath.Base(p))
	assert.True(t, bytes.HasPrefix(testmod.WATBytes(t, "add"), wasmMagic), "a wasm binary")
}

func TestWazeroCLI(t *testing.T) {
	p := testmod.WazeroCLI(t)
	out, err := testmod.WazeroCommand(t, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "1.12", "the wazero of go.mod")
	assert.Equal(t, p, testmod.WazeroCLI(t), "built once")
}
