package pool

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// Mode chooses how workers hold their sandboxes.
type Mode int

const (
	// Threads shares one runtime among all workers, and each worker keeps a
	// warm instance per module that it reuses across tasks: a task costs a
	// function call, and state may carry over like a thread's globals.
	Threads Mode = iota
	// Processes gives each worker its own runtime and every task a fresh
	// instance: a task costs an instantiation, and nothing of one task
	// survives into the next.
	Processes
)

func (m Mode) String() string {
	switch m {
	case Threads:
		return "threads"
	case Processes:
		return "processes"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads a mode as the CLI spells it: "thread(s)" or "process(es)".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "thread", "threads":
		return Threads, nil
	case "process", "processes":
		return Processes, nil
	}
	return 0, fmt.Errorf("unknown mode %q: want thread or process", s)
}

// Config configures a Pool. The zero value is a thread-like pool with one
// worker per CPU.
type Config struct {
	Mode              Mode
	Workers           int           // 0 means runtime.GOMAXPROCS(0); negative is an error
	QueueSize         int           // queued tasks before Submit blocks (backpressure); 0 means 64 × Workers
	TaskTimeout       time.Duration // default for tasks without their own; 0 means none
	TaskFuel          uint64        // default engine.Task.Fuel for tasks without their own; 0 means none
	MaxTasksPerWorker int           // Threads: rebuild a worker's instance after N tasks; 0 means never
	// Grants and GrantArgs are the default engine.Task.Grants and
	// GrantArgs, for tasks that set neither: the capabilities every task
	// of the pool may call.
	Grants    []string
	GrantArgs map[string][]string
	// Init is called once on every new instance before its first task: on
	// those of Init.Module, or, with Init.Module nil, of every module that
	// exports Init.Func (a module that does not is left alone). It runs with
	// the task's arguments, environment and mounts, under its own Timeout
	// (0: TaskTimeout) and Fuel (0: TaskFuel), and within the Timeout of the
	// task it runs for, which bounds all that is done for the task. A
	// failure of the module's own (a trap, a failure the guest reports, an
	// exit, a missing export, a limit) breaks the pool: every task then
	// fails with ErrBroken, naming the cause. Any other (Init's timeout, a
	// cancel, a crash of the worker process) fails only that task.
	Init *engine.Task
	// IdleTimeout frees a Threads worker's warm instances after they sat
	// unused this long, giving their memory back: each on its own, however
	// busy the worker is with other modules. 0 keeps them, but for those of
	// modules the engine evicted or closed (see engine.Config.MaxModules),
	// which a worker drops always.
	IdleTimeout time.Duration

	// Isolation says where guest code runs: in this process (InProcess, the
	// default) or in one worker process per worker (Subprocess), where a
	// host-level fault cannot reach this process and a timeout kills the
	// worker process instead of slowing every guest down. See Isolation.
	Isolation Isolation
	// WorkerCommand is the program and arguments that start a worker
	// process (Subprocess). nil picks one: this program itself if its main
	// calls ServeChild, else the wasmpool CLI found on PATH.
	WorkerCommand []string
	// KillGrace is how long a worker process has to stop a timed-out or
	// cancelled task on its own (a guest blocked in a host function can)
	// before it is killed and replaced (Subprocess). 0 means 100ms.
	KillGrace time.Duration
	// ProcessLimits are what the OS enforces on each worker process
	// (Subprocess, Linux): see ProcessLimits.
	ProcessLimits ProcessLimits

	// OnTaskDone, if set, is told of every task as it finishes, however it
	// ends, before its future shows the outcome (as Stats count it): what
	// package metrics feeds its histograms and per-kind counters with. It
	// runs on the goroutine that settles the future, often a worker's: it
	// must be quick, and must not block on the pool. A panic in it is
	// recovered and reported (future.SetPanicHandler).
	OnTaskDone func(TaskEvent)
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Mode != Threads && c.Mode != Processes {
		errs = append(errs, fmt.Errorf("unknown Mode %d", int(c.Mode)))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("Workers is %d: want 0 (one per CPU) or more", c.Workers))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("QueueSize is %d: want 0 (the default) or more", c.QueueSize))
	}
	if c.TaskTimeout < 0 || c.IdleTimeout < 0 || c.MaxTasksPerWorker < 0 {
		errs = append(errs, errors.New("TaskTimeout, IdleTimeout and MaxTasksPerWorker cannot be negative"))
	}
	if c.Init != nil && c.Init.Func == "" {
		errs = append(errs, errors.New("Init needs a Func: the export to call on every new instance"))
	}
	errs = append(errs, c.checkIsolation()...)
	if len(errs) > 0 {
		return c, fmt.Errorf("pool: invalid config: %w", errors.Join(errs...))
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.QueueSize == 0 {
		c.QueueSize = 64 * c.Workers
	}
	if c.Isolation == Subprocess && c.KillGrace == 0 {
		c.KillGrace = defaultKillGrace
	}
	return c, nil
}
