package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/monotime"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
	"github.com/wasmpool/wasmpool/internal/workerproc"
)

// Pool runs tasks on a fixed set of workers. Submit and Map are safe for
// concurrent use; Shutdown and Close may be called more than once, from any
// goroutine, including from inside a future's OnDone callback.
type Pool struct {
	e     *engine.Engine
	cfg   Config
	queue chan *job

	// Submit holds mu for reading while it may send on queue; stopping takes
	// it for writing, after which no send can happen and the queue's content
	// is final.
	mu                            sync.RWMutex
	stopping                      bool
	stopCh                        chan struct{} // closed when Shutdown or Close begins: wakes blocked Submits
	drainCh                       chan struct{} // closed by Shutdown: workers finish the queue, then exit
	killCh                        chan struct{} // closed by Close: workers stop at once
	stopOnce, drainOnce, killOnce sync.Once

	broken atomic.Pointer[brokenError]

	watches ctxWatches // of the queued tasks' contexts

	shared  *engine.Runtime // Threads: the runtime every worker shares
	workers []*worker
	procs   *workerproc.Supervisor // Subprocess: the worker processes
	life    lifecycle
	stats   counters
}

// New starts a pool of workers running tasks on e. The pool does not own e:
// close the pool before closing the engine.
func New(e *engine.Engine, cfg Config) (*Pool, error) {
	if e == nil {
		return nil, errors.New("pool: the engine is nil")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{
		e:       e,
		cfg:     cfg,
		queue:   make(chan *job, cfg.QueueSize),
		stopCh:  make(chan struct{}),
		drainCh: make(chan struct{}),
		killCh:  make(chan struct{}),
	}
	p.life.changed = make(chan struct{})
	if cfg.Isolation == Subprocess {
		if err := p.startProcWorkers(); err != nil {
			return nil, err
		}
		return p, nil
	}
	ctx := context.Background()
	if cfg.Mode == Threads {
		if p.shared, err = e.NewRuntime(ctx); err != nil {
			return nil, fmt.Errorf("pool: %w", err)
		}
	}
	for i := range cfg.Workers {
		w := &worker{p: p, id: i, rt: p.shared}
		if cfg.Mode == Processes {
			if w.rt, err = e.NewRuntime(ctx); err != nil {
				for _, w := range p.workers {
					_ = w.rt.Close(ctx)
				}
				return nil, fmt.Errorf("pool: %w", err)
			}
		}
		p.workers = append(p.workers, w)
	}
	p.life.live = len(p.workers)
	for _, w := range p.workers {
		go w.loop()
	}
	return p, nil
}

// Workers is the number of workers.
func (p *Pool) Workers() int { return p.cfg.Workers }

// Mode is the pool's mode.
func (p *Pool) Mode() Mode { return p.cfg.Mode }

// Submit queues a task and returns its future at once, unless the queue is
// full: then it blocks until there is room or ctx ends (backpressure). ctx
// bounds the task's whole life, queued and running. Every error (ErrShutdown,
// a trap, a timeout...) arrives through the future.
func (p *Pool) Submit(ctx context.Context, t engine.Task) *future.Future[engine.Result] {
	f, prom := future.New[engine.Result]()
	p.stats.submitted.Add(1)
	j := &job{ctx: ctx, task: t, fut: f, prom: prom}
	if j.task.Timeout == 0 {
		j.task.Timeout = p.cfg.TaskTimeout
	}
	if j.task.Fuel == 0 {
		j.task.Fuel = p.cfg.TaskFuel
	}
	if j.task.Grants == nil && j.task.GrantArgs == nil {
		j.task.Grants, j.task.GrantArgs = p.cfg.Grants, p.cfg.GrantArgs
	}
	prom.BeforeDone(p.settled(j))
	if t.Module == nil {
		prom.Resolve(engine.Result{}, taskerr.NoModule)
		return f
	}
	if b := p.broken.Load(); b != nil {
		prom.Resolve(engine.Result{}, p.moduleErrFor(j.task, b))
		return f
	}
	if p.cfg.Isolation == Subprocess {
		if err := wire.StreamsError(&t, "a worker process"); err != nil {
			prom.Resolve(engine.Result{}, err)
			return f
		}
	}

	p.mu.RLock()
	if p.stopping {
		p.mu.RUnlock()
		prom.Resolve(engine.Result{}, p.moduleErrFor(j.task, ErrShutdown))
		return f
	}
	j.enqueued = monotime.Now()
	p.stats.queued.Add(1)
	if done := ctx.Done(); done != nil {
		// Armed before the send, which publishes the job to the worker
		// that ends the watch (ctxwatch.go).
		j.watched = true
		p.watches.watch(j, done)
	}
	// Room in the queue is the common case: send without the full select.
	select {
	case p.queue <- j:
		p.mu.RUnlock()
		return f
	default:
	}
	select {
	case p.queue <- j:
		p.mu.RUnlock()
	case <-ctx.Done():
		p.mu.RUnlock()
		p.stats.queued.Add(-1)
		prom.Resolve(engine.Result{}, queuedCtxErr(j))
	case <-p.stopCh:
		p.mu.RUnlock()
		p.stats.queued.Add(-1)
		prom.Resolve(engine.Result{}, p.moduleErrFor(j.task, ErrShutdown))
	}
	return f
}

// count keeps the statistics of a task as its future settles, before
// anyone can see its outcome: whoever gets a result sees it counted.
func (p *Pool) count(s future.State, err error) {
	switch outcomeOf(s, err) {
	case TaskSucceeded:
		p.stats.succeeded.Add(1)
	case TaskCancelled:
		p.stats.cancelled.Add(1)
	case TaskTimedOut:
		p.stats.timedOut.Add(1)
	default:
		p.stats.failed.Add(1)
	}
}

// moduleErrFor makes err name t's module, as every task error does.
func (p *Pool) moduleErrFor(t engine.Task, err error) error {
	return &engine.Error{Module: t.Module.Name(), Err: err}
}

func queuedCtxErr(j *job) error {
	name := j.task.Module.Name()
	if errors.Is(j.ctx.Err(), context.DeadlineExceeded) {
		return &engine.Error{Module: name, Err: fmt.Errorf("%w while queued: the context's deadline passed", engine.ErrTimeout)}
	}
	return &engine.Error{Module: name, Err: fmt.Errorf("%w while queued", engine.ErrCancelled)}
}

// Shutdown stops taking tasks and waits for the queued and running ones to
// finish. If ctx ends first, it cancels the queued tasks, interrupts the
// running ones and returns ctx.Err() at once, without waiting for the
// workers to stop (Close does).
//
// Called from inside a task's OnDone callback, it does not wait for that
// task's own worker (which would deadlock); the worker finishes the queue
// after the callback returns. Called from anywhere else, it returns only
// once every worker has stopped, so every callback run by a worker is over.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.stop()
	p.drainOnce.Do(func() { close(p.drainCh) })
	defer p.life.enterStop(p)()
	if err := p.life.wait(ctx); err != nil {
		// Like http.Server.Shutdown: the caller's deadline is the bound. What
		// is left is cancelled and interrupted, worker processes are stopped
		// (within their short grace), and workers stop on their own once
		// their interrupted tasks return; Close waits for that.
		p.kill()
		p.procs.StopAll()
		p.watches.stopAll()
		return err
	}
	p.procs.StopAll()
	p.watches.stopAll()
	return nil
}

