package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
)

// The differential test of the mounts. Each script in testdata/wasifs drives
// the wasifs guest (modules/c/wasifs.c), one raw WASI filesystem call a
// line, once under a plain wazero runtime whose mounts are wazero's own
// sysfs.DirFS (sysfs.ReadFS for the read-only one), and once through the
// engine, whose mounts are rootfs.go's, each on its own copy of the same
// tree. Every call must give the same errno and results, and the trees must
// end the same (the read-write ones alike, the engine's read-only one as it
// began: wazero's is not compared, see knownDifferences), but for two kinds
// of line:
//
//   - "!" lines try to leave the mount. DirFS follows them out; the engine
//     must refuse every one, and the tree outside the mount must be
//     untouched. The line DirFS printed is not compared.
//   - "~" lines are where the engine means to differ from wazero. Each is
//     listed in knownDifferences with what each side must print.
//
// The scripts cover every filesystem call of WASI preview 1.

// knownDifferences maps a "~" line (without the "~") to the result each side
// must give: wazero's first, then the engine's.
var knownDifferences = map[string][2]string{
	// wazero's ReadFS answers an open for writing on a read-only mount with
	// ENOSYS ("Function not implemented"), whatever the path. The engine
	// answers as open(2) on a read-only filesystem: what is wrong with the
	// path first, then EROFS.
	"open $w /ro r.txt - - w -":    {"ENOSYS", "EROFS"},
	"open $w /ro r.txt - - rw -":   {"ENOSYS", "EROFS"},
	"open $w /ro r.txt - a - -":    {"ENOSYS", "EROFS"},
	"open $w /ro new.txt c - rw -": {"ENOSYS", "EROFS"},
	"open $w /ro nope/x c - w -":   {"ENOSYS", "ENOENT"},
	"open $w /ro rd/y/z c - w -":   {"ENOSYS", "ENOTDIR"},
	"open $w /ro rd c - w -":       {"ENOSYS", "EISDIR"},
	"open $w /ro rd - - rw -":      {"ENOSYS", "EISDIR"},
	"open $w /ro r.txt ce - w -":   {"ENOSYS", "EEXIST"},
	// ReadFS lets O_TRUNC and O_CREAT through when the guest asks only to
	// read: wazero truncates and creates files on a read-only mount.
	"open $w /ro r.txt t - r -":    {"ESUCCESS fd=5", "EROFS"},
	"open $w /ro made.txt c - r -": {"ESUCCESS fd=6", "EROFS"},
	// Setting a time is a change too; ReadFS says EBADF.
	"settimes $r 1 1 am": {"EBADF", "EROFS"},
	// ReadFS's files cannot be made nonblocking, and a directory's flags
	// cannot even be cleared (EISDIR): the engine's read-only files take the
	// flags as its other files do.
	"setflags $r n":           {"ENOSYS", "ESUCCESS"},
	"fdstat $r # nonblocking": {"ESUCCESS type=file flags=0 base=0x8e001ff inheriting=0", "ESUCCESS type=file flags=0x4 base=0x8e001ff inheriting=0"},
	"setflags $rd -":          {"EISDIR", "ESUCCESS"},
	// When fd_fdstat_set_flags cannot open the file again (its name has
	// gone), wazero reports the append flag it failed to set; the engine
	// keeps the flags the file has.
	// The engine refuses a symlink whose target climbs (".."), even one
	// that would stay inside the mount where it is made: renamed, or
	// resolved through another symlink, it need not (see rootFS.Symlink).
	"symlink ../a.txt /rw dd/l3":            {"ESUCCESS", "EPERM"},
	"unlink /rw dd/l3":                      {"ESUCCESS", "ENOENT"},
	"symlink ../../a.txt /rw dd/sub/l7":     {"ESUCCESS", "EPERM"},
	"unlink /rw dd/sub/l7":                  {"ESUCCESS", "ENOENT"},
	"unlink /rw l":                          {"ESUCCESS", "ENOENT"},
	"fdstat $n # after the failed setflags": {"ESUCCESS type=file flags=0x1 base=0x8e001ff inheriting=0", "ESUCCESS type=file flags=0 base=0x8e001ff inheriting=0"},
}

