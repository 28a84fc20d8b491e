package engine_test

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path"
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

	// A mount the host cannot give is the task's mistake, not the module's.
	_, err = runCmd(t, e, engine.Task{Args: []string{"ls", "/"}, Mounts: []engine.Mount{{HostPath: filepath.Join(rw, "nope"), GuestPath: "/x"}}})
	require.ErrorIs(t, err, engine.ErrBadMount)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotErrorIs(t, err, engine.ErrBadModule)
	assert.Contains(t, err.Error(), "nope")
	file := filepath.Join(rw, "plain")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, mounts := range [][]engine.Mount{
		{{HostPath: file, GuestPath: "/x"}},
		{{HostPath: rw, GuestPath: "/x"}, {HostPath: ro, GuestPath: "/x/"}},
	} {
		_, err = runCmd(t, e, engine.Task{Args: []string{"ls", "/"}, Mounts: mounts})
		assert.ErrorIs(t, err, engine.ErrBadMount, "%v", mounts)
	}
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

	// wazero's entries, and the engine's instrumented code beside them.
	var entries, instrumented []string
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			if filepath.Base(filepath.Dir(p)) == "instrumented" {
				instrumented = append(instrumented, p)
			} else {
				entries = append(entries, p)
			}
		}
		return err
	}))
	require.Len(t, entries, 2)
	require.Len(t, instrumented, 2, "each module's instrumented code is kept")
	sort.Strings(entries)
	sort.Strings(instrumented)
	require.NoError(t, os.WriteFile(entries[0], []byte("garbage, not compiled code"), 0o644))
	require.NoError(t, os.Truncate(entries[1], 10))
	require.NoError(t, os.WriteFile(instrumented[0], []byte("garbage, not a module"), 0o644))
	require.NoError(t, os.Truncate(instrumented[1], 10))
	run(false) // detected, replaced, recompiled
	run(true)  // and the replacements are good entries
	for _, p := range instrumented {
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(100), "%s is written again", filepath.Base(p))
	}
}

// Symlinks are where a mount leaked before rootfs.go: wazero's DirFS let the
// host follow them anywhere, so a link in a mount, or one the guest made
// itself with path_symlink, read and wrote any file the host could.
func TestSymlinksCannotLeaveAMount(t *testing.T) {
	e := newEngine(t, engine.Config{})
	base := t.TempDir()
	dir, outside := filepath.Join(base, "mount"), filepath.Join(base, "outside")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	secret := filepath.Join(outside, "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("inside"), 0o644))
	for link, target := range map[string]string{
		"abs":        secret,                     // absolute, out
		"rel":        "../outside/secret.txt",    // relative, out
		"dir":        outside,                    // a directory out
		"sub/deep":   "../../outside/secret.txt", // from a subdirectory
		"chain":      "dir/secret.txt",           // in, to a link that goes out
		"dangling":   "../outside/new.txt",       // to a file that does not exist yet
		"ok":         "in.txt",                   // in: fine
		"sub/ok":     "../in.txt",                // in, through "..": fine
		"etc_passwd": "../../../../../../../../etc/passwd",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(dir, link)))
	}

	for _, ro := range []bool{false, true} {
		mounts := []engine.Mount{{HostPath: dir, GuestPath: "/data", ReadOnly: ro}}
		for _, p := range []string{"/data/abs", "/data/rel", "/data/dir/secret.txt", "/data/sub/deep", "/data/chain", "/data/etc_passwd"} {
			res, err := runCmd(t, e, engine.Task{Args: []string{"cat", p}, Mounts: mounts})
			var exit *engine.ExitError
			require.ErrorAs(t, err, &exit, "reading %s (read-only %v) must fail", p, ro)
			assert.Empty(t, res.Output)
		}
		_, err := runCmd(t, e, engine.Task{Args: []string{"ls", "/data/dir"}, Mounts: mounts})
		assert.Error(t, err, "listing a directory through a link out")
		for _, p := range []string{"/data/ok", "/data/sub/ok"} {
			res, err := runCmd(t, e, engine.Task{Args: []string{"cat", p}, Mounts: mounts})
			require.NoError(t, err, "a link that stays inside works: %s", p)
			assert.Equal(t, "inside", string(res.Output))
		}
	}

	// Writing through a link out changes nothing outside, nor does creating
	// a file through a dangling one.
	mounts := []engine.Mount{{HostPath: dir, GuestPath: "/data"}}
	for _, p := range []string{"/data/abs", "/data/rel", "/data/dir/secret.txt", "/data/dangling"} {
		_, err := runCmd(t, e, engine.Task{Args: []string{"write", p, "pwned"}, Mounts: mounts})
		assert.Error(t, err, "writing %s", p)
	}
	got, err := os.ReadFile(secret)
	require.NoError(t, err)
	assert.Equal(t, "secret", string(got))
	_, err = os.Stat(filepath.Join(outside, "new.txt"))
	assert.True(t, os.IsNotExist(err), "nothing was created outside the mount")

	// The guest cannot make a link out either, nor one that climbs at all
	// (renamed, or followed through another link, it could lead out); a
	// link down the tree is fine.
	require.NoError(t, os.Symlink(".", filepath.Join(dir, "self")))
	for _, target := range []string{"../../../../etc/passwd", "/etc/passwd", "sub/../../outside/secret.txt",
		"sub/../in.txt", "self/../outside/secret.txt"} {
		_, err := runCmd(t, e, engine.Task{Args: []string{"ln", target, "/data/mine"}, Mounts: mounts})
		var exit *engine.ExitError
		require.ErrorAs(t, err, &exit, "creating a link to %s", target)
		_, err = os.Lstat(filepath.Join(dir, "mine"))
		require.True(t, os.IsNotExist(err), "no link to %s was made", target)
	}
	_, err = runCmd(t, e, engine.Task{Args: []string{"ln", "self/in.txt", "/data/mine"}, Mounts: mounts})
	require.NoError(t, err)
	res, err := runCmd(t, e, engine.Task{Args: []string{"cat", "/data/mine"}, Mounts: mounts})
	require.NoError(t, err)
	assert.Equal(t, "inside", string(res.Output))
}