// Close stops at once: queued tasks are cancelled, running ones interrupted
// (their error wraps ErrShutdown), and it waits for the workers to stop.
func (p *Pool) Close() error {
	p.stop()
	p.kill()
	defer p.life.enterStop(p)()
	err := p.life.wait(context.Background())
	p.procs.StopAll()
	p.watches.stopAll()
	return err
}

// stop makes every later Submit fail with ErrShutdown.
func (p *Pool) stop() {
	p.stopOnce.Do(func() {
		close(p.stopCh)
		p.mu.Lock()
		p.stopping = true
		// No Submit can send any more: closing the queue wakes the workers
		// waiting on it (see worker.loop), and its jobs can still be taken.
		close(p.queue)
		p.mu.Unlock()
	})
}

// kill interrupts running tasks and cancels queued ones.
func (p *Pool) kill() {
	p.killOnce.Do(func() {
		close(p.killCh)
		for _, w := range p.workers {
			w.interruptRunning(ErrShutdown)
		}
	})
	p.cancelQueued()
}

func (p *Pool) cancelQueued() {
	for {
		select {
		case j, ok := <-p.queue:
			if !ok {
				return
			}
			p.stats.queued.Add(-1)
			j.prom.Resolve(engine.Result{}, shutdownErr(j))
		default:
			return
		}
	}
}

