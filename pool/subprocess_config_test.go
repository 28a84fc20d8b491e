package pool_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/pool"
)

func TestIsolationConfig(t *testing.T) {
	for s, want := range map[string]pool.Isolation{"in-process": pool.InProcess, "none": pool.InProcess, "process": pool.Subprocess, "subprocess": pool.Subprocess} {
		got, err := pool.ParseIsolation(s)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := pool.ParseIsolation("container")
	assert.ErrorContains(t, err, `unknown isolation "container": want in-process or subprocess`)
	assert.Equal(t, "subprocess", pool.Subprocess.String(), "not to be read as Mode Processes")

	e := testEngine(t, engine.Config{}, nil)
	for _, c := range []struct {
		cfg  pool.Config
		want string
	}{
		{pool.Config{KillGrace: time.Second}, "apply to Subprocess isolation only"},
		{pool.Config{WorkerCommand: []string{"x"}}, "apply to Subprocess isolation only"},
		{pool.Config{Isolation: pool.Subprocess, WorkerCommand: []string{}}, "WorkerCommand is empty"},
		{pool.Config{Isolation: pool.Subprocess, KillGrace: -1}, "KillGrace cannot be negative"},
		{pool.Config{Isolation: 7}, "unknown Isolation 7"},
	} {
		_, err := pool.New(e, c.cfg)
		assert.ErrorContains(t, err, c.want)
	}
}

// TestSubprocessWorkerProgramProblems: a pool that cannot get a working
// worker process fails New, saying what to do.
func TestSubprocessWorkerProgramProblems(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in programs below are Unix ones")
	}
	e := testEngine(t, engine.Config{}, nil)
	sub := func(argv ...string) error {
		p, err := pool.New(e, pool.Config{Isolation: pool.Subprocess, Workers: 1, WorkerCommand: argv})
		if err == nil {
			_ = p.Close()
		}
		return err
	}
	echo, err := exec.LookPath("echo")
	require.NoError(t, err)
	err = sub(echo, "I am not a worker")
	assert.ErrorContains(t, err, "does not speak the wasmpool worker protocol")
	assert.ErrorContains(t, err, `"I am not a worker\n"`, "it quotes what the program wrote")

	sh, err := exec.LookPath("sh")
	require.NoError(t, err)
	err = sub(sh, "-c", "echo 'wasmpool: unknown command worker' >&2; exit 2")
	assert.ErrorContains(t, err, "ended before the handshake (exit status 2); its last words on stderr: wasmpool: unknown command worker")

	err = sub("/no/such/program")
	assert.ErrorContains(t, err, "starting a worker process (/no/such/program)")

	t.Run("none at all", func(t *testing.T) {
		defer pool.ForgetServeChild()()
		t.Setenv("PATH", t.TempDir())
		_, err := pool.New(e, pool.Config{Isolation: pool.Subprocess, Workers: 1})
		require.ErrorIs(t, err, pool.ErrNoWorkerProgram)
		assert.ErrorContains(t, err, "call pool.ServeChild() as the first line of main")
		assert.ErrorContains(t, err, "go install github.com/wasmpool/wasmpool/cmd/wasmpool@latest")
	})
}

// TestSubprocessHostModulesMustBeGranted: host modules do not travel; a
// worker process that lacks one the engine grants is refused up front.
func TestSubprocessHostModulesMustBeGranted(t *testing.T) {
	kv := engine.HostModule{Name: "kv", Define: func(b wazero.HostModuleBuilder) {
		b.NewFunctionBuilder().WithFunc(func(context.Context) uint32 { return 0 }).Export("get")
	}}
	e := testEngine(t, engine.Config{HostModules: []engine.HostModule{kv}}, nil)
	_, err := pool.New(e, pool.Config{Isolation: pool.Subprocess, Workers: 1})
	assert.ErrorContains(t, err, `grants host module(s) kv, which this worker program does not: pass the same engine.HostModules to pool.ServeChild`)

	// The test's worker processes grant "test" (TestMain): that pool starts.
	p := subprocessPool(t, probeEngine(t, engine.Config{}), pool.Config{Workers: 1})
	assert.Len(t, p.WorkerPIDs(), 1)
}

// TestSubprocessTaskSettingsCrossOver: what a task may see (arguments,
// environment, mounts) and the engine's limits reach the worker process.
func TestSubprocessTaskSettingsCrossOver(t *testing.T) {
	e := testEngine(t, engine.Config{OutputLimitBytes: 100}, nil)
	ctx := within(t)
	hostile, wasicmd := goModule(t, e, "hostile"), goModule(t, e, "wasicmd")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.txt"), []byte("mounted"), 0o644))
	inProc := newPool(t, e, pool.Config{Workers: 1})
	sub := subprocessPool(t, e, pool.Config{Workers: 1})
	for _, task := range []engine.Task{
		{Module: wasicmd, Args: []string{"env"}, Env: map[string]string{"K": "V", "A": "B"}},
		{Module: wasicmd, Args: []string{"args", "x", "y z"}},
		{Module: wasicmd, Args: []string{"cat", "/data/f.txt"}, Mounts: []engine.Mount{{HostPath: dir, GuestPath: "/data", ReadOnly: true}}},
		{Module: wasicmd, Args: []string{"upper"}, Input: []byte("stdin")},
	} {
		want, err := inProc.Submit(ctx, task).Result(ctx)
		require.NoError(t, err)
		got, err := sub.Submit(ctx, task).Result(ctx)
		require.NoError(t, err)
		assert.NotEmpty(t, got.Output)
		assert.Equal(t, string(want.Output), string(got.Output), "%v", task.Args)
	}
	_, err := sub.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Input: make([]byte, 101)}).Result(ctx)
	assert.ErrorIs(t, err, engine.ErrOutputLimit)
}

// TestSubprocessRetiresAWorkerProcessAtHalfItsCPU: a worker process that has
// used half its CPU time limit is replaced between tasks, not killed in one.
func TestSubprocessRetiresAWorkerProcessAtHalfItsCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ProcessLimits are enforced on Linux only")
	}
	e := testEngine(t, engine.Config{}, nil)
	fib := goModule(t, e, "fib")
	ctx := within(t)
	// A worker process compiles a module its own way (no interrupt checks),
	// through the shared disk cache: on a fresh machine, under -race, that
	// first compile alone takes seconds of CPU. Pay it in a worker process
	// without limits, so the limited one spends its CPU on tasks.
	warm := subprocessPool(t, e, pool.Config{Workers: 1})
	_, err := warm.Submit(ctx, engine.Task{Module: fib, Func: "fib", Input: []byte("1")}).Result(ctx)
	require.NoError(t, err)
	require.NoError(t, warm.Close())

	p := subprocessPool(t, e, pool.Config{Workers: 1, ProcessLimits: pool.ProcessLimits{CPUTime: time.Second}})
	first := p.WorkerPIDs()[0]
	for i := 0; p.Stats().ProcessRestarts == 0; i++ {
		require.Less(t, i, 1000, "a second of CPU should have been spent long ago")
		_, err := p.Submit(ctx, engine.Task{Module: fib, Func: "fib", Input: []byte("27")}).Result(ctx)
		require.NoError(t, err)
	}
	assert.NotEqual(t, first, p.WorkerPIDs()[0])
	assert.Zero(t, p.Stats().ProcessCrashes)
	assert.Zero(t, p.Stats().Failed)
}
