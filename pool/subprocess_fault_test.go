//go:build unix

package pool_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// enteredSignal makes test.block announce itself, in the worker processes
// of pools created after it, and returns a function that waits for the
// next guest to enter it and returns the PID of its worker process.
func enteredSignal(t *testing.T) func() int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "entered")
	require.NoError(t, unix.Mkfifo(path, 0o600))
	t.Setenv(enteredEnv, path)
	return func() int {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			// Opening a FIFO to read blocks until a writer opens it: a
			// guest inside test.block.
			f, err := os.Open(path)
			if err != nil {
				got <- err.Error()
				return
			}
			defer f.Close()
			line, _ := bufio.NewReader(f).ReadString('\n')
			got <- strings.TrimSpace(line)
		}()
		select {
		case s := <-got:
			pid, err := strconv.Atoi(s)
			require.NoError(t, err, "test.block announced %q", s)
			return pid
		case <-within(t).Done():
			t.Fatal("no guest entered test.block")
			return 0
		}
	}
}

// gone reports whether the worker process of that PID is gone: no process
// has the PID, or one that is not ours (PIDs are reused, fast on a busy
// machine). A zombie still has it: a worker process the pool did not reap
// counts as left behind.
func gone(pid int) bool {
	if runtime.GOOS != "linux" {
		return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	// "PID (COMMAND) STATE PPID ...", where COMMAND may hold anything.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid())
}

func crashError(t *testing.T, err error) *pool.CrashError {
	t.Helper()
	require.ErrorIs(t, err, pool.ErrWorkerCrashed)
	var ce *pool.CrashError
	require.ErrorAs(t, err, &ce)
	var ee *engine.Error
	require.ErrorAs(t, err, &ee, "a crash names the module")
	return ce
}

// TestSubprocessSIGKILLFailsOnlyThatTask kills a worker process in the
// middle of a task: that future fails, saying so, and every other task
// completes on the other worker and on the replacement.
func TestSubprocessSIGKILLFailsOnlyThatTask(t *testing.T) {
	entered := enteredSignal(t)
	e := probeEngine(t, engine.Config{})
	p := subprocessPool(t, e, pool.Config{Workers: 2})
	probe, fib := watModule(t, e, "childprobe"), goModule(t, e, "fib")
	ctx := within(t)

	victim := p.Submit(ctx, engine.Task{Module: probe, Func: "block"})
	pid := entered()
	var others []*future.Future[engine.Result]
	for range 20 {
		others = append(others, p.Submit(ctx, engine.Task{Module: fib, Func: "fib", Input: []byte("15")}))
	}
	require.NoError(t, unix.Kill(pid, unix.SIGKILL))

	_, err := victim.Result(ctx)
	ce := crashError(t, err)
	assert.Equal(t, pid, ce.PID)
	assert.Equal(t, "SIGKILL", ce.Signal)
	assert.Equal(t, "block", ce.Func)
	assert.Contains(t, err.Error(), "killed by signal SIGKILL")
	assert.Contains(t, err.Error(), `module "childprobe.wasm"`)
	for _, f := range others {
		res, err := f.Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "610", string(res.Output))
	}
	require.NoError(t, p.Shutdown(ctx))
	st := p.Stats()
	assert.Equal(t, int64(1), st.ProcessCrashes)
	assert.Equal(t, int64(1), st.ProcessRestarts)
	assert.Equal(t, int64(20), st.Succeeded)
	assert.Equal(t, int64(1), st.Failed)
	assert.True(t, gone(pid))
}

