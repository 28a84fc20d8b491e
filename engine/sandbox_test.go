package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// runCmd runs the wasicmd command module with args.
func runCmd(t *testing.T, e *engine.Engine, task engine.Task) (engine.Result, error) {
	t.Helper()
	task.Module = compileGo(t, e, "wasicmd")
	task.Timeout = time.Minute
	return e.Run(context.Background(), task)
}

func TestCommandStdioArgsExit(t *testing.T) {
	e := newEngine(t, engine.Config{})
	res, err := runCmd(t, e, engine.Task{Args: []string{"upper"}, Input: []byte("shout\n")})
	require.NoError(t, err)
	assert.Equal(t, "SHOUT\n", string(res.Output))
	assert.Equal(t, uint32(0), res.ExitCode)

	res, err = runCmd(t, e, engine.Task{Args: []string{"args", "a b", "c"}})
	require.NoError(t, err)
	assert.Equal(t, "args\na b\nc\n", string(res.Output))

	res, err = runCmd(t, e, engine.Task{Args: []string{"exit", "7"}})
	var exit *engine.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, uint32(7), exit.Code)
	assert.Equal(t, uint32(7), res.ExitCode)

	res, err = runCmd(t, e, engine.Task{Args: []string{"stderr", "oops"}})
	require.NoError(t, err)
	assert.Equal(t, "oops", strings.TrimSpace(string(res.Stderr)))
}

func TestEnvironmentIsExactlyWhatWasGiven(t *testing.T) {
	t.Setenv("WASMPOOL_HOST_SECRET", "do-not-leak")
	e := newEngine(t, engine.Config{})
	res, err := runCmd(t, e, engine.Task{Args: []string{"env"}, Env: map[string]string{"B": "2", "A": "1"}})
	require.NoError(t, err)
	assert.Equal(t, "A=1\nB=2\n", string(res.Output))

	res, err = runCmd(t, e, engine.Task{Args: []string{"env"}})
	require.NoError(t, err)
	assert.Empty(t, string(res.Output))

	// Exports see the same: the Go hostile module prints its environment.
	m := compileGo(t, e, "hostile")
	res, err = e.Run(context.Background(), engine.Task{Module: m, Func: "printenv", Env: map[string]string{"ONLY": "me"}})
	require.NoError(t, err)
	assert.Equal(t, "ONLY=me", strings.TrimSpace(string(res.Output)))
}

func TestNoFileWithoutAMount(t *testing.T) {
	e := newEngine(t, engine.Config{})
	for _, path := range []string{"/etc/passwd", "../go.mod", "go.mod", "/"} {
		t.Run(path, func(t *testing.T) {
			_, err := runCmd(t, e, engine.Task{Args: []string{"cat", path}})
			var exit *engine.ExitError
			require.ErrorAs(t, err, &exit, "reading %s without a mount must fail", path)
		})
	}
}

func TestMounts(t *testing.T) {
	e := newEngine(t, engine.Config{})
	rw, ro, outside := t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ro, "in.txt"), []byte("read me"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644))
	mounts := []engine.Mount{{HostPath: rw, GuestPath: "/out"}, {HostPath: ro, GuestPath: "/in", ReadOnly: true}}

	res, err := runCmd(t, e, engine.Task{Args: []string{"cat", "/in/in.txt"}, Mounts: mounts})
	require.NoError(t, err)
	assert.Equal(t, "read me", string(res.Output))

	_, err = runCmd(t, e, engine.Task{Args: []string{"write", "/out/new.txt", "written"}, Mounts: mounts})
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(rw, "new.txt"))
	require.NoError(t, err)
	assert.Equal(t, "written", string(got))

	for _, args := range [][]string{
		{"write", "/in/new.txt", "x"},
		{"write", "/in/in.txt", "x"},
		{"rm", "/in/in.txt"},
		{"mv", "/in/in.txt", "/in/moved.txt"},
		{"mkdir", "/in/dir"},
	} {
		_, err = runCmd(t, e, engine.Task{Args: args, Mounts: mounts})
		var exit *engine.ExitError
		require.ErrorAs(t, err, &exit, "a read-only mount must refuse %v", args)
	}
	got, err = os.ReadFile(filepath.Join(ro, "in.txt"))
	require.NoError(t, err)
	assert.Equal(t, "read me", string(got), "the read-only file is untouched")
	entries, err := os.ReadDir(ro)
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	rel, err := filepath.Rel(rw, filepath.Join(outside, "secret.txt"))
	require.NoError(t, err)
	for _, path := range []string{"/out/../" + rel, "/out/" + rel, "/etc/passwd"} {
		res, err = runCmd(t, e, engine.Task{Args: []string{"cat", path}, Mounts: mounts})
		require.Error(t, err, "reading %s must fail", path)
		assert.NotContains(t, string(res.Output), "secret")
	}

	_, err = runCmd(t, e, engine.Task{Args: []string{"ls", "/"}, Mounts: []engine.Mount{{HostPath: filepath.Join(rw, "nope"), GuestPath: "/x"}}})
	require.ErrorIs(t, err, engine.ErrBadModule)
	assert.Contains(t, err.Error(), "nope")
}

