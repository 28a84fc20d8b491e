package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/internal/testmod"
)

// asCLIEnv makes the test binary run as the wasmpool CLI (see TestMain).
const asCLIEnv = "WASMPOOL_TEST_AS_CLI"

// cliProcess is the CLI in a process of its own: this test binary, re-run.
func cliProcess(t *testing.T, stdin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asCLIEnv+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// tmpFiles lists the temporary files wazero writes a cache entry to before
// renaming it into place.
func tmpFiles(dir string) []string {
	var found []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".tmp") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// killMidWrite runs the CLI on a fresh cache directory and kills it with
// SIGKILL the moment a cache entry is being written. It reports whether it
// caught the process writing (it may finish first; the caller retries).
func killMidWrite(t *testing.T, cache, module string) bool {
	t.Helper()
	victim := cliProcess(t, "victim", "run", module, "--cache-dir", cache)
	require.NoError(t, victim.Start())
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }()
	// A bounded poll of another process's files: nothing to wait on.
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case <-exited:
			return false
		case <-deadline:
			_ = victim.Process.Kill()
			<-exited
			t.Fatal("the CLI neither wrote its cache entry nor exited")
		default:
		}
		if len(tmpFiles(cache)) > 0 {
			require.NoError(t, victim.Process.Kill())
			<-exited
			return true
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// Several wasmpool processes share one cache directory, one of them killed
// while it writes to it: the others, and later runs, still work, and the
// cache serves them.
func TestDiskCacheSharedByProcessesOneKilled(t *testing.T) {
	t.Parallel()
	// A C command (wasicat copies stdin to stdout): small enough to compile
	// quickly under -race, big enough that its entry takes a while to write.
	module := testmod.C(t, "wasicat")
	var cache string
	caught := false
	attempts := 0
	for ; attempts < 20 && !caught; attempts++ {
		cache = t.TempDir()
		caught = killMidWrite(t, cache, module)
	}
	require.True(t, caught, "never caught the CLI writing its cache entry in 20 attempts")
	t.Logf("killed mid-write (attempt %d), leaving %d temporary file(s)", attempts, len(tmpFiles(cache)))

	// Four processes at once on the same directory, half-written entry and all.
	const n = 4
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = cliProcess(t, fmt.Sprintf("process %d", i), "run", module, "--cache-dir", cache)
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout = outs[i]
		cmds[i].Stderr = outs[i]
		require.NoError(t, cmds[i].Start())
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "process %d: %s", i, outs[i])
		assert.Equal(t, fmt.Sprintf("process %d", i), outs[i].String())
	}

	// A later run gets its code from the cache, and runs.
	out, err := cliProcess(t, "", "inspect", module, "--cache-dir", cache).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "(cache hit)")
	out, err = cliProcess(t, "later", "run", module, "--cache-dir", cache).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "later", string(out))
}
