package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/monotime"
)

// job is one submitted task on its way through the pool.
type job struct {
	ctx      context.Context
	task     engine.Task
	fut      *future.Future[engine.Result]
	prom     *future.Promise[engine.Result]
	enqueued time.Time
	wait     time.Duration // how long it was queued, once a worker took it

	// watched: the task's context can end, so it has a queued-context
	// watch (ctxwatch.go) until a worker takes it; set before it is queued.
	// The watch's links are the watches' own, under their lock.
	watched              bool
	watch                *ctxWatch
	watchPrev, watchNext *job

	mu          sync.Mutex
	target      interrupter // what stops the task while it runs
	interrupted error       // why it was interrupted, once it was
	ran         ran         // for Config.OnTaskDone: see recordRun
}

// interrupter is whatever can stop a running task: the warm instance during
// a call (engine.Instance.Interrupt), or the cancel of the context a fresh
// instance is being built and run under. Interrupting the instance directly
// is what spares every warm call a context of its own.
type interrupter interface{ Interrupt(cause error) }

// cancelTarget adapts a context's cancel to interrupter.
type cancelTarget context.CancelCauseFunc

func (c cancelTarget) Interrupt(cause error) { c(cause) }

// interrupt stops the task: at once if it is running, or as soon as a worker
// binds it to what runs it.
//
// The target is stopped under the job's lock, which unbind takes too: once
// unbind has returned, no interrupt of this job can reach what ran it. In
// Threads mode that is the worker's warm instance, which goes on to run the
// next job: an interrupt that read the target, let go of the lock, and
// only then stopped it could break an innocent task.
func (j *job) interrupt(cause error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.interrupted == nil {
		j.interrupted = cause
	}
	if j.target != nil {
		testHookInterrupting()
		j.target.Interrupt(cause)
	}
}

// testHookInterrupting is called by interrupt between finding what runs the
// job and stopping it: the test of that race holds it there.
var testHookInterrupting = func() {}

// bind makes t what interrupt stops, and stops it at once if the job was
// interrupted before. unbind must follow before t serves another job.
func (j *job) bind(t interrupter) {
	j.mu.Lock()
	j.target = t
	cause := j.interrupted
	j.mu.Unlock()
	if cause != nil {
		t.Interrupt(cause)
	}
}

func (j *job) unbind() {
	j.mu.Lock()
	j.target = nil
	j.mu.Unlock()
}

type worker struct {
	p       *Pool
	id      int
	rt      *engine.Runtime
	current atomic.Pointer[job]
	gid     atomic.Uint64 // the worker goroutine's id: see lifecycle
	// batch holds the jobs a Subprocess worker's process is running.
	batchMu sync.Mutex
	batch   []*job
	// warm holds this worker's reusable instance per module (Threads).
	warm map[*engine.Module]*warmInstance
	// dropped is the engine's ModulesDropped when warm was last swept of
	// stale instances.
	dropped uint64
}

type warmInstance struct {
	inst     *engine.Instance
	lastUsed time.Time
}

func (w *worker) loop() {
	p := w.p
	w.gid.Store(goid())
	defer w.exit()
	var idle <-chan time.Time
	if p.cfg.Mode == Threads && p.cfg.IdleTimeout > 0 {
		// The sweep of idle instances runs every half IdleTimeout, busy or
		// not: an instance unused for IdleTimeout is freed within half as
		// long again, however busy the worker is with other modules.
		sweep := time.NewTicker(max(p.cfg.IdleTimeout/2, time.Microsecond))
		defer sweep.Stop()
		idle = sweep.C
	}
	for {
		// A job waiting is the common case under load: take it without the
		// full select below (a single-case select with default is a plain
		// channel receive). handle still honours a Close that came first.
		select {
		case j, ok := <-p.queue:
			if !ok {
				return
			}
			w.handle(j)
			if idle != nil {
				select {
				case now := <-idle:
					w.dropIdle(now)
				default:
				}
			}
			continue
		default:
		}
		// The queue is all a worker waits on, but for the idle sweep: stop
		// closes it once no Submit can send any more, so Shutdown and Close
		// wake the workers through it. Shutdown's workers run what is left
		// in it first; Close's find every job it still holds cancelled
		// (admit). A select over more channels would cost every wait on an
		// idle worker a lock of each (several hundred instructions of a
		// no-op task's round trip).
		if idle == nil {
			j, ok := <-p.queue
			if !ok {
				return
			}
			w.handle(j)
			continue
		}
		select {
		case j, ok := <-p.queue:
			if !ok {
				return
			}
			w.handle(j)
		case now := <-idle:
			w.dropIdle(now)
		}
	}
}

