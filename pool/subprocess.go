package pool

import (
	"context"
	"fmt"
	"sync"

	"github.com/wasmpool/wasmpool/internal/workerproc"
)

// procWorker is a worker of a Subprocess pool: it takes tasks from the queue
// like any worker, as many at a time as its worker process should run in
// one batch, and runs them there (package workerproc starts, supervises and
// replaces the process). The embedded worker is what the pool's Close and
// Stats see of it.
type procWorker struct {
	*worker
	slot *workerproc.Slot
}

// startProcWorkers starts a Subprocess pool's workers, each with its worker
// process ready: a program that cannot serve as one fails New, not every
// task.
func (p *Pool) startProcWorkers() error {
	argv, err := p.cfg.workerCommand()
	if err != nil {
		return err
	}
	c := &p.stats
	sv, err := workerproc.NewSupervisor(workerproc.Config{
		Argv:        argv,
		Engine:      p.e.Config(),
		Pool:        p.cfg.childPool(),
		Limits:      p.cfg.childLimits(p.e.MemoryLimit()),
		KillGrace:   p.cfg.KillGrace,
		OutputLimit: p.e.OutputLimit(),
		Counters: workerproc.Counters{InstancesBuilt: &c.instancesBuilt, InstanceRestarts: &c.workerRestarts,
			Crashes: &c.processCrashes, Restarts: &c.processRestarts},
	})
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	pws := make([]*procWorker, p.cfg.Workers)
	errs := make([]error, len(pws))
	var wg sync.WaitGroup
	for i := range pws {
		pw := &procWorker{worker: &worker{p: p, id: i}}
		pws[i] = pw
		wg.Go(func() { pw.slot, errs[i] = sv.NewSlot(p.killCh) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, pw := range pws {
			if pw.slot != nil {
				pw.slot.Close()
			}
		}
		sv.Close()
		return fmt.Errorf("pool: %w", err)
	}
	p.procs = sv
	for _, pw := range pws {
		p.workers = append(p.workers, pw.worker)
	}
	p.life.live = len(pws)
	for _, pw := range pws {
		go pw.loop()
	}
	return nil
}

// childPool is what of the pool's configuration the pool inside each
// worker process is configured with: what applies to each instance. The
// rest applies here: to the queue and the workers (Workers, QueueSize), to
// each task before it leaves (TaskTimeout, TaskFuel), or to the worker
// processes themselves (Isolation, WorkerCommand, KillGrace,
// ProcessLimits).
func (c Config) childPool() workerproc.PoolConfig {
	return workerproc.PoolConfig{Mode: uint8(c.Mode), MaxTasksPerWorker: c.MaxTasksPerWorker, IdleTimeout: c.IdleTimeout, Init: c.Init}
}

func (pw *procWorker) loop() {
	p := pw.p
	pw.gid.Store(goid()) // so that a Shutdown from a callback skips this worker: see lifecycle
	defer pw.exit()
	for {
		select {
		case j, ok := <-p.queue:
			if !ok {
				return // Shutdown or Close: see worker.loop
			}
			pw.handle(j)
		case <-pw.slot.Trouble():
			// Its worker process died while idle (or Close stopped it, not
			// waiting for this worker: see Supervisor.StopAll): no task
			// fails, and the next task should not wait for a replacement.
			pw.slot.Recover(pw.wantsProcess())
		}
	}
}

func (pw *procWorker) exit() {
	p := pw.p
	pw.slot.Close()
	p.life.update(func() {
		p.life.live--
		if p.life.live == 0 {
			// The last worker out: every worker process is gone.
			p.procs.Close()
		}
	})
}

// wantsProcess reports whether the worker should have a worker process
// ready: not once the pool is closing, or draining with nothing left.
func (pw *procWorker) wantsProcess() bool {
	p := pw.p
	select {
	case <-p.killCh:
		return false
	case <-p.drainCh:
		return len(p.queue) > 0
	default:
		return true
	}
}

// handle runs first, and as many more queued jobs as make a batch, in the
// worker process, then replaces the process if the batch took it down.
func (pw *procWorker) handle(first *job) {
	p := pw.p
	batch := pw.take(first)
	if len(batch) == 0 {
		return
	}
	jobs := make([]*workerproc.Job, len(batch))
	of := make(map[*workerproc.Job]int, len(batch))
	cancels := make([]context.CancelCauseFunc, len(batch))
	for i, j := range batch {
		ctx, cancel := context.WithCancelCause(j.ctx)
		cancels[i] = cancel
		jobs[i] = &workerproc.Job{Ctx: ctx, Task: j.task}
		of[jobs[i]] = i
		j.bind(cancelTarget(cancel))
	}
	pw.batchMu.Lock()
	pw.batch = batch
	pw.batchMu.Unlock()
	select {
	case <-p.killCh:
		// Close began after the worker took the batch: it may have missed it.
		pw.interruptRunning(ErrShutdown)
	default:
	}
	pw.slot.Run(jobs, func(wj *workerproc.Job) {
		i := of[wj]
		j := batch[i]
		j.unbind()
		cancels[i](nil)
		err := wj.Err
		if wj.Broken {
			err = p.moduleErrFor(j.task, p.breakWith(err))
		}
		pw.complete(j, wj.Res, err)
	})
	pw.batchMu.Lock()
	pw.batch = nil
	pw.batchMu.Unlock()
	pw.slot.Replace(pw.wantsProcess())
}

// take admits first and as many more jobs waiting in the queue as the
// worker process should run in one batch: tiny tasks go many to a round
// trip, long ones one at a time, and no worker takes more than its share
// of the queue while others wait.
func (pw *procWorker) take(first *job) []*job {
	p := pw.p
	var batch []*job
	if pw.admit(first) {
		batch = append(batch, first)
	}
	limit := pw.slot.BatchLimit(len(p.queue)/p.cfg.Workers + 1)
	size := len(first.task.Input)
	for len(batch) < limit && size < workerproc.MaxBatchBytes {
		select {
		case j, ok := <-p.queue:
			if !ok {
				return batch
			}
			if pw.admit(j) {
				batch = append(batch, j)
				size += len(j.task.Input)
			}
		default:
			return batch
		}
	}
	return batch
}

// WorkerPIDs returns the process IDs of the pool's live worker processes
// (Subprocess isolation), sorted; nil for an InProcess pool.
func (p *Pool) WorkerPIDs() []int {
	if p.procs == nil {
		return nil
	}
	return p.procs.PIDs()
}

// Isolation is the pool's isolation.
func (p *Pool) Isolation() Isolation { return p.cfg.Isolation }
