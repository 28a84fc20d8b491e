package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freshProcessEnv marks the child process TestRunsAtOnceInAFreshProcess
// starts.
const freshProcessEnv = "WASMPOOL_TEST_FRESH_PROCESS"

// TestRunsAtOnceInAFreshProcess runs wasmpool from several goroutines at
// once, each with its own cache directory, as an embedder creating engines
// concurrently would. wazero reads its own version (from the binary's build
// information, which only a main package's binary carries, this test's
// included) into an unsynchronised global the first time a disk cache or a
// compiler is set up, so only the first engines of a process can race: the
// test runs in a fresh child process, which -race fails on a data race.
func TestRunsAtOnceInAFreshProcess(t *testing.T) {
	if os.Getenv(freshProcessEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRunsAtOnceInAFreshProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), freshProcessEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "the child process:\n%s", out)
		assert.NotContains(t, string(out), "DATA RACE")
		return
	}
	hello := wat(t, "hello")
	var wg sync.WaitGroup
	for range 4 {
		dir := t.TempDir()
		wg.Go(func() {
			var out, errb bytes.Buffer
			code := run([]string{"run", "--cache-dir", dir, hello}, strings.NewReader(""), &out, &errb)
			assert.Equal(t, exitOK, code, errb.String())
			assert.Equal(t, "hello from wasm\n", out.String())
		})
	}
	wg.Wait()
}