func (w *worker) exit() {
	for m := range w.warm {
		w.discard(m, false)
	}
	ctx := context.Background()
	p := w.p
	if p.cfg.Mode == Processes {
		_ = w.rt.Close(ctx)
	}
	p.life.update(func() {
		p.life.live--
		if p.life.live == 0 && p.shared != nil {
			// The last worker out releases the shared runtime: nothing can
			// use it any more.
			_ = p.shared.Close(ctx)
		}
	})
}

func (w *worker) handle(j *job) {
	if !w.admit(j) {
		return
	}
	p := w.p
	w.current.Store(j)
	select {
	case <-p.killCh:
		// Close began after the worker took the job: it may have missed it.
		// The interrupt takes effect as soon as run binds the job.
		j.interrupt(ErrShutdown)
	default:
	}
	res, err := w.run(j)
	w.current.Store(nil)
	w.complete(j, res, err)
}

func (w *worker) run(j *job) (engine.Result, error) {
	if w.p.cfg.Mode == Threads && j.task.Func != "" {
		return w.runWarm(j)
	}
	return w.runFresh(j)
}

// admit is what every worker, in-process or not, does first with a job it
// took from the queue: it drops the job if it is already over, and
// otherwise marks it running (complete ends that), reporting whether it is
// to run.
//
// The future's callbacks run on the worker that completes it; a callback
// may still call Shutdown or Close, which know not to wait for the worker
// they are called from (see lifecycle).
func (w *worker) admit(j *job) bool {
	p := w.p
	p.stats.queued.Add(-1)
	select {
	case <-p.killCh:
		j.prom.Resolve(engine.Result{}, shutdownErr(j))
		return false
	default:
	}
	if !j.prom.Start() {
		return false // cancelled (or its context ended) while queued
	}
	// From here on the worker watches the task's context (through what runs
	// it); the queued-context watch would otherwise resolve the future with a
	// "while queued" error before the guest had even stopped.
	p.watches.unwatch(j)
	if b := p.broken.Load(); b != nil {
		j.prom.Resolve(engine.Result{}, p.moduleErrFor(j.task, b))
		return false
	}
	if j.ctx.Err() != nil {
		j.prom.Resolve(engine.Result{}, queuedCtxErr(j))
		return false
	}
	j.wait = time.Since(j.enqueued)
	p.stats.running.Add(1)
	return true
}

// complete resolves an admitted job's future with its outcome.
func (w *worker) complete(j *job, res engine.Result, err error) {
	w.p.stats.running.Add(-1)
	res.Wait = j.wait
	w.p.recordRun(j, res)
	j.prom.Resolve(res, err)
}

// runFresh runs the task in a new instance that is closed afterwards: every
// task in Processes mode, and commands in both modes. Instantiation and call
// run under one derived context, which is what interrupt cancels: an
// instantiation is costly enough that the context's cost does not show.
func (w *worker) runFresh(j *job) (engine.Result, error) {
	p := w.p
	t := j.task
	p.stats.instancesBuilt.Add(1)
	ctx, cancel := context.WithCancelCause(j.ctx)
	defer cancel(nil)
	j.bind(cancelTarget(cancel))
	defer j.unbind()
	if !p.initApplies(t) {
		return w.rt.Run(ctx, t)
	}
	// The task's Timeout bounds all that is done for it: the instance, the
	// pool's Init on it, and the call.
	ctx, stop := withTaskTimeout(ctx, t)
	defer stop()
	inst, err := w.newInstance(ctx, t)
	if err != nil {
		return engine.Result{}, taskTimeoutError(ctx, t, err)
	}
	defer inst.Close(context.WithoutCancel(ctx))
	res, err := inst.Call(ctx, t)
	return res, taskTimeoutError(ctx, t, err)
}