// TestSubprocessDeathsSayWhatHappened: an exit, a Go runtime fatal error and
// a worker process killed while idle each fail at most the task running.
func TestSubprocessDeathsSayWhatHappened(t *testing.T) {
	e := probeEngine(t, engine.Config{})
	p := subprocessPool(t, e, pool.Config{Workers: 1})
	probe, upper := watModule(t, e, "childprobe"), goModule(t, e, "upper")
	ctx := within(t)
	ok := func() {
		t.Helper()
		res, err := p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("ok")}).Result(ctx)
		require.NoError(t, err, "the replacement runs tasks")
		assert.Equal(t, "OK", string(res.Output))
	}

	_, err := p.Submit(ctx, engine.Task{Module: probe, Func: "exit"}).Result(ctx)
	ce := crashError(t, err)
	assert.Equal(t, "exit status 3", ce.Exit)
	assert.Contains(t, ce.Stderr, "exiting with status 3 on purpose")
	assert.Contains(t, err.Error(), "exiting with status 3 on purpose", "the message quotes its last words")
	ok()

	_, err = p.Submit(ctx, engine.Task{Module: probe, Func: "fatal"}).Result(ctx)
	ce = crashError(t, err)
	assert.Equal(t, "exit status 2", ce.Exit)
	// The runtime's last words, not the goroutine dump after them.
	assert.True(t, strings.HasPrefix(ce.Stderr, "runtime: goroutine stack exceeds 1048576-byte limit\n"), ce.Stderr)
	assert.True(t, strings.HasSuffix(ce.Stderr, "\nfatal error: stack overflow"), ce.Stderr)
	ok()

	// Killed between tasks: no task fails, the next one runs on its
	// replacement. (A task handed to it as it dies would fail: the test
	// waits until the pool has seen it go.)
	pid := p.WorkerPIDs()[0]
	require.NoError(t, unix.Kill(pid, unix.SIGKILL))
	require.Eventually(t, func() bool { return !slices.Contains(p.WorkerPIDs(), pid) }, time.Minute, time.Millisecond)
	ok()
	assert.True(t, gone(pid))

	st := p.Stats()
	assert.Equal(t, int64(3), st.ProcessCrashes)
	assert.Equal(t, int64(3), st.ProcessRestarts)
	assert.Equal(t, int64(2), st.Failed)
}

// TestSubprocessTaskForADeadWorkerProcessGoesToTheNext: a worker process
// that dies just before the pool hands it a task (too late for the pool to
// see, the worker is busy) costs that task nothing: it goes to a fresh one.
func TestSubprocessTaskForADeadWorkerProcessGoesToTheNext(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := subprocessPool(t, e, pool.Config{Workers: 1})
	hostile := goModule(t, e, "hostile")
	ctx := within(t)
	const rounds = 8
	for range rounds {
		first := p.Submit(ctx, engine.Task{Module: hostile, Func: "sleep", Input: []byte("20ms")})
		next := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Input: []byte("next")})
		// The callback runs on the worker as it finishes the first task:
		// the worker process dies (and is reaped) while the worker cannot
		// notice, with the next task already queued. Which the worker sees
		// first, the death or the task, is up to the scheduler: over the
		// rounds, both happen.
		first.OnDone(func(*future.Future[engine.Result]) {
			pid := p.WorkerPIDs()[0]
			_ = unix.Kill(pid, unix.SIGKILL)
			for deadline := time.Now().Add(time.Minute); !gone(pid) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		})
		_, err := first.Result(ctx)
		require.NoError(t, err)
		res, err := next.Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "next", string(res.Output))
	}
	st := p.Stats()
	assert.Equal(t, int64(rounds), st.ProcessCrashes)
	assert.Equal(t, int64(rounds), st.ProcessRestarts)
	assert.Zero(t, st.Failed)
}

