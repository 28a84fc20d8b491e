package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wasmpool/wasmpool/engine"
)

// engineFlags are the flags every command that runs or compiles a module
// shares: they become the engine.Config.
type engineFlags struct {
	memory      string
	outputLimit string
	cacheDir    string
	noCache     bool
	interpreter bool
	preinit     bool
	// capabilities are what the command's engine provides (see
	// allowhost.go); set by the command before newEngine.
	capabilities []engine.Capability
}

func (f *engineFlags) add(fs *pflag.FlagSet) {
	f.addCompile(fs)
	fs.StringVar(&f.outputLimit, "output-limit", "",
		"cap on the output and on the stderr the host collects for a task, each (default 16MiB; passed-through output is not capped)")
	fs.BoolVar(&f.preinit, "preinitialize", false,
		"start fresh instances of a reactor from a copy of its state after _initialize (faster; they share its clock reading and random seed)")
}

// addCompile adds only the flags that bear on compiling a module (inspect's).
func (f *engineFlags) addCompile(fs *pflag.FlagSet) {
	fs.StringVar(&f.memory, "memory", "", "memory limit per instance, e.g. 64MiB, 1GiB (default 256MiB)")
	fs.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), `compiled-code cache shared across runs ("" for none)`)
	fs.BoolVar(&f.noCache, "no-cache", false, "do not use the on-disk compiled-code cache")
	fs.BoolVar(&f.interpreter, "interpreter", false, "use wazero's interpreter instead of its compiler")
}

// defaultCacheDir is $WASMPOOL_CACHE_DIR, or wasmpool/compiled under the
// user's cache directory, or "" (in memory only) if there is none.
func defaultCacheDir() string {
	if d, ok := os.LookupEnv("WASMPOOL_CACHE_DIR"); ok {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "wasmpool", "compiled")
}

func (f *engineFlags) config() (engine.Config, error) {
	var cfg engine.Config
	if f.memory != "" {
		n, err := parseSize(f.memory)
		if err != nil {
			return cfg, usagef("--memory: %v", err)
		}
		if n < wasmPage {
			return cfg, usagef("--memory %s: less than one 64KiB page, the unit WebAssembly memory comes in", f.memory)
		}
		if n > 4<<30 {
			return cfg, usagef("--memory %s: over the 4GiB a 32-bit guest can address", f.memory)
		}
		cfg.MemoryLimitBytes = n
	}
	if f.outputLimit != "" {
		n, err := parseSize(f.outputLimit)
		if err != nil {
			return cfg, usagef("--output-limit: %v", err)
		}
		if n == 0 || n > math.MaxInt32 {
			return cfg, usagef("--output-limit %s: want more than 0 and less than 2GiB", f.outputLimit)
		}
		cfg.OutputLimitBytes = int(n)
	}
	if !f.noCache {
		cfg.CacheDir = f.cacheDir
	}
	cfg.Interpreter = f.interpreter
	cfg.Preinitialize = f.preinit
	return cfg, nil
}

// newEngine creates the engine. When the default cache directory cannot be
// used (a read-only home, say), it warns and goes on without a disk cache;
// a --cache-dir the user chose must work.
func (f *engineFlags) newEngine(ctx context.Context, fs *pflag.FlagSet, stderr io.Writer) (*engine.Engine, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	cfg.Capabilities = f.capabilities
	e, err := engine.New(ctx, cfg)
	if err != nil && cfg.CacheDir != "" && !fs.Changed("cache-dir") {
		report(stderr, "warning: cache directory %s unusable, compiling in memory: %v", cfg.CacheDir, err)
		cfg.CacheDir = ""
		e, err = engine.New(ctx, cfg)
	}
	if err != nil {
		return nil, usagef("%v", err)
	}
	return e, nil
}

// wasmPage is WebAssembly's unit of memory.
const wasmPage = 64 << 10

// sizeUnits: binary for K/M/G/T and KiB/MiB/GiB/TiB, decimal for KB/MB/GB/TB.
var sizeUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// parseSize reads a byte count: "1048576", "64MiB", "256MB", "1.5GiB", "64k".
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q: want bytes or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || (mult > 1 && n > math.MaxUint64/mult) {
			return 0, fmt.Errorf("invalid size %q", s)
		}
		return n * mult, nil
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v*float64(mult) >= math.MaxUint64 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return uint64(math.Ceil(v * float64(mult))), nil
}

// parseEnv reads repeated KEY=VALUE flags into the guest's environment.
func parseEnv(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--env %q: want KEY=VALUE", p)
		}
		env[k] = v
	}
	return env, nil
}

// parseMount reads HOST:GUEST[:ro|:rw]; a relative HOST is taken relative to
// baseDir.
func parseMount(spec, baseDir string) (engine.Mount, error) {
	parts := strings.Split(spec, ":")
	var m engine.Mount
	if n := len(parts); n == 3 && (parts[2] == "ro" || parts[2] == "rw") {
		m.ReadOnly = parts[2] == "ro"
		parts = parts[:2]
	}
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return m, fmt.Errorf("mount %q: want HOST:GUEST or HOST:GUEST:ro", spec)
	}
	if !strings.HasPrefix(parts[1], "/") {
		return m, fmt.Errorf("mount %q: the guest path must be absolute (start with /)", spec)
	}
	m.HostPath, m.GuestPath = resolve(baseDir, parts[0]), parts[1]
	return m, nil
}

// parseMounts reads repeated --mount flags, each host side an existing
// directory.
func parseMounts(specs []string) ([]engine.Mount, error) {
	var mounts []engine.Mount
	for _, spec := range specs {
		m, err := parseMount(spec, "")
		if err != nil {
			return nil, usagef("--mount: %v", err)
		}
		if err := checkMount(m); err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
}

// checkMount tells, before any guest runs, that a mount's host side is not
// an existing directory.
func checkMount(m engine.Mount) error {
	info, err := os.Stat(m.HostPath)
	if err != nil {
		return fmt.Errorf("mount %q: %v", m.HostPath, cleanPathError(err))
	}
	if !info.IsDir() {
		return fmt.Errorf("mount %q: not a directory", m.HostPath)
	}
	return nil
}

// resolve makes a relative path relative to baseDir ("" = the current one).
func resolve(baseDir, p string) string {
	if baseDir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

func checkTimeout(d time.Duration) error {
	if d < 0 {
		return usagef("--timeout %v: cannot be negative", d)
	}
	return nil
}

// isTerminal reports whether f is an *os.File on a terminal (a character
// device). Tests pass buffers, which never are.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	info, err := file.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// piped reports whether stdin is there to be read to its end: a pipe, a
// file, or (in tests) any reader; not a terminal, where nobody may be
// typing, nor a character device such as /dev/null, nor a closed stdin.
func piped(stdin any) bool {
	if stdin == nil {
		return false
	}
	f, ok := stdin.(*os.File)
	if !ok {
		return true
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice == 0
}

// statModule checks, before anything is compiled, that the module file
// exists and is a file: a typo is a usage error naming the path as given.
func statModule(path string) (os.FileInfo, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fileError("module", path, err)
	}
	if info.IsDir() {
		return nil, &usageError{msg: fmt.Sprintf("module %q: is a directory, not a .wasm file", path)}
	}
	return info, nil
}