// runWarm runs an export task on the worker's warm instance of the module,
// building one if there is none that fits. The warm call itself runs under
// the task's own context, with the instance bound as what interrupts it: no
// context is derived per call, but for the call on an instance just built
// for the task, which shares the task's Timeout with the building.
func (w *worker) runWarm(j *job) (engine.Result, error) {
	p := w.p
	t := j.task
	w.dropStale(t.Module)
	wi := w.warm[t.Module]
	if wi != nil && (!wi.inst.Fits(&t) || (p.cfg.MaxTasksPerWorker > 0 && wi.inst.Calls() >= p.cfg.MaxTasksPerWorker)) {
		w.discard(t.Module, true)
		wi = nil
	}
	ctx := j.ctx
	if wi == nil {
		p.stats.instancesBuilt.Add(1)
		var stop context.CancelFunc
		ctx, stop = withTaskTimeout(ctx, t)
		defer stop()
		inst, err := w.buildWarm(ctx, j)
		if err != nil {
			return engine.Result{}, taskTimeoutError(ctx, t, err)
		}
		if w.warm == nil {
			w.warm = map[*engine.Module]*warmInstance{}
		}
		wi = &warmInstance{inst: inst}
		w.warm[t.Module] = wi
		p.stats.warm.Add(1)
	}
	j.bind(wi.inst)
	res, err := wi.inst.Call(ctx, t)
	j.unbind()
	if ctx != j.ctx {
		err = taskTimeoutError(ctx, t, err)
	}
	if p.cfg.IdleTimeout > 0 {
		wi.lastUsed = monotime.Now() // only the idle sweep reads it
	}
	if wi.inst.Broken() {
		w.discard(t.Module, true)
	}
	return res, err
}

// buildWarm instantiates the job's module for the worker to keep, under a
// context that interrupt cancels.
func (w *worker) buildWarm(ctx context.Context, j *job) (*engine.Instance, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	j.bind(cancelTarget(cancel))
	defer j.unbind()
	return w.newInstance(ctx, j.task)
}

// discard closes the worker's warm instance of m; restart counts it as a
// worker restart (an instance thrown away after an error or its task quota).
func (w *worker) discard(m *engine.Module, restart bool) {
	wi := w.warm[m]
	if wi == nil {
		return
	}
	_ = wi.inst.Close(context.Background())
	delete(w.warm, m)
	w.p.stats.warm.Add(-1)
	if restart {
		w.p.stats.workerRestarts.Add(1)
	}
}

// dropStale frees the warm instances of modules the engine evicted or
// closed since the last look: kept, they would keep the engine from
// releasing the modules' code, and a worker sent ever new modules would
// hold one instance of each for ever. The instance of keep, about to run a
// task, stays if it fits: the call makes its module resident again.
func (w *worker) dropStale(keep *engine.Module) {
	d := w.p.e.ModulesDropped()
	if d == w.dropped {
		return
	}
	w.dropped = d
	for m, wi := range w.warm {
		if wi.inst.Stale() && (m != keep || m.Closed()) {
			w.discard(m, false)
		}
	}
}

// dropIdle frees warm instances unused for IdleTimeout.
func (w *worker) dropIdle(now time.Time) {
	w.dropStale(nil)
	for m, wi := range w.warm {
		if now.Sub(wi.lastUsed) >= w.p.cfg.IdleTimeout {
			w.discard(m, false)
		}
	}
}

// interruptRunning interrupts what the worker is running: its job, or its
// worker process's batch.
func (w *worker) interruptRunning(cause error) {
	if j := w.current.Load(); j != nil {
		j.interrupt(cause)
	}
	w.batchMu.Lock()
	batch := w.batch
	w.batchMu.Unlock()
	for _, j := range batch {
		j.interrupt(cause)
	}
}
