package pool

import (
	"context"
	"errors"
	"os"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/workerproc"
)

// ServeChild lets this program be its own worker process. Call it as the
// first line of main: when a Subprocess pool starts the program as a worker
// process, ServeChild serves tasks until the pool is done with it, then
// exits the process; otherwise it returns at once, and Subprocess pools in
// this program start it (re-executed with a marker argument) as their
// worker processes.
//
//	func main() {
//		pool.ServeChild()
//		... // the program as usual
//	}
//
// Host modules are Go functions that no pool can send to another process:
// a program whose engine grants host modules passes the same ones here, and
// they run in the worker process (a pool refuses a worker process that does
// not grant every host module its engine does).
//
// Without the call, a Subprocess pool falls back to the wasmpool CLI on PATH
// (which grants no host modules), or to Config.WorkerCommand.
func ServeChild(hostModules ...engine.HostModule) {
	ServeChildWith(ChildHost{HostModules: hostModules})
}

// ChildHost is what a program's worker processes provide their engines
// with: the Go functions of host modules and capabilities, which cannot be
// sent from the pool. A worker process gives its engine those of its own
// that the pool's engine names; a task granting a capability the worker
// process lacks fails with engine.ErrNoCapability.
type ChildHost struct {
	HostModules  []engine.HostModule
	Capabilities []engine.Capability
}

// ServeChildWith is ServeChild for a program whose engine also provides
// capabilities (engine.Config.Capabilities).
func ServeChildWith(h ChildHost) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(RunChildWith(h))
	}
	canServeChild.Store(true)
}

// RunChild serves as a worker process over stdin and stdout until the pool
// closes stdin, and returns the exit status for the process: for programs
// that start their worker processes their own way (the wasmpool CLI's
// hidden "worker --child" command calls it). Most programs call ServeChild.
func RunChild(hostModules ...engine.HostModule) int {
	return RunChildWith(ChildHost{HostModules: hostModules})
}

// RunChildWith is RunChild for a program that also provides capabilities.
func RunChildWith(h ChildHost) int {
	return workerproc.Serve(workerproc.Host{HostModules: h.HostModules, Capabilities: h.Capabilities}, newChildRunner)
}

// childRunner is the pool of one worker that runs a worker process's tasks.
type childRunner struct{ p *Pool }

func newChildRunner(e *engine.Engine, cfg workerproc.PoolConfig) (workerproc.Runner, error) {
	p, err := New(e, Config{Mode: Mode(cfg.Mode), Workers: 1, QueueSize: 1,
		MaxTasksPerWorker: cfg.MaxTasksPerWorker, IdleTimeout: cfg.IdleTimeout, Init: cfg.Init})
	if err != nil {
		return nil, err
	}
	return childRunner{p}, nil
}

func (r childRunner) Run(ctx context.Context, t engine.Task) workerproc.Outcome {
	res, err := r.p.Submit(ctx, t).Result(context.Background())
	err = future.Cause(err)
	var b *brokenError
	if errors.As(err, &b) {
		return workerproc.Outcome{Result: res, Err: b.cause, Broken: true}
	}
	return workerproc.Outcome{Result: res, Err: err}
}

func (r childRunner) Counters() (int64, int64) {
	st := r.p.Stats()
	return st.InstancesBuilt, st.WorkerRestarts
}

func (r childRunner) Close() error { return r.p.Close() }