// TestOtherToolchainCommand runs the same WASI command built by C/wasi-libc,
// Rust and AssemblyScript (cmd/wasmpool's differential test compares them
// with wazero's CLI case by case).
func TestOtherToolchainCommand(t *testing.T) {
	e := newEngine(t, engine.Config{})
	ctx := context.Background()
	for toolchain, path := range map[string]string{
		"c":              testmod.C(t, "wasicat"),
		"rust":           testmod.Rust(t, "wasicat"),
		"assemblyscript": testmod.AssemblyScript(t, "wasicat"),
	} {
		t.Run(toolchain, func(t *testing.T) {
			m, err := e.CompileFile(ctx, path)
			require.NoError(t, err)
			require.True(t, m.IsCommand())

			res, err := e.Run(ctx, engine.Task{Module: m, Input: []byte("from stdin")})
			require.NoError(t, err)
			assert.Equal(t, "from stdin", string(res.Output))

			res, err = e.Run(ctx, engine.Task{Module: m, Args: []string{"-a", "x y"}})
			require.NoError(t, err)
			assert.Equal(t, "wasicat.wasm\nx y\n", string(res.Output), "argv[0] is the module's file name")

			res, err = e.Run(ctx, engine.Task{Module: m, Args: []string{"-e", "K"}, Env: map[string]string{"K": "v"}})
			require.NoError(t, err)
			assert.Equal(t, "v\n", string(res.Output))

			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("file body"), 0o644))
			ro := []engine.Mount{{HostPath: dir, GuestPath: "/data", ReadOnly: true}}
			res, err = e.Run(ctx, engine.Task{Module: m, Args: []string{"-f", "/data/f"}, Mounts: ro})
			require.NoError(t, err)
			assert.Equal(t, "file body", string(res.Output))

			_, err = e.Run(ctx, engine.Task{Module: m, Args: []string{"-w", "/data/g", "no"}, Mounts: ro})
			var exit *engine.ExitError
			require.ErrorAs(t, err, &exit, "a read-only mount refuses the write")
			assert.NoFileExists(t, filepath.Join(dir, "g"))

			res, err = e.Run(ctx, engine.Task{Module: m, Args: []string{"-s", "oops"}})
			require.NoError(t, err)
			assert.Equal(t, "oops", string(res.Stderr))

			res, err = e.Run(ctx, engine.Task{Module: m, Args: []string{"-x", "3"}})
			assert.Equal(t, uint32(3), res.ExitCode)
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, uint32(3), exit.Code)

			_, err = e.Run(ctx, engine.Task{Module: m, Args: []string{"-t"}})
			var trap *engine.TrapError
			require.ErrorAs(t, err, &trap)
			assert.Equal(t, engine.TrapUnreachable, trap.Kind, "%v", err)
			if toolchain == "rust" {
				// A Rust panic aborts: its message says why.
				assert.Contains(t, trap.Abort, "panicked at 'wasicat: trap requested'")
				assert.Contains(t, err.Error(), "trap requested")
			} else {
				assert.Empty(t, trap.Abort)
			}
		})
	}
}

func TestDiskCacheSurvivesCorruptEntries(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// Two small modules, so that one entry can be garbage and the other
	// truncated: both kinds of damage must be survivable.
	echo, add := testmod.WATBytes(t, "echo"), testmod.WATBytes(t, "add")
	run := func(want bool) {
		t.Helper()
		e := newEngine(t, engine.Config{CacheDir: dir})
		m, err := e.Compile(ctx, echo)
		require.NoError(t, err)
		assert.Equal(t, want, m.CacheHit(), "cache hit for echo")
		res, err := e.Run(ctx, engine.Task{Module: m, Func: "echo", Input: []byte("ok")})
		require.NoError(t, err)
		assert.Equal(t, "ok", string(res.Output))

		m, err = e.Compile(ctx, add)
		require.NoError(t, err)
		assert.Equal(t, want, m.CacheHit(), "cache hit for add")
		res, err = e.Run(ctx, engine.Task{Module: m, Func: "add", Params: []uint64{2, 3}})
		require.NoError(t, err)
		assert.Equal(t, []uint64{5}, res.Values)
		require.NoError(t, e.Close(ctx))
	}
	run(false)
	run(true)

	var entries []string
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			entries = append(entries, p)
		}
		return err
	}))
	require.Len(t, entries, 2)
	sort.Strings(entries)
	require.NoError(t, os.WriteFile(entries[0], []byte("garbage, not compiled code"), 0o644))
	require.NoError(t, os.Truncate(entries[1], 10))
	run(false) // detected, replaced, recompiled
	run(true)  // and the replacements are good entries
}