func TestWASIFilesystemMatchesWazero(t *testing.T) {
	wasm, err := os.ReadFile(testmod.C(t, "wasifs"))
	require.NoError(t, err)
	scripts, err := filepath.Glob("testdata/wasifs/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, scripts)

	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	theirs, err := r.CompileModule(ctx, wasm)
	require.NoError(t, err)
	e := newEngine(t, engine.Config{})
	ours, err := e.Compile(ctx, wasm)
	require.NoError(t, err)

	seen, ran := map[string]bool{}, 0
	for _, path := range scripts {
		script, err := os.ReadFile(path)
		require.NoError(t, err)
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			ran++
			wbase, obase := newWASIFSTree(t), newWASIFSTree(t)
			outsideBefore := snapshotTree(t, filepath.Join(obase, "outside"), time.Time{})

			start := time.Now()
			wout := runWazeroScript(t, r, theirs, script, wbase)
			oout := runEngineScript(t, e, ours, script, obase)
			now := time.Now()

			if testing.Verbose() {
				t.Logf("the engine's transcript:\n%s", oout)
			}
			wlines, olines := transcript(wout, start, now), transcript(oout, start, now)
			require.Equal(t, len(wlines), len(olines), "wazero:\n%s\nengine:\n%s", wout, oout)
			var problems []string
			escapes, followed := 0, 0
			for i, want := range wlines {
				got := olines[i]
				switch {
				case strings.HasPrefix(got, "!"):
					escapes++
					if strings.HasPrefix(result(want), "ESUCCESS") {
						followed++
					}
					if strings.HasPrefix(result(got), "ESUCCESS") {
						problems = append(problems, fmt.Sprintf("line %d: the engine let the guest out of its mount:\n\t%s", i+1, got))
					}
				case strings.HasPrefix(got, "~"):
					call, _, _ := strings.Cut(got[1:], " =>")
					call = strings.TrimSpace(call)
					diff, ok := knownDifferences[call]
					seen[call] = true
					if !ok {
						problems = append(problems, fmt.Sprintf("line %d: %q is not in knownDifferences", i+1, call))
					} else if w, o := result(want), result(got); w != diff[0] || o != diff[1] {
						problems = append(problems, fmt.Sprintf("line %d: %s\n\twazero %s (want %s)\n\tengine %s (want %s)", i+1, call, w, diff[0], o, diff[1]))
					}
				case want != got:
					problems = append(problems, fmt.Sprintf("line %d:\n\twazero %s\n\tengine %s", i+1, want, got))
				}
			}
			if escapes > 0 && followed == 0 {
				problems = append(problems, "no \"!\" line leaves the mount even under DirFS: the script tests no escape")
			}
			if len(problems) > 0 {
				t.Errorf("the engine's mounts differ from wazero's sysfs:\n%s", strings.Join(problems, "\n"))
			}
			assert.Equal(t, snapshotTree(t, filepath.Join(wbase, "rw"), start), snapshotTree(t, filepath.Join(obase, "rw"), start), "the read-write mounts")
			assert.Equal(t, snapshotTree(t, filepath.Join(newWASIFSTree(t), "ro"), start), snapshotTree(t, filepath.Join(obase, "ro"), start), "the engine's read-only mount is unchanged")
			assert.Equal(t, outsideBefore, snapshotTree(t, filepath.Join(obase, "outside"), time.Time{}), "the engine left the tree outside its mounts alone")
		})
	}
	if ran == len(scripts) { // not when -run picked some
		for call := range knownDifferences {
			assert.True(t, seen[call], "knownDifferences lists %q, which no script runs", call)
		}
	}
}

