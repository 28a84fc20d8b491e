package workerproc

import (
	"context"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
)

// Slot is one worker of a Subprocess pool as this tier sees it: one worker
// process at a time, started on first need and replaced whenever it dies or
// has to be killed, and the batches of tasks it runs there. One goroutine
// owns a Slot.
type Slot struct {
	sv      *Supervisor
	stop    <-chan struct{} // closed when the pool closes: a handshake in progress gives up
	c       *child          // nil between a death and the next start
	started bool            // a first child was started: later ones are restarts
	// cost is what a task has cost the child lately (the most recent
	// expensive one at once, cheap ones slowly): how many to batch.
	cost time.Duration
}

// Job is one task a Slot runs and, once run, its outcome.
type Job struct {
	// Ctx bounds the task: when it ends, the worker process is asked to
	// stop the task, and killed if it has not within the grace. Its cause
	// (ErrShutdown, a deadline) says why, in the task's error.
	Ctx  context.Context
	Task engine.Task

	Res engine.Result
	Err error
	// Broken says Err is the cause of the pool's Init failing (in the
	// worker process): the pool breaks, not just this task.
	Broken bool

	id, modID uint64
	finished  bool // done was called: whatever else comes is ignored
	timedOut  bool // the Slot's own clock stopped it, at Task.Timeout
}

// NewSlot starts a slot's first worker process. stop aborts a handshake in
// progress, then or later (the pool is closing).
func (sv *Supervisor) NewSlot(stop <-chan struct{}) (*Slot, error) {
	s := &Slot{sv: sv, stop: stop}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Slot) start() error {
	c, err := s.sv.startChild(s.stop)
	if err != nil {
		return err
	}
	if s.started {
		s.sv.counters.Restarts.Add(1)
	}
	s.started = true
	if s.sv.initModule != nil {
		c.modules[s.sv.initModule] = initModuleID
	}
	s.c = c
	return nil
}

// Trouble is closed when the idle worker process died or spoke out of turn
// (nil if there is none): call Recover.
func (s *Slot) Trouble() <-chan struct{} {
	if s.c == nil {
		return nil
	}
	return s.c.exited
}

// Recover deals with what Trouble said: it counts a death the pool did not
// cause as a crash (no task fails: none was running), and starts a
// replacement if replace, so that the next task does not wait for one. A
// failure to start is not final: the next task tries again, and fails with
// the reason if it must.
func (s *Slot) Recover(replace bool) {
	if !s.c.onPurpose() {
		s.sv.counters.Crashes.Add(1)
	}
	s.c.reap()
	s.c = nil
	s.Replace(replace)
}

// Replace starts a worker process if there is none and want says so.
func (s *Slot) Replace(want bool) {
	if want && s.c == nil {
		_ = s.start()
	}
}

// Close stops the slot's worker process, if it has one.
func (s *Slot) Close() {
	if s.c != nil {
		s.c.stop(exitGrace)
		s.c = nil
	}
}

const (
	// MaxBatch bounds the tasks of one batch.
	MaxBatch = 64
	// MaxBatchBytes bounds the inputs of one batch (a single task may be
	// larger, and goes alone).
	MaxBatchBytes = 1 << 20
	// batchTime is what a batch should cost the child: long enough for
	// the round trip to the worker process to be small beside it, short
	// enough that the pool's other workers are not kept waiting.
	batchTime = 2 * time.Millisecond
)

// BatchLimit is how many tasks the next batch may hold: as many as take
// about batchTime at what tasks cost lately, at most share (the pool's fair
// part of its queue). Until a task has told what tasks cost, one.
func (s *Slot) BatchLimit(share int) int {
	if s.cost == 0 {
		return 1
	}
	n := int(batchTime / s.cost)
	return max(1, min(n, MaxBatch, share))
}

func (s *Slot) observe(d time.Duration) {
	d = max(d, time.Microsecond)
	if d > s.cost {
		s.cost = d
	} else {
		s.cost -= (s.cost - d) / 4
	}
}

// Run runs jobs on the slot's worker process, starting one first if there
// is none, and calls done with each job as its outcome is known (in order,
// but a job whose context ends before it has started is done at once). A
// job that never started when its worker process died is handed to the
// next one: only a task a worker process ran can fail with its death.
func (s *Slot) Run(jobs []*Job, done func(*Job)) {
	finish := func(j *Job, res engine.Result, err error) {
		if !j.finished {
			j.finished = true
			j.Res, j.Err = res, err
			done(j)
		}
	}
	var lastCrash error
	pending := jobs
	for tries := 0; len(pending) > 0; tries++ {
		var progressed bool
		pending, progressed, lastCrash = s.runOnce(pending, finish)
		if !progressed && tries > 0 {
			// Twice a worker process died before it had a task: report
			// the death rather than try for ever.
			for _, j := range pending {
				err := lastCrash
				if err == nil {
					err = moduleErr(j.Task, &taskerr.CrashError{Reason: "was gone twice before it could run the task"})
				}
				finish(j, engine.Result{}, err)
			}
			return
		}
		if progressed {
			tries = -1
		}
	}
}

// runOnce runs pending on one worker process. It returns the jobs that
// process never started (it died first), whether any job got an outcome,
// and the error of the death, if there was one.
func (s *Slot) runOnce(pending []*Job, finish func(*Job, engine.Result, error)) (rest []*Job, progressed bool, crash error) {
	live := pending[:0:0]
	for _, j := range pending {
		if j.finished {
			continue
		}
		if j.Ctx.Err() != nil {
			// Stopped before the child got it: the child stays.
			finish(j, engine.Result{}, stopError(j, false))
			progressed = true
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return nil, true, nil
	}
	// A worker process keeps every module it was sent, and so does its
	// handle here: one that holds as many as the engine's cache bound is
	// replaced, which frees both (a restart per MaxModules distinct
	// modules, against memory that grew for ever).
	if s.c != nil && (s.c.usedItsCPUShare() || len(s.c.modules) >= s.sv.maxModules) {
		s.c.stop(exitGrace)
		s.c = nil
	}
	if s.c == nil {
		if err := s.start(); err != nil {
			for _, j := range live {
				finish(j, engine.Result{}, moduleErr(j.Task, &taskerr.CrashError{Reason: "could not be started: " + err.Error()}))
			}
			return nil, true, nil
		}
	}
	r := &batchRun{s: s, c: s.c, finish: finish, events: make(chan *Job, len(live))}
	defer r.unwatch()
	for _, j := range live {
		r.watch(j)
	}
	return r.run(live)
}

func (s *Slot) killChild(c *child, why string) {
	c.kill(why)
	c.reap()
	s.c = nil
}

// usedItsCPUShare reports whether the child has used half its CPU limit:
// it is replaced before its next task, so that every task can count on
// the other half (see pool.ProcessLimits.CPUTime).
func (c *child) usedItsCPUShare() bool {
	return c.ready.cpuSeconds > 0 && c.cpu >= time.Duration(c.ready.cpuSeconds)*time.Second/2
}

func funcName(t engine.Task) string {
	if t.Func == "" {
		return "_start"
	}
	return t.Func
}

func moduleErr(t engine.Task, err error) error {
	return &engine.Error{Module: t.Module.Name(), Err: err}
}