// shutdownErr is the error of a queued task that Close (or a Shutdown whose
// context ended) cancelled: it matches engine.ErrCancelled and ErrShutdown,
// as a running task interrupted by Close does, and as the cluster's do.
func shutdownErr(j *job) error {
	return &engine.Error{Module: j.task.Module.Name(), Err: fmt.Errorf("%w while queued: %w", engine.ErrCancelled, ErrShutdown)}
}

// breakWith marks the pool broken: every queued and later task fails with
// ErrBroken naming the cause.
func (p *Pool) breakWith(cause error) *brokenError {
	b := &brokenError{cause: cause}
	if !p.broken.CompareAndSwap(nil, b) {
		return p.broken.Load()
	}
	for {
		select {
		case j, ok := <-p.queue:
			if !ok {
				return b
			}
			p.stats.queued.Add(-1)
			j.prom.Resolve(engine.Result{}, p.moduleErrFor(j.task, b))
		default:
			return b
		}
	}
}

type brokenError struct{ cause error }

func (b *brokenError) Error() string {
	return "pool is broken: its Init task failed: " + b.cause.Error()
}
func (b *brokenError) Unwrap() []error { return []error{ErrBroken, b.cause} }

// Stats is a snapshot of the pool's counters. Succeeded, Failed, Cancelled
// and TimedOut count finished tasks and do not overlap: a task that timed out
// is counted in TimedOut only.
type Stats struct {
	Submitted, Queued, Running, Succeeded, Failed, Cancelled, TimedOut int64
	// InstancesBuilt counts the instances built: one per task in Processes
	// mode (and for commands), one per warm instance in Threads mode.
	// WorkerRestarts counts the warm instances a Threads worker threw away
	// and rebuilt: after a task failed on one, or it reached
	// MaxTasksPerWorker (not those freed by IdleTimeout, nor worker
	// processes: see ProcessRestarts).
	InstancesBuilt, WorkerRestarts int64
	// WarmInstances is how many warm instances Threads workers hold right
	// now, each costing its linear memory: what IdleTimeout gives back.
	WarmInstances int64
	// Subprocess: worker processes that died on their own (a signal, an
	// exit, running out of memory, breaking the protocol), and those started
	// to replace one that died, was killed to stop a task, or was retired.
	ProcessCrashes, ProcessRestarts int64
}

type counters struct {
	submitted, queued, running, succeeded, failed, cancelled, timedOut, instancesBuilt, workerRestarts atomic.Int64
	warm, processCrashes, processRestarts                                                              atomic.Int64
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	c := &p.stats
	return Stats{
		Submitted: c.submitted.Load(), Queued: c.queued.Load(), Running: c.running.Load(),
		Succeeded: c.succeeded.Load(), Failed: c.failed.Load(), Cancelled: c.cancelled.Load(),
		TimedOut: c.timedOut.Load(), InstancesBuilt: c.instancesBuilt.Load(), WorkerRestarts: c.workerRestarts.Load(),
		WarmInstances:  c.warm.Load(),
		ProcessCrashes: c.processCrashes.Load(), ProcessRestarts: c.processRestarts.Load(),
	}
}
