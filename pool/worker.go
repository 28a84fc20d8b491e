package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
)

// job is one submitted task on its way through the pool.
type job struct {
	ctx       context.Context
	task      engine.Task
	fut       *future.Future[engine.Result]
	prom      *future.Promise[engine.Result]
	enqueued  time.Time
	stopWatch func() bool // stops the queued-context watch

	mu          sync.Mutex
	cancel      context.CancelCauseFunc // set while running
	interrupted error                   // set if interrupted before it ran
	dequeued    bool                    // a worker took it: the queued-context watch is over
}

// dequeue ends the watch on the context of a queued task, once a worker has
// taken it: from then on the worker stops the task when its context ends,
// and the future ends when the guest has stopped, with the worker's error
// (not "while queued").
func (j *job) dequeue() {
	j.mu.Lock()
	j.dequeued = true
	stop := j.stopWatch
	j.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// interrupt stops the task: at once if it is running, or as soon as a worker
// picks it up.
func (j *job) interrupt(cause error) {
	j.mu.Lock()
	if j.interrupted == nil {
		j.interrupted = cause
	}
	cancel := j.cancel
	j.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

// running attaches the run's cancel to the job, unless it was interrupted
// first, in which case the run is cancelled at once.
func (j *job) running(cancel context.CancelCauseFunc) {
	j.mu.Lock()
	j.cancel = cancel
	cause := j.interrupted
	j.mu.Unlock()
	if cause != nil {
		cancel(cause)
	}
}

type worker struct {
	p       *Pool
	id      int
	rt      *engine.Runtime
	current atomic.Pointer[job]
	// warm holds this worker's reusable instance per module (Threads).
	warm map[*engine.Module]*warmInstance
}

type warmInstance struct {
	inst     *engine.Instance
	lastUsed time.Time
}

func (w *worker) loop() {
	p := w.p
	defer w.exit()
	var idle <-chan time.Time
	var idleTimer *time.Timer
	if p.cfg.Mode == Threads && p.cfg.IdleTimeout > 0 {
		idleTimer = time.NewTimer(p.cfg.IdleTimeout)
		defer idleTimer.Stop()
		idle = idleTimer.C
	}
	for {
		select {
		case j := <-p.queue:
			w.handle(j)
			if idleTimer != nil {
				idleTimer.Reset(p.cfg.IdleTimeout)
			}
		case <-p.killCh:
			return
		case <-p.drainCh:
			for {
				select {
				case j := <-p.queue:
					w.handle(j)
				case <-p.killCh:
					return
				default:
					return
				}
			}
		case <-idle:
			w.dropIdle(time.Now())
			idleTimer.Reset(p.cfg.IdleTimeout)
		}
	}
}

func (w *worker) exit() {
	ctx := context.Background()
	for m, wi := range w.warm {
		_ = wi.inst.Close(ctx)
		delete(w.warm, m)
	}
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
	p := w.p
	p.stats.queued.Add(-1)
	select {
	case <-p.killCh:
		j.fut.Cancel()
		return
	default:
	}
	if !j.prom.Start() {
		return // cancelled (or its context ended) while queued
	}
	j.dequeue()
	if b := p.broken.Load(); b != nil {
		w.resolve(j, engine.Result{}, p.moduleErr(j, b))
		return
	}
	if j.ctx.Err() != nil {
		w.resolve(j, engine.Result{}, queuedCtxErr(j))
		return
	}
	wait := time.Since(j.enqueued)
	p.stats.running.Add(1)
	ctx, cancel := context.WithCancelCause(j.ctx)
	w.current.Store(j)
	j.running(cancel)
	select {
	case <-p.killCh:
		cancel(ErrShutdown)
	default:
	}

	var res engine.Result
	var err error
	if p.cfg.Mode == Threads && j.task.Func != "" {
		res, err = w.runWarm(ctx, j.task)
	} else {
		res, err = w.runFresh(ctx, j.task)
	}
	cancel(nil)
	w.current.Store(nil)
	p.stats.running.Add(-1)
	res.Wait = wait
	w.resolve(j, res, err)
}

// resolve settles the future. Its callbacks run here, on the worker; the
// lifecycle marks the worker as in a callback meanwhile, so a callback may
// call Shutdown or Close without waiting on its own worker.
func (w *worker) resolve(j *job, res engine.Result, err error) {
	l := &w.p.life
	l.update(func() { l.inCallback++ })
	j.prom.Resolve(res, err)
	l.update(func() { l.inCallback-- })
}

// runFresh runs the task in a new instance that is closed afterwards: every
// task in Processes mode, and commands in both modes.
func (w *worker) runFresh(ctx context.Context, t engine.Task) (engine.Result, error) {
	p := w.p
	p.stats.instancesBuilt.Add(1)
	if !p.initApplies(t) {
		return w.rt.Run(ctx, t)
	}
	inst, err := w.newInstance(ctx, t)
	if err != nil {
		return engine.Result{}, err
	}
	defer inst.Close(context.WithoutCancel(ctx))
	return inst.Call(ctx, t)
}

// runWarm runs an export task on the worker's warm instance of the module,
// building one if there is none that fits.
func (w *worker) runWarm(ctx context.Context, t engine.Task) (engine.Result, error) {
	p := w.p
	wi := w.warm[t.Module]
	if wi != nil && (!wi.inst.Fits(&t) || (p.cfg.MaxTasksPerWorker > 0 && wi.inst.Calls() >= p.cfg.MaxTasksPerWorker)) {
		w.discard(t.Module, true)
		wi = nil
	}
	if wi == nil {
		p.stats.instancesBuilt.Add(1)
		inst, err := w.newInstance(ctx, t)
		if err != nil {
			return engine.Result{}, err
		}
		if w.warm == nil {
			w.warm = map[*engine.Module]*warmInstance{}
		}
		wi = &warmInstance{inst: inst}
		w.warm[t.Module] = wi
	}
	res, err := wi.inst.Call(ctx, t)
	wi.lastUsed = time.Now()
	if wi.inst.Broken() {
		w.discard(t.Module, true)
	}
	return res, err
}

// newInstance instantiates t's module and runs the pool's Init on it when
// Init applies to that module. An Init failure breaks the pool.
func (w *worker) newInstance(ctx context.Context, t engine.Task) (*engine.Instance, error) {
	p := w.p
	inst, err := w.rt.Instantiate(ctx, t)
	if err != nil {
		return nil, err
	}
	if p.initApplies(t) {
		init := *p.cfg.Init
		init.Module = t.Module
		init.Args, init.Env, init.Mounts = t.Args, t.Env, t.Mounts
		if _, err := inst.Call(ctx, init); err != nil {
			_ = inst.Close(context.WithoutCancel(ctx))
			if ctx.Err() != nil {
				return nil, err // the task was cancelled, Init did not fail
			}
			return nil, p.moduleErrFor(t, p.breakWith(err))
		}
	}
	return inst, nil
}

func (p *Pool) initApplies(t engine.Task) bool {
	return p.cfg.Init != nil && t.Func != "" && (p.cfg.Init.Module == nil || p.cfg.Init.Module == t.Module)
}

func (p *Pool) moduleErrFor(t engine.Task, err error) error {
	return &engine.Error{Module: t.Module.Name(), Err: err}
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
	if restart {
		w.p.stats.workerRestarts.Add(1)
	}
}

// dropIdle frees warm instances unused for IdleTimeout.
func (w *worker) dropIdle(now time.Time) {
	for m, wi := range w.warm {
		if now.Sub(wi.lastUsed) >= w.p.cfg.IdleTimeout {
			w.discard(m, false)
		}
	}
}