// ".." never climbs out of a mount, not even one mounted at "/".
func TestDotDotThroughAMount(t *testing.T) {
	e := newEngine(t, engine.Config{})
	base := t.TempDir()
	dir := filepath.Join(base, "mount")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "secret.txt"), []byte("secret"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("inside"), 0o644))

	for guest, paths := range map[string][]string{
		"/data": {"/data/../secret.txt", "/data/sub/../../secret.txt", "/data/../mount/../secret.txt", "/data/./../secret.txt"},
		"/":     {"/../secret.txt", "/../../../../secret.txt", "/sub/../../secret.txt", "../secret.txt", "/../../../../etc/passwd"},
	} {
		mounts := []engine.Mount{{HostPath: dir, GuestPath: guest}}
		for _, p := range paths {
			res, err := runCmd(t, e, engine.Task{Args: []string{"cat", p}, Mounts: mounts})
			assert.Error(t, err, "reading %s with %s mounted at %s", p, dir, guest)
			assert.NotContains(t, string(res.Output), "secret")
			assert.NotContains(t, string(res.Output), "root:")
		}
		res, err := runCmd(t, e, engine.Task{Args: []string{"cat", path.Join(guest, "sub/../in.txt")}, Mounts: mounts})
		require.NoError(t, err, "'..' inside the mount works")
		assert.Equal(t, "inside", string(res.Output))
	}
}

func TestReadOnlyMountRefusesChanges(t *testing.T) {
	e := newEngine(t, engine.Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "in.txt")
	require.NoError(t, os.WriteFile(file, []byte("read me"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	before, err := os.Stat(file)
	require.NoError(t, err)
	mounts := []engine.Mount{{HostPath: dir, GuestPath: "/ro", ReadOnly: true}}
	for _, args := range [][]string{
		{"write", "/ro/new.txt", "x"}, // create
		{"write", "/ro/in.txt", "x"},  // write
		{"mv", "/ro/in.txt", "/ro/b"}, // rename
		{"rm", "/ro/in.txt"},          // delete a file
		{"rm", "/ro/sub"},             // delete a directory
		{"mkdir", "/ro/dir"},          // mkdir
		{"ln", "in.txt", "/ro/link"},  // symlink
	} {
		_, err := runCmd(t, e, engine.Task{Args: args, Mounts: mounts})
		var exit *engine.ExitError
		require.ErrorAs(t, err, &exit, "a read-only mount must refuse %v", args)
	}
	// WASI preview 1 has no chmod: Go's os.Chmod on wasip1 only checks the
	// file exists. Whatever the guest is told, the mode must not change.
	_, _ = runCmd(t, e, engine.Task{Args: []string{"chmod", "/ro/in.txt", "777"}, Mounts: mounts})
	after, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, before.Mode(), after.Mode(), "the mode is unchanged")
	assert.Equal(t, before.ModTime(), after.ModTime(), "the file is unchanged")
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, "read me", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "nothing created, nothing removed")
}

// WASI preview 1 has no way to open a socket, only to use one the host
// preopened, and the engine preopens none: every socket call on every
// descriptor fails (the sockets module reports the 40 errnos), and Go's
// net.Dial fails without a connection reaching the host.
func TestNoNetwork(t *testing.T) {
	e := newEngine(t, engine.Config{})
	m := compileWAT(t, e, "sockets")
	res, err := e.Run(context.Background(), engine.Task{Module: m, Mounts: []engine.Mount{{HostPath: t.TempDir(), GuestPath: "/d"}}})
	require.NoError(t, err)
	require.Len(t, res.Output, 40)
	for i, errno := range res.Output {
		assert.NotZero(t, errno, "socket call %d on fd %d succeeded", i%4, i/4)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	res, err = runCmd(t, e, engine.Task{Args: []string{"dial", l.Addr().String()}})
	var exit *engine.ExitError
	require.ErrorAs(t, err, &exit, "dialling out must fail")
	assert.NotEmpty(t, res.Stderr)
	// The guest is done: any connection it made would be waiting.
	require.NoError(t, l.(*net.TCPListener).SetDeadline(time.Now()))
	conn, err := l.Accept()
	if err == nil {
		conn.Close()
		t.Fatal("the guest reached the host's listener")
	}
}
