//go:build linux

package pool_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/pool"
)

// TestSubprocessProcessLimits: the kernel stops a worker process that goes
// over its address space or its CPU time, even with no timeout set, and the
// pool says which limit it was.
func TestSubprocessProcessLimits(t *testing.T) {
	// Guests may have 1 GiB: the process limits below are what stop them.
	e := testEngine(t, engine.Config{MemoryLimitBytes: 1 << 30}, nil)
	hostile := goModule(t, e, "hostile")
	ctx := within(t)
	echo := func(t *testing.T, p *pool.Pool) {
		t.Helper()
		res, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Input: []byte("next")}).Result(ctx)
		require.NoError(t, err, "the replacement runs tasks")
		assert.Equal(t, "next", string(res.Output))
	}

	t.Run("address space", func(t *testing.T) {
		// Enough to run tasks (the Go heap maps 64 MiB at a time), not for
		// a guest of 1 GiB: the process dies before the engine's limit.
		p := subprocessPool(t, e, pool.Config{Workers: 1, ProcessLimits: pool.ProcessLimits{AddressSpace: 256 << 20}})
		echo(t, p)
		_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "membomb"}).Result(ctx)
		ce := crashError(t, err)
		assert.True(t, ce.OutOfMemory, "%v", err)
		assert.ErrorIs(t, err, engine.ErrMemoryLimit)
		assert.Contains(t, err.Error(), "ran out of memory (its address-space limit is ")
		echo(t, p)
	})

	t.Run("cpu time", func(t *testing.T) {
		// The kernel kills at twice CPUTime: 2s of spinning, no timeout.
		p := subprocessPool(t, e, pool.Config{Workers: 1, ProcessLimits: pool.ProcessLimits{CPUTime: time.Second}})
		_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "spin"}).Result(ctx)
		ce := crashError(t, err)
		assert.Equal(t, "SIGKILL", ce.Signal)
		assert.Contains(t, err.Error(), "killed by the kernel at its CPU time limit of 2s (RLIMIT_CPU")
		echo(t, p)
	})
}

// TestSubprocessWorkerProcessesDieWithTheirParent: a program killed outright
// (no Close, no cleanup) leaves no worker process behind, even one spinning
// in a guest.
func TestSubprocessWorkerProcessesDieWithTheirParent(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	parent := exec.Command(self, parentArg, testmod.CompileCache(), testmod.Path(t, "hostile"))
	out, err := parent.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, parent.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(strings.Trim(line, "[]\n")) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err, "the parent said %q", line)
		pids = append(pids, pid)
	}
	require.Len(t, pids, 2, "the parent said %q", line)

	require.NoError(t, parent.Process.Kill())
	_ = parent.Wait()
	ctx := within(t)
	for _, pid := range pids {
		for !orphanGone(pid) {
			select {
			case <-ctx.Done():
				t.Fatalf("worker process %d outlived its parent", pid)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// orphanGone reports whether the worker process of that PID, whose parent
// died, is gone. Its parent is now some reaper, not this process, so unlike
// gone it is told from a stranger with the PID by its command line.
func orphanGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return true
	}
	return !bytes.Contains(b, []byte("--wasmpool-child"))
}
