// Package testmod builds and locates the WebAssembly modules that tests use.
//
// The Go guest modules under modules/go are built on demand with the Go
// toolchain (GOOS=wasip1 GOARCH=wasm) and cached on disk by content, so that
// only the first test run after a change pays for the build. The hand-written
// modules in testdata/wat and the other toolchains' modules in testdata/c,
// testdata/rust and testdata/assemblyscript are committed binaries; for those
// this package only finds the file. WazeroCLI builds wazero's own command
// line, the reference that wasmpool run is tested against.
//
// A module directory is built as a WASI reactor (-buildmode=c-shared) when
// its source holds a //go:wasmexport directive, and as a WASI command
// otherwise.
//
// The cache lives in $WASMPOOL_TESTMOD_CACHE if set, else in
// wasmpool-testmod under the user cache directory (or the temporary
// directory). Its key covers the Go version, the module's source, the guest
// SDK and go.mod/go.sum; entries are written atomically, so concurrent test
// binaries may build the same module at once.
package testmod

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// modulePath is the module line go.mod must carry for Root to accept it.
const modulePath = "github.com/wasmpool/wasmpool"

// CacheEnv names the environment variable that overrides the cache directory.
const CacheEnv = "WASMPOOL_TESTMOD_CACHE"

// Path returns the path of the built Go guest module modules/go/NAME,
// building it first if needed. The file is named NAME.wasm.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	p, err := Build(name)
	if err != nil {
		tb.Fatalf("testmod: %v", err)
	}
	return p
}

// Bytes returns the contents of the built Go guest module modules/go/NAME.
func Bytes(tb testing.TB, name string) []byte {
	tb.Helper()
	return readFile(tb, Path(tb, name))
}

// WAT returns the path of the committed module testdata/wat/NAME.wasm.
func WAT(tb testing.TB, name string) string {
	tb.Helper()
	return committed(tb, "wat", name, "make wat")
}

// WATBytes returns the contents of testdata/wat/NAME.wasm.
func WATBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	return readFile(tb, WAT(tb, name))
}

// C returns the path of the committed module testdata/c/NAME.wasm.
func C(tb testing.TB, name string) string {
	tb.Helper()
	return committed(tb, "c", name, "make cmodules")
}

// Rust returns the path of the committed module testdata/rust/NAME.wasm.
func Rust(tb testing.TB, name string) string {
	tb.Helper()
	return committed(tb, "rust", name, "make rustmodules")
}

// AssemblyScript returns the path of the committed module
// testdata/assemblyscript/NAME.wasm.
func AssemblyScript(tb testing.TB, name string) string {
	tb.Helper()
	return committed(tb, "assemblyscript", name, "make asmodules")
}

func committed(tb testing.TB, kind, name, regen string) string {
	tb.Helper()
	root, err := Root()
	if err != nil {
		tb.Fatalf("testmod: %v", err)
	}
	p := filepath.Join(root, "testdata", kind, name+".wasm")
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("testmod: the committed module testdata/%s/%s.wasm is missing (%v); it is regenerated with %q", kind, name, err, regen)
	}
	return p
}

func readFile(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("testmod: %v", err)
	}
	return b
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// Root returns the repository root: the directory of the go.mod that
// declares module github.com/wasmpool/wasmpool. It is found from this source
// file's location, or failing that (a -trimpath build) from the working
// directory upwards.
func Root() (string, error) {
	rootOnce.Do(func() { rootDir, rootErr = findRoot() })
	return rootDir, rootErr
}

func findRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the repository root (a go.mod for module %s) from %s", modulePath, strings.Join(starts, " or "))
}

func isRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// Names returns the names of the Go guest modules: the directories under
// modules/go that hold Go source, sorted.
func Names() ([]string, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(root, "modules", "go"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if srcs, _ := filepath.Glob(filepath.Join(root, "modules", "go", e.Name(), "*.go")); len(srcs) > 0 {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

type entry struct {
	once   sync.Once
	path   string
	cached bool
	err    error
}

// built memoizes Build within the process: name -> *entry.
var built sync.Map

// Build builds the Go guest module modules/go/NAME, or finds it in the cache,
// and returns the path of the .wasm file. Within one process each module is
// built at most once, however many goroutines ask.
func Build(name string) (string, error) {
	p, _, err := build(name)
	return p, err
}

func build(name string) (string, bool, error) {
	v, _ := built.LoadOrStore(name, new(entry))
	e := v.(*entry)
	e.once.Do(func() { e.path, e.cached, e.err = buildUncached(name) })
	return e.path, e.cached, e.err
}

// Installed is the outcome of installing one module with InstallAll.
type Installed struct {
	Name   string
	Path   string // outDir/NAME.wasm
	Size   int64
	Cached bool // found in the cache rather than built
	Err    error
}

// InstallAll builds the named Go guest modules (in parallel) and copies each
// to outDir/NAME.wasm. The results are in the order of names.
func InstallAll(names []string, outDir string) []Installed {
	res := make([]Installed, len(names))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		for i, name := range names {
			res[i] = Installed{Name: name, Err: err}
		}
		return res
	}
	sem := make(chan struct{}, max(2, runtime.NumCPU()/2))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res[i] = install(name, outDir)
		})
	}
	wg.Wait()
	return res
}

func install(name, outDir string) Installed {
	r := Installed{Name: name}
	src, cached, err := build(name)
	if err != nil {
		r.Err = err
		return r
	}
	r.Cached = cached
	r.Path = filepath.Join(outDir, name+".wasm")
	r.Size, r.Err = copyAtomic(src, r.Path)
	return r
}

func copyAtomic(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, in)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return n, nil
}

// CacheDir returns the directory built modules are cached in.
func CacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "wasmpool-testmod")
	}
	return filepath.Join(os.TempDir(), "wasmpool-testmod")
}

// CompileCache returns the directory tests share as engine.Config.CacheDir.
// Compiling a multi-megabyte Go guest costs seconds under -race; with a
// shared on-disk cache each module is compiled once per machine instead of
// once per test. wazero writes entries by atomic rename, so concurrent test
// binaries are safe. It also keys them by its own version, as it reads it
// from the binary's build information: a test binary carries no versions of
// its dependencies, so there every wazero is "dev", and its check would let
// an upgraded wazero load code an older one compiled. The directory is
// therefore named after the wazero go.mod requires. make test gives test
// binaries that version too (WAZERO_LDFLAGS in the Makefile), so that the
// entries buildmods -warm-test-cache compiles, in a plain build that knows
// its versions, are the ones the tests look up. Tests of the cache itself
// use a directory of their own.
func CompileCache() string {
	return filepath.Join(CacheDir(), "compiled-"+wazeroVersion())
}

var (
	wazeroVersionOnce sync.Once
	wazeroVersionName string
)

// wazeroVersion is the version of wazero the module's go.mod requires, or
// "unknown" when go.mod cannot be read (the cache then still works, shared
// by every version, as wazero's own would be).
func wazeroVersion() string {
	wazeroVersionOnce.Do(func() {
		wazeroVersionName = "unknown"
		root, err := Root()
		if err != nil {
			return
		}
		data, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "require" {
				f = f[1:]
			}
			if len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
				wazeroVersionName = f[1]
				return
			}
		}
	})
	return wazeroVersionName
}

func buildUncached(name string) (path string, cached bool, err error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", false, fmt.Errorf("bad Go guest module name %q", name)
	}
	root, err := Root()
	if err != nil {
		return "", false, err
	}
	srcDir := filepath.Join(root, "modules", "go", name)
	if fi, err := os.Stat(srcDir); err != nil || !fi.IsDir() {
		return "", false, fmt.Errorf("no Go guest module %q: %s is not a directory", name, srcDir)
	}
	goBin, err := goCommand()
	if err != nil {
		return "", false, err
	}
	key, reactor, err := cacheKey(root, name, goBin)
	if err != nil {
		return "", false, fmt.Errorf("hashing the sources of %s: %w", name, err)
	}
	// One directory per key, so that the file itself is NAME.wasm: the
	// engine names a module after its file, and errors should say fib.wasm.
	dir := filepath.Join(CacheDir(), name+"-"+key[:16])
	out := filepath.Join(dir, name+".wasm")
	flags := []string{"-trimpath"}
	if reactor {
		flags = append(flags, "-buildmode=c-shared")
	}
	cached, err = goBuild(out, 0o644, goBin, root, buildEnv(), flags, "./modules/go/"+name)
	if err != nil {
		return "", false, fmt.Errorf("building Go guest module %s (GOOS=wasip1 GOARCH=wasm): %w", name, err)
	}
	return out, cached, nil
}

