package testmod

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// wazeroCLIPackage is wazero's own command line, the reference wasmpool run
// is compared against. It is part of the wazero module wasmpool already
// requires, so building it needs nothing but the module cache.
const wazeroCLIPackage = "github.com/tetratelabs/wazero/cmd/wazero"

var (
	wazeroOnce sync.Once
	wazeroPath string
	wazeroErr  error
)

// WazeroCLI returns the path of wazero's CLI (`wazero run ...`) built for
// the host from the wazero version in go.mod. It is built once per machine
// (cached like the guest modules, keyed by the Go toolchain, go.mod/go.sum and
// -race) and looked up once per process.
//
// It is built with -race when the test binary is: go test -race has just
// compiled wazero's packages that way, so the build is a link (a second or
// two) instead of compiling wazero again (half a minute on a cold machine).
func WazeroCLI(tb testing.TB) string {
	tb.Helper()
	wazeroOnce.Do(func() { wazeroPath, wazeroErr = buildWazeroCLI() })
	if wazeroErr != nil {
		tb.Fatalf("testmod: %v", wazeroErr)
	}
	return wazeroPath
}

// WazeroCommand is exec.Command for wazero's CLI with args, in the test's
// environment. A -race build sleeps a second on exit by default, to let
// reports be written; with a run per test case that would be most of the
// test's time, so the command is told not to.
func WazeroCommand(tb testing.TB, args ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(WazeroCLI(tb), args...)
	if raceEnabled {
		gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
		cmd.Env = append(os.Environ(), "GORACE="+gorace)
	}
	return cmd
}

// WazeroCompileCache is the directory to pass as `wazero run -cachedir`: its
// own, since the CLI compiles with other runtime settings than the engine.
func WazeroCompileCache() string {
	return filepath.Join(CacheDir(), "wazero-cli-compiled")
}

func buildWazeroCLI() (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	goBin, err := goCommand()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "testmod wazero-cli v1\x00%s\x00%s\x00%s/%s\x00race=%v\x00", runtime.Version(), goBin, runtime.GOOS, runtime.GOARCH, raceEnabled)
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	exe := "wazero"
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	dir := filepath.Join(CacheDir(), "wazero-cli-"+hex.EncodeToString(h.Sum(nil))[:16])
	out := filepath.Join(dir, exe)
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	if _, err := goBuild(out, 0o755, goBin, root, hostBuildEnv(), flags, wazeroCLIPackage); err != nil {
		return "", fmt.Errorf("building wazero's CLI: %w", err)
	}
	return out, nil
}

// hostBuildEnv is the inherited environment for a host build, without the
// test run's GOFLAGS -race (WazeroCLI decides) or -cover (the tests'
// business, not the reference tool's).
func hostBuildEnv() []string {
	var env, goflags []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "GOFLAGS" {
			for _, f := range strings.Fields(v) {
				if f == "-race" || strings.HasPrefix(f, "-race=") || strings.HasPrefix(f, "-cover") {
					continue
				}
				goflags = append(goflags, f)
			}
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOFLAGS="+strings.Join(goflags, " "))
}