// TestWASIFilesystemConformance holds the engine's mounts to what POSIX
// says, line by line, where wasi-testsuite found them wrong (and where the
// differential test above would pass were wazero wrong too).
func TestWASIFilesystemConformance(t *testing.T) {
	const golden = `open $n /rw b.txt - a rw - => ESUCCESS fd=5
setflags $n - => ESUCCESS
fdstat $n => ESUCCESS type=file flags=0 base=0x8e001ff inheriting=0
write $n B => ESUCCESS n=1
pread $n 100 0 => ESUCCESS n=6 "Bravo\x0a"
setflags $n a => ESUCCESS
write $n ! => ESUCCESS n=1
pread $n 100 0 => ESUCCESS n=7 "Bravo\x0a!"
close $n => ESUCCESS
open $d /rw empty d - r - => ESUCCESS fd=5
setflags $d - => ESUCCESS
readdir $d 0 4096 => ESUCCESS used=51 ".":dir:1:ino "..":dir:2:ino0
open $n /rw empty/file c - rw - => ESUCCESS fd=6
close $n => ESUCCESS
readdir $d 0 4096 => ESUCCESS used=79 ".":dir:1:ino "..":dir:2:ino0 "file":file:3:ino
readdir $d 2 4096 => ESUCCESS used=28 "file":file:3:ino
close $d => ESUCCESS
libcls /rw/full pass1: . .. f pass2: . .. f
rename /rw d /rw empty2 => ESUCCESS
stat /rw - d => ENOENT
stat /rw - empty2/x.txt => ESUCCESS type=file nlink=1 ino=#1 dev=#1 size=5 atim=1577934245000006000 mtim=1577934245000006000
rename /rw empty2 /rw full => ENOTEMPTY
rename /rw a.txt /rw full => EISDIR
rename /rw full /rw a.txt => ENOTDIR
open $w /ro r.txt - - w - => EROFS
open $w /ro r.txt t - r - => EROFS
open $w /ro new.txt c - r - => EROFS
open $w /ro nope/new.txt c - rw - => ENOENT
mkdir /ro dir => EROFS
unlink /ro r.txt => EROFS
open $r /ro r.txt - - r - => ESUCCESS fd=5
write $r x => EBADF
settimes $r 1 1 am => EROFS
read $r 100 => ESUCCESS n=9 "read only"`
	var script strings.Builder
	for _, line := range strings.Split(golden, "\n") {
		call, _, _ := strings.Cut(line, " =>")
		call, _, _ = strings.Cut(call, " pass1:")
		script.WriteString(call + "\n")
	}
	e := newEngine(t, engine.Config{})
	m, err := e.CompileFile(context.Background(), testmod.C(t, "wasifs"))
	require.NoError(t, err)
	base := newWASIFSTree(t)
	before := snapshotTree(t, filepath.Join(base, "ro"), time.Time{})
	out := runEngineScript(t, e, m, []byte(script.String()), base)
	assert.Equal(t, strings.Split(golden, "\n"), transcript(out, time.Time{}, time.Time{}))
	assert.Equal(t, before, snapshotTree(t, filepath.Join(base, "ro"), time.Time{}), "the read-only mount is unchanged")
}

// fixedTime is the time every file of a fresh tree was last modified and
// accessed, so that two copies stat the same.
var fixedTime = time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)

// newWASIFSTree makes a fresh tree: rw and ro are mounted, outside is next
// to them, where only a link that escapes leads.
func newWASIFSTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	files := map[string]string{
		"rw/a.txt":   "alpha",
		"rw/b.txt":   "bravo\n",
		"rw/d/x.txt": "x-ray",
		"rw/full/f":  "f",
		"rw/many/01": "1",
		"rw/many/02": "2",
		"rw/many/03": "3",
		"rw/many/04": "4",
		"rw/many/05": "5",
		"rw/many/06": "6",
		"rw/many/07": "7",
		"rw/many/08": "8",
		"rw/many/a-longer-name-than-the-others-so-that-a-small-buffer-truncates-it": "9",
		"ro/r.txt":           "read only",
		"ro/rd/y":            "y",
		"outside/secret.txt": "secret",
	}
	dirs := []string{"rw/d/sub", "rw/empty", "rw/empty2", "ro/emptyro"}
	links := map[string]string{
		"rw/la":       "a.txt",
		"rw/ld":       "d",
		"rw/lsub":     "d/sub/../x.txt",
		"rw/d/up":     "../a.txt",
		"rw/dangling": "nope",
		"rw/loop":     "loop",
		"rw/lout":     "../outside/secret.txt",
		"rw/loutdir":  "../outside",
		"rw/labs":     "/etc/passwd",
		"ro/rl":       "r.txt",
		"ro/rlout":    "../outside/secret.txt",
	}
	// Created in one order, so that two trees list their directories alike.
	for _, name := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(base, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(files[name]), 0o644))
	}
	for _, name := range dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(base, name), 0o755))
	}
	for _, name := range slices.Sorted(maps.Keys(links)) {
		require.NoError(t, os.Symlink(links[name], filepath.Join(base, name)))
	}
	require.NoError(t, filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 || p == base {
			return err
		}
		return os.Chtimes(p, fixedTime, fixedTime)
	}))
	return base
}