// TestSubprocessGarbageReplacesWorker: a worker process that writes garbage
// (or a malformed frame) where the protocol runs is killed and replaced; the
// pool reads no more of it than its frame limit.
func TestSubprocessGarbageReplacesWorker(t *testing.T) {
	e := probeEngine(t, engine.Config{})
	p := subprocessPool(t, e, pool.Config{Workers: 1})
	probe, upper := watModule(t, e, "childprobe"), goModule(t, e, "upper")
	ctx := within(t)
	for _, c := range []struct{ fn, says string }{
		{"garbage", "too large"},
		{"badframe", "malformed"},
	} {
		t.Run(c.fn, func(t *testing.T) {
			pid := p.WorkerPIDs()[0]
			_, err := p.Submit(ctx, engine.Task{Module: probe, Func: c.fn}).Result(ctx)
			ce := crashError(t, err)
			assert.Equal(t, pid, ce.PID)
			assert.Contains(t, ce.Reason, "broke the worker protocol")
			assert.Contains(t, ce.Reason, c.says)
			assert.Equal(t, "SIGKILL", ce.Signal, "the pool killed it")

			res, err := p.Submit(ctx, engine.Task{Module: upper, Func: "upper", Input: []byte("next")}).Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, "NEXT", string(res.Output))
			assert.NotEqual(t, pid, p.WorkerPIDs()[0], "replaced")
			assert.True(t, gone(pid))
		})
	}
	assert.Equal(t, int64(2), p.Stats().ProcessCrashes)
}

// TestSubprocessTimeoutStopsAGoGuestLoop: a Go guest spinning without end
// is stopped by its timeout. Its worker process stops it, as a pool in
// process would, and lives on; only with the engine's NoInterrupt, which
// leaves the guest no way to be stopped, is the worker process killed.
func TestSubprocessTimeoutStopsAGoGuestLoop(t *testing.T) {
	cases := []struct {
		noInterrupt bool
		says        string
		restarts    int64
	}{
		{false, `module "hostile.wasm": function "spin" timed out after 200ms`, 0},
		{true, `module "hostile.wasm": function "spin" timed out after 200ms; its worker process was killed to stop it`, 1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("NoInterrupt=%v", c.noInterrupt), func(t *testing.T) {
			e := testEngine(t, engine.Config{NoInterrupt: c.noInterrupt}, nil)
			// The grace is long where the worker process stops the guest
			// itself: a kill would show.
			grace := time.Hour
			if c.noInterrupt {
				grace = 20 * time.Millisecond
			}
			p := subprocessPool(t, e, pool.Config{Workers: 1, KillGrace: grace})
			hostile := goModule(t, e, "hostile")
			ctx := within(t)
			pid := p.WorkerPIDs()[0]
			// A warm instance: the timeout then runs out in the loop, not
			// while the worker process instantiates (slow under the race
			// detector).
			_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo"}).Result(ctx)
			require.NoError(t, err)

			res, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "spin", Timeout: 200 * time.Millisecond}).Result(ctx)
			require.ErrorIs(t, err, engine.ErrTimeout)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, pool.ErrWorkerCrashed, "a kill to enforce a timeout is not a crash")
			assert.Equal(t, c.says, err.Error())
			assert.Empty(t, res.Output)

			res, err = p.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Input: []byte("after")}).Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, "after", string(res.Output))
			assert.Equal(t, c.noInterrupt, gone(pid), "killed only when the guest cannot be stopped otherwise")
			st := p.Stats()
			assert.Equal(t, int64(1), st.TimedOut)
			assert.Equal(t, c.restarts, st.ProcessRestarts)
			assert.Zero(t, st.ProcessCrashes)
		})
	}
}

// TestSubprocessCancelStopsAGoGuestLoop: Future.Cancel and a Submit context
// that ends stop a spinning guest too. (Whether its worker process got the
// task before the stop, and was killed, or not yet, is up to timing here;
// TestSubprocessTimeoutStopsAGoGuestLoop pins down the kill.)
func TestSubprocessCancelStopsAGoGuestLoop(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil)
	p := subprocessPool(t, e, pool.Config{Workers: 1, KillGrace: 20 * time.Millisecond})
	hostile := goModule(t, e, "hostile")
	ctx := within(t)
	spin := engine.Task{Module: hostile, Func: "spin"}
	echo := func() {
		t.Helper()
		res, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo", Input: []byte("still here")}).Result(ctx)
		require.NoError(t, err)
		assert.Equal(t, "still here", string(res.Output))
	}

	f := p.Submit(ctx, spin)
	require.Eventually(t, func() bool { return f.State() == future.Running }, time.Minute, time.Millisecond)
	require.True(t, f.Cancel())
	_, err := f.Result(ctx)
	require.ErrorIs(t, err, context.Canceled)
	echo()

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = p.Submit(short, spin).Result(ctx)
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), `function "spin" timed out: the context's deadline passed`)
	echo()

	st := p.Stats()
	assert.LessOrEqual(t, st.ProcessRestarts, int64(2), "at most one kill per stop")
	assert.Zero(t, st.ProcessCrashes)
}

