package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/wasmpool/wasmpool/internal/wasmbin"
)

// The instrumentation pass costs about 30 ms for a 2.4 MB Go guest: more than
// the rest of a CLI run from a warm cache. So its output is kept in CacheDir
// beside wazero's compiled code, which is keyed by those very bytes: a
// process's first compile of a module then reads both from disk.

// instrumentedDir is the subdirectory of CacheDir that holds instrumented
// modules (cacheEntries does not count it: it counts wazero's entries).
const instrumentedDir = "instrumented"

// instrument returns base instrumented with opts, from CacheDir when an
// earlier run of this same build wrote it there.
func (e *Engine) instrument(base []byte, opts wasmbin.InstrumentOptions) ([]byte, error) {
	if e.cfg.CacheDir == "" {
		return wasmbin.Instrument(base, opts)
	}
	path := filepath.Join(e.cfg.CacheDir, instrumentedDir, instrumentedKey(base, opts)+".wasm")
	if code, ok := readChecked(path); ok {
		return code, nil
	}
	code, err := wasmbin.Instrument(base, opts)
	if err != nil {
		return nil, err
	}
	// Best effort: a cache that cannot be written costs the pass next time.
	_ = writeChecked(path, code)
	return code, nil
}

// instrumentedKey names the instrumented form of base: its digest, the
// options, and the build of this program, since another build may
// instrument differently.
func instrumentedKey(base []byte, opts wasmbin.InstrumentOptions) string {
	h := sha256.New()
	h.Write(base)
	fmt.Fprintf(h, "\x00fuel=%v\x00build=%s", opts.Fuel, buildKey())
	return hex.EncodeToString(h.Sum(nil))
}

// buildKey identifies this program's build: its module version when it
// has one, else its VCS revision when the tree was clean, else the
// executable's own size and time (a development build changes with each
// rebuild, and so does that).
var buildKey = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return "version " + v
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" && modified == "false" {
			return "revision " + rev
		}
	}
	exe, err := os.Executable()
	if err == nil {
		if st, err := os.Stat(exe); err == nil {
			return fmt.Sprintf("executable %s %d %d", exe, st.Size(), st.ModTime().UnixNano())
		}
	}
	return "unknown"
})

// A cached file is the bytes followed by their SHA-256, so that a
// truncated or damaged file is never taken for code.
func readChecked(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < sha256.Size {
		return nil, false
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	got := sha256.Sum256(body)
	if !bytes.Equal(got[:], sum) {
		return nil, false
	}
	return body, true
}

// writeChecked writes atomically: other processes sharing the cache see the
// whole file or none.
func writeChecked(path string, body []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	_, err = f.Write(append(body[:len(body):len(body)], sum[:]...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}
