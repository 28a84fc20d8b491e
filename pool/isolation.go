package pool

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/wasmpool/wasmpool/internal/workerproc"
)

// Isolation says where a pool's guest code runs.
type Isolation int

const (
	// InProcess runs guest code in this process, on goroutines: the
	// cheapest, and the sandbox holds for everything the guest can do. But
	// a fault of the host's own (a Go runtime fatal error, an out-of-memory
	// kill, a recursion that takes hundreds of MB of host stack first) takes
	// down the whole process.
	InProcess Isolation = iota
	// Subprocess runs each worker in a worker process of its own, started
	// and supervised by the pool, with the same two Modes inside and the
	// same futures outside. The worker process runs guests with this
	// engine's configuration: a timeout or a cancel stops the guest there,
	// and the pool kills the worker process (and starts a fresh one) only
	// if the task has not stopped within KillGrace: a guest blocked in a
	// host function, or run with engine.Config.NoInterrupt. A worker
	// process that dies fails only the task it was running
	// (ErrWorkerCrashed), and the kernel holds each one to ProcessLimits.
	// A task costs a round trip over a pipe, shared by the tasks of a batch
	// when many are queued.
	//
	// The worker process is this program itself when its main calls
	// ServeChild, else the wasmpool CLI on PATH, or Config.WorkerCommand.
	// Host modules (engine.Config.HostModules) are Go functions, which
	// cannot be sent to another process: the worker process must grant them
	// itself, by passing them to ServeChild. Nor can a command's streams
	// (engine.Task.Stdin, Stdout, Stderr) cross: such a task fails with an
	// error matching errors.ErrUnsupported.
	Subprocess
)

// String is the isolation as the CLI spells it: "in-process" or
// "subprocess" (one OS process per worker; not to be confused with Mode
// Processes, a fresh instance per task, which either isolation runs).
func (i Isolation) String() string {
	switch i {
	case InProcess:
		return "in-process"
	case Subprocess:
		return "subprocess"
	}
	return fmt.Sprintf("Isolation(%d)", int(i))
}

// ParseIsolation reads an isolation as the CLI spells it: "in-process" (or
// "none") and "subprocess" (or "process", as earlier versions spelled it).
func ParseIsolation(s string) (Isolation, error) {
	switch s {
	case "in-process", "inprocess", "none":
		return InProcess, nil
	case "subprocess", "process":
		return Subprocess, nil
	}
	return 0, fmt.Errorf("unknown isolation %q: want in-process or subprocess", s)
}

// ProcessLimits are limits the kernel enforces on each worker process of a
// Subprocess pool: the backstop that stops a guest, or the runtime running
// it, when everything else has failed, even with this process gone. They
// are set with setrlimit by the worker process on itself, before it runs
// any guest code, and are enforced on Linux only: elsewhere the defaults
// mean none, and setting one is an error.
type ProcessLimits struct {
	// AddressSpace is how much virtual memory a worker process may map
	// beyond what it had mapped once started (RLIMIT_AS). Counting from
	// there leaves out what the Go runtime reserves up front, which no
	// limit could undercut: measured on linux/amd64 with Go 1.26, a worker
	// process maps 1.5 GiB before its first task, 80-160 MiB more to run a
	// Go guest, and a guest that grows its memory to the engine's limit L
	// makes it map up to about 3L more (the old and the new buffer while it
	// grows, and garbage not yet collected: 740 MiB for L = 256 MiB).
	// 0 derives the limit from the engine: 3L plus 512 MiB for compiled
	// code, wazero's stacks and the Go heap's own growth. Negative means no
	// limit. A worker process that reaches it dies for want of memory: the
	// task it ran fails with an error matching both ErrWorkerCrashed and
	// engine.ErrMemoryLimit. (A worker process built with the race
	// detector gets 5 times as much, for the detector's shadow memory.)
	AddressSpace int64
	// CPUTime is the CPU time any one task can count on in a worker
	// process (RLIMIT_CPU). The kernel counts a process's CPU time over its
	// whole life, so the limit is set to twice this, and the pool replaces a
	// worker process between tasks once it has used CPUTime: a task is
	// killed after between one and two CPUTimes. Rounded up to whole
	// seconds. 0 means one hour; negative means no limit.
	CPUTime time.Duration
}

const (
	defaultKillGrace     = 100 * time.Millisecond
	defaultCPUTime       = time.Hour
	addressSpaceHeadroom = 512 << 20
	noLimit              = -1
)

func (c Config) checkIsolation() []error {
	var errs []error
	switch c.Isolation {
	case InProcess:
		if c.WorkerCommand != nil || c.KillGrace != 0 || c.ProcessLimits != (ProcessLimits{}) {
			errs = append(errs, errors.New("WorkerCommand, KillGrace and ProcessLimits apply to Subprocess isolation only"))
		}
	case Subprocess:
		if c.WorkerCommand != nil && (len(c.WorkerCommand) == 0 || c.WorkerCommand[0] == "") {
			errs = append(errs, errors.New("WorkerCommand is empty: want the program and its arguments, or nil to pick one"))
		}
		if c.KillGrace < 0 {
			errs = append(errs, errors.New("KillGrace cannot be negative"))
		}
		l := c.ProcessLimits
		if !workerproc.LimitsSupported && (l.AddressSpace > 0 || l.CPUTime > 0) {
			errs = append(errs, fmt.Errorf("ProcessLimits are enforced on Linux only, not on %s: leave them 0", runtime.GOOS))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown Isolation %d", int(c.Isolation)))
	}
	return errs
}

// childLimits turns the pool's ProcessLimits into what the child sets on
// itself.
func (c Config) childLimits(memoryLimit uint64) workerproc.Limits {
	l := workerproc.Limits{AddressSpace: noLimit, CPUSeconds: noLimit}
	if !workerproc.LimitsSupported {
		return l
	}
	switch as := c.ProcessLimits.AddressSpace; {
	case as > 0:
		l.AddressSpace = as
	case as == 0:
		l.AddressSpace = int64(3*memoryLimit) + addressSpaceHeadroom
	}
	cpu := c.ProcessLimits.CPUTime
	if cpu == 0 {
		cpu = defaultCPUTime
	}
	if cpu > 0 {
		secs := int64((cpu + time.Second - 1) / time.Second)
		l.CPUSeconds = 2 * secs
	}
	return l
}

// ErrNoWorkerProgram is the error of pool.New for a Subprocess pool when
// there is no program to run as its worker processes.
var ErrNoWorkerProgram = errors.New("no worker program for Subprocess isolation")

// childArg is the argument that tells a program calling ServeChild that it
// was started as a worker process.
const childArg = "--wasmpool-child"

// canServeChild records that this program's main called ServeChild: the
// program can then be its own worker process.
var canServeChild atomic.Bool

// workerCommand is the command line of the pool's worker processes.
func (c Config) workerCommand() ([]string, error) {
	if c.WorkerCommand != nil {
		return c.WorkerCommand, nil
	}
	if canServeChild.Load() {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("pool: finding this program to start it as a worker process: %w", err)
		}
		return []string{self, childArg}, nil
	}
	if cli, err := exec.LookPath("wasmpool"); err == nil {
		return []string{cli, "worker", "--child"}, nil
	}
	return nil, fmt.Errorf("pool: %w: call pool.ServeChild() as the first line of main, so that this "+
		"program can be its own worker process; or put the wasmpool CLI on PATH "+
		"(go install github.com/wasmpool/wasmpool/cmd/wasmpool@latest); or set Config.WorkerCommand", ErrNoWorkerProgram)
}