// TestSubprocessGracefulStop: a guest blocked in a host function is stopped
// by its worker process, when its timeout passes or the pool closes, and
// the worker process is not replaced.
func TestSubprocessGracefulStop(t *testing.T) {
	entered := enteredSignal(t)
	e := probeEngine(t, engine.Config{})
	// A kill would take a minute: the test would time out.
	p := subprocessPool(t, e, pool.Config{Workers: 1, KillGrace: time.Hour})
	probe := watModule(t, e, "childprobe")
	ctx := within(t)
	pid := p.WorkerPIDs()[0]
	f := p.Submit(ctx, engine.Task{Module: probe, Func: "block", Timeout: 50 * time.Millisecond})
	assert.Equal(t, pid, entered())
	_, err := f.Result(ctx)
	require.ErrorIs(t, err, engine.ErrTimeout)
	assert.Equal(t, `module "childprobe.wasm": function "block" timed out after 50ms`, err.Error())

	f = p.Submit(ctx, engine.Task{Module: probe, Func: "block"})
	assert.Equal(t, pid, entered())
	require.NoError(t, p.Close())
	_, err = f.Result(ctx)
	require.ErrorIs(t, err, pool.ErrShutdown)
	assert.ErrorIs(t, err, engine.ErrCancelled)
	assert.Equal(t, `module "childprobe.wasm": function "block" was cancelled: pool is shut down`, err.Error())
	assert.Zero(t, p.Stats().ProcessRestarts, "the worker process was never replaced")
	assert.True(t, gone(pid))
}

// TestSubprocessHostBlowupsStayOutOfTheParent: unbounded recursion (which
// costs the host hundreds of MB of stack before wazero calls it an overflow)
// and a memory bomb happen in the worker process: this process's heap does
// not grow.
func TestSubprocessHostBlowupsStayOutOfTheParent(t *testing.T) {
	e := testEngine(t, engine.Config{}, nil) // 256 MiB of guest memory
	p := subprocessPool(t, e, pool.Config{Workers: 1})
	recurse, hostile := watModule(t, e, "recurse"), goModule(t, e, "hostile")
	ctx := within(t)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := p.Submit(ctx, engine.Task{Module: recurse, Func: "run"}).Result(ctx)
	var trap *engine.TrapError
	t.Logf("the recursion: %v", err)
	switch {
	case errors.As(err, &trap):
		assert.Equal(t, engine.TrapStackOverflow, trap.Kind)
	default:
		// Linux: the address-space limit stops the host's stack first.
		ce := crashError(t, err)
		assert.True(t, ce.OutOfMemory, "%v", err)
		assert.ErrorIs(t, err, engine.ErrMemoryLimit)
	}
	_, err = p.Submit(ctx, engine.Task{Module: hostile, Func: "membomb"}).Result(ctx)
	require.ErrorIs(t, err, engine.ErrMemoryLimit)
	runtime.ReadMemStats(&after)

	// In this process the two would allocate 1.2 GB of wazero stack and
	// 256 MiB of linear memory.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(32<<20), "bytes allocated by this process meanwhile")
	assert.Less(t, after.HeapSys, before.HeapSys+32<<20, "this process's heap")
}

