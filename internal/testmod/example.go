package testmod

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RunExample runs the tests of a program under examples/ whose Example calls
// its main as a user runs it: from the repository root, with the named Go
// guest modules in build/modules as `make modules` leaves them, and with the
// user's cache directory (os.UserCacheDir) a temporary one whose
// wasmpool/compiled is the compiled-code cache tests share, so that nothing
// compiles twice and nothing is written to the user's own cache. It returns
// the exit status for TestMain.
func RunExample(m *testing.M, modules ...string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "testmod:", err)
		return 1
	}
	root, err := Root()
	if err != nil {
		return fail(err)
	}
	for _, r := range InstallAll(modules, filepath.Join(root, "build", "modules")) {
		if r.Err != nil {
			return fail(r.Err)
		}
	}
	shared := CompileCache() // before the cache directory moves
	home, err := os.MkdirTemp("", "wasmpool-example-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(home)
	os.Setenv(CacheEnv, CacheDir()) // testmod's own builds stay where they are
	os.Setenv("HOME", home)
	os.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	userCache, err := os.UserCacheDir()
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(filepath.Join(userCache, "wasmpool"), 0o755); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(shared, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Symlink(shared, filepath.Join(userCache, "wasmpool", "compiled")); err != nil {
		return fail(err)
	}
	if err := os.Chdir(root); err != nil {
		return fail(err)
	}
	return m.Run()
}