// snapshotTree lists a tree: each entry's path, type, permissions, contents
// or target, and modification time ("now" when it is after since).
func snapshotTree(t *testing.T, root string, since time.Time) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		entry := fmt.Sprintf("%s %v", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entry += " -> " + target
		case info.Mode().IsRegular():
			body, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entry += fmt.Sprintf(" %q", body)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			entry += " mtime=" + timeString(info.ModTime().UnixNano(), since, time.Now().Add(time.Hour))
		}
		out = append(out, entry)
		return nil
	}))
	return out
}

// result is what a transcript line says after its call.
func result(line string) string {
	_, r, _ := strings.Cut(line, "=> ")
	return r
}

// timeString prints a time, or "now" for one in [from, to]: when a call
// touched a file is the one time that two runs cannot share.
func timeString(ns int64, from, to time.Time) string {
	if !from.IsZero() && ns >= from.Add(-time.Second).UnixNano() && ns <= to.Add(time.Second).UnixNano() {
		return "now"
	}
	return strconv.FormatInt(ns, 10)
}

var timeField = regexp.MustCompile(`\b(atim|mtim)=(\d+)`)

// transcript splits a guest's output into lines, with the times of the run
// written "now".
func transcript(out string, from, to time.Time) []string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, l := range lines {
		lines[i] = timeField.ReplaceAllStringFunc(l, func(m string) string {
			name, value, _ := strings.Cut(m, "=")
			ns, _ := strconv.ParseInt(value, 10, 64)
			return name + "=" + timeString(ns, from, to)
		})
	}
	return lines
}

func runWazeroScript(t *testing.T, r wazero.Runtime, m wazero.CompiledModule, script []byte, base string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	fsc := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(sysfs.DirFS(filepath.Join(base, "rw")), "/rw")
	fsc = fsc.(sysfs.FSConfig).WithSysFSMount(&sysfs.ReadFS{FS: sysfs.DirFS(filepath.Join(base, "ro"))}, "/ro")
	cfg := wazero.NewModuleConfig().WithName("").WithArgs("wasifs").
		WithStdin(bytes.NewReader(script)).WithStdout(&stdout).WithStderr(&stderr).
		WithFSConfig(fsc).WithSysWalltime().WithSysNanotime()
	mod, err := r.InstantiateModule(context.Background(), m, cfg)
	require.NoError(t, err, "wazero: %s\n%s", stderr.String(), stdout.String())
	require.NoError(t, mod.Close(context.Background()))
	return stdout.String()
}

func runEngineScript(t *testing.T, e *engine.Engine, m *engine.Module, script []byte, base string) string {
	t.Helper()
	res, err := e.Run(context.Background(), engine.Task{
		Module: m, Input: script, Timeout: time.Minute,
		Mounts: []engine.Mount{
			{HostPath: filepath.Join(base, "rw"), GuestPath: "/rw"},
			{HostPath: filepath.Join(base, "ro"), GuestPath: "/ro", ReadOnly: true},
		},
	})
	require.NoError(t, err, "engine: %s\n%s", res.Stderr, res.Output)
	return string(res.Output)
}