// TestSubprocessLeavesNoProcessBehind: however a pool ends, every worker
// process it started is gone (and reaped) when Shutdown or Close returns.
func TestSubprocessLeavesNoProcessBehind(t *testing.T) {
	e := probeEngine(t, engine.Config{})
	probe, hostile := watModule(t, e, "childprobe"), goModule(t, e, "hostile")
	spin := engine.Task{Module: hostile, Func: "spin"}
	cases := []struct {
		name string
		end  func(t *testing.T, p *pool.Pool)
	}{
		{"Shutdown when idle", func(t *testing.T, p *pool.Pool) { require.NoError(t, p.Shutdown(within(t))) }},
		{"Close while spinning", func(t *testing.T, p *pool.Pool) {
			f := p.Submit(context.Background(), spin)
			require.Eventually(t, func() bool { return f.State() == future.Running }, time.Minute, time.Millisecond)
			require.NoError(t, p.Close())
			_, err := f.Result(within(t))
			assert.ErrorIs(t, err, pool.ErrShutdown)
		}},
		{"Shutdown that runs out of time", func(t *testing.T, p *pool.Pool) {
			f := p.Submit(context.Background(), engine.Task{Module: probe, Func: "block"})
			require.Eventually(t, func() bool { return f.State() == future.Running }, time.Minute, time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			assert.ErrorIs(t, p.Shutdown(ctx), context.DeadlineExceeded)
		}},
		{"context cancelled mid-task, then Close", func(t *testing.T, p *pool.Pool) {
			ctx, cancel := context.WithCancel(context.Background())
			fs := []*future.Future[engine.Result]{p.Submit(ctx, spin), p.Submit(ctx, spin), p.Submit(ctx, spin)}
			require.Eventually(t, func() bool { return fs[0].State() == future.Running && fs[1].State() == future.Running },
				time.Minute, time.Millisecond)
			cancel()
			require.NoError(t, p.Close())
			for _, f := range fs {
				_, err := f.Result(within(t))
				assert.ErrorIs(t, err, context.Canceled)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := subprocessPool(t, e, pool.Config{Workers: 2, KillGrace: 20 * time.Millisecond})
			pids := p.WorkerPIDs()
			require.Len(t, pids, 2)
			c.end(t, p)
			assert.Empty(t, p.WorkerPIDs())
			for _, pid := range pids {
				assert.True(t, gone(pid), "worker process %d is left behind", pid)
			}
		})
	}
	_ = syscall.Getpid
}

// issue 13: a worker process the pool stops on purpose (here a Shutdown
// whose context ends, with a guest that cannot be stopped) was counted in
// ProcessCrashes, and its task could fail with ErrWorkerCrashed. Its task
// ends as Shutdown's cancel, and no crash is counted. (Which of the ways
// the stop can go is up to timing here: workerproc's
// TestAStopOnPurposeIsNoCrash pins each down.)
func TestSubprocessStoppedOnPurposeIsNoCrash(t *testing.T) {
	e := testEngine(t, engine.Config{NoInterrupt: true}, nil)
	// The grace outlasts the test: only Shutdown's stop can end the spin.
	p := subprocessPool(t, e, pool.Config{Workers: 1, KillGrace: time.Hour})
	hostile := goModule(t, e, "hostile")
	ctx := within(t)
	_, err := p.Submit(ctx, engine.Task{Module: hostile, Func: "echo"}).Result(ctx)
	require.NoError(t, err)
	f := p.Submit(ctx, engine.Task{Module: hostile, Func: "spin"})
	require.Eventually(t, func() bool { return f.State() == future.Running }, time.Minute, time.Millisecond)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Shutdown(short), context.DeadlineExceeded)
	_, err = f.Result(ctx)
	require.ErrorIs(t, err, pool.ErrShutdown)
	assert.ErrorIs(t, err, engine.ErrCancelled)
	assert.NotErrorIs(t, err, pool.ErrWorkerCrashed, "the pool stopped it on purpose")
	require.NoError(t, p.Close())
	assert.Zero(t, p.Stats().ProcessCrashes)
}