// goBuild builds pkg (go build flags... -o out pkg, in root, with env) into
// out, unless a non-empty file is there already, and reports whether one
// was. The build goes to a temporary file renamed into place, so concurrent
// test binaries building the same thing never see half a file.
func goBuild(out string, perm os.FileMode, goBin, root string, env, flags []string, pkg string) (cached bool, err error) {
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		return true, nil
	}
	dir, base := filepath.Split(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	ext := filepath.Ext(base) // NAME.wasm is built as .tmp-NAME-*.wasm
	tmp, err := os.CreateTemp(dir, ".tmp-"+strings.TrimSuffix(base, ext)+"-*"+ext)
	if err != nil {
		return false, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op once renamed

	args := append(append([]string{"build"}, flags...), "-o", tmp.Name(), pkg)
	cmd := exec.Command(goBin, args...)
	cmd.Dir = root
	cmd.Env = env
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("%s %s: %v\n%s", goBin, strings.Join(args, " "), err, strings.TrimSpace(outBuf.String()))
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return false, err
	}
	return false, os.Rename(tmp.Name(), out)
}

// goCommand finds the go binary: the one of the running toolchain's GOROOT
// if it has one, else the first on PATH.
func goCommand() (string, error) {
	exe := "go"
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	for _, goroot := range []string{os.Getenv("GOROOT"), runtime.GOROOT()} {
		if goroot == "" {
			continue
		}
		p := filepath.Join(goroot, "bin", exe)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("cannot find the go command to build guest modules: %w", err)
	}
	return p, nil
}

// buildEnv is the inherited environment, retargeted at wasip1/wasm and with
// anything that wasm cannot build with (cgo, the race detector, coverage)
// removed.
func buildEnv() []string {
	var env []string
	var goflags []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOS", "GOARCH", "CGO_ENABLED", "GOWASM":
			continue
		case "GOFLAGS":
			for _, f := range strings.Fields(v) {
				if f == "-race" || f == "-msan" || f == "-asan" || strings.HasPrefix(f, "-race=") ||
					strings.HasPrefix(f, "-cover") || strings.HasPrefix(f, "-buildmode") {
					continue
				}
				goflags = append(goflags, f)
			}
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS="+strings.Join(goflags, " "))
	return env
}

// cacheKey hashes everything the module's build depends on: the Go version
// and binary, the module's name and sources, the guest SDK, go.mod and
// go.sum. It also reports whether the module is a reactor (it has a
// //go:wasmexport directive).
func cacheKey(root, name, goBin string) (key string, reactor bool, err error) {
	h := sha256.New()
	fmt.Fprintf(h, "testmod v1\x00%s\x00%s\x00%s\x00", runtime.Version(), goBin, name)
	// add hashes the file and returns its contents, for a look at them.
	add := func(rel string, optional bool) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
		return b, nil
	}
	for _, dir := range []string{filepath.Join("modules", "go", name), "guest"} {
		var files []string
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				rel, err := filepath.Rel(root, p)
				if err != nil {
					return err
				}
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			return "", false, err
		}
		slices.Sort(files)
		for _, rel := range files {
			b, err := add(rel, false)
			if err != nil {
				return "", false, err
			}
			if dir != "guest" && strings.HasSuffix(rel, ".go") && !reactor {
				reactor = hasWasmExport(b)
			}
		}
	}
	if _, err := add("go.mod", false); err != nil {
		return "", false, err
	}
	if _, err := add("go.sum", true); err != nil {
		return "", false, err
	}
	return hex.EncodeToString(h.Sum(nil)), reactor, nil
}

func hasWasmExport(src []byte) bool {
	for line := range bytes.Lines(src) {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("//go:wasmexport ")) {
			return true
		}
	}
	return false
}
