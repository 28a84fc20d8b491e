package workerproc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
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
				finish(j, engine.Result{}, lastCrash)
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
	if s.c != nil && s.c.usedItsCPUShare() {
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

// batchRun is one batch on one worker process.
type batchRun struct {
	s      *Slot
	c      *child
	finish func(*Job, engine.Result, error)
	events chan *Job // jobs whose context ended
	stops  []func() bool
	// progressed: some job of the batch got its outcome.
	progressed bool
}

func (r *batchRun) watch(j *Job) {
	r.stops = append(r.stops, context.AfterFunc(j.Ctx, func() { r.events <- j }))
}

func (r *batchRun) unwatch() {
	for _, stop := range r.stops {
		stop()
	}
}

func (r *batchRun) done(j *Job, res engine.Result, err error) {
	r.progressed = true
	r.finish(j, res, err)
}

// lost ends the batch on a dead (or killed) worker process: cur, the job
// it was running, fails with err (unless err is nil: it never started),
// and the jobs after it are returned to run elsewhere.
func (r *batchRun) lost(jobs []*Job, cur int, err error) ([]*Job, bool, error) {
	r.s.c = nil
	if cur < len(jobs) && err != nil {
		r.done(jobs[cur], engine.Result{}, err)
		cur++
	}
	var rest []*Job
	for _, j := range jobs[cur:] {
		if !j.finished {
			rest = append(rest, j)
		}
	}
	return rest, r.progressed, err
}

func (r *batchRun) run(jobs []*Job) ([]*Job, bool, error) {
	c := r.c
	if rest, ok, err := r.load(jobs); rest != nil || err != nil {
		return rest, ok, err
	}
	// The modules may have taken long: drop what was stopped meanwhile.
	msgs := make([]taskMsg, 0, len(jobs))
	sent := make([]*Job, 0, len(jobs))
	size := 0
	for _, j := range jobs {
		if j.finished {
			continue
		}
		c.lastID++
		j.id = c.lastID
		msgs = append(msgs, taskMsg{id: j.id, moduleID: j.modID, task: j.Task})
		sent = append(sent, j)
		size += len(j.Task.Input)
	}
	if len(sent) == 0 {
		return nil, true, nil
	}
	parts := batchParts(&c.enc, msgs)
	for _, p := range parts {
		size += len(p)
	}
	if size > wire.MaxPayload {
		for _, j := range sent {
			r.done(j, engine.Result{}, moduleErr(j.Task, fmt.Errorf("the task is %d bytes, over the %d a worker process accepts", size, wire.MaxPayload)))
		}
		return nil, true, nil
	}
	c.awaiting.Add(int64(len(sent)))
	if err := r.send(sent[0].Ctx, func() error { return c.w.WriteFrame(frameTasks, parts...) }); err != nil {
		if sent[0].Ctx.Err() != nil {
			r.s.killChild(c, "to stop a task")
			return r.lost(sent, 0, stopError(sent[0], true))
		}
		return r.unwritable(sent, err)
	}
	return r.await(sent)
}

// await reads the answers to a batch, one per task, in order, stopping the
// running task when its context ends (or its Timeout passes on this side's
// clock), and killing the worker process when it does not stop in time.
func (r *batchRun) await(sent []*Job) ([]*Job, bool, error) {
	c, sv := r.c, r.s.sv
	cur := 0
	var clock, grace *time.Timer
	stopTimer := func(t **time.Timer) {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
	defer stopTimer(&clock)
	defer stopTimer(&grace)
	timerC := func(t *time.Timer) <-chan time.Time {
		if t == nil {
			return nil
		}
		return t.C
	}
	// The clock of the task now running starts when this side learns it
	// runs: a little after it does, which only makes this side's backstop
	// later than the worker process's own timeout.
	startClock := func() {
		stopTimer(&clock)
		if cur < len(sent) && sent[cur].Task.Timeout > 0 && !sent[cur].finished {
			clock = time.NewTimer(sent[cur].Task.Timeout)
		}
	}
	askStop := func(j *Job) bool {
		cm := cancelMsg{id: j.id, reason: cancelReasonOf(j)}
		c.enc.Reset()
		cm.encode(&c.enc)
		_ = c.in.SetWriteDeadline(time.Now().Add(sv.grace))
		err := c.w.WriteFrame(frameCancel, c.enc.Bytes())
		_ = c.in.SetWriteDeadline(time.Time{})
		return err == nil
	}
	stopCurrent := func() ([]*Job, bool, error, bool) {
		if grace != nil {
			return nil, false, nil, false
		}
		// Ask it to stop the task, and kill it if it has not within the
		// grace: a guest blocked in a host function stops when asked (and
		// a guest in a loop too, unless the engine runs without interrupt
		// checks).
		if !askStop(sent[cur]) {
			r.s.killChild(c, "to stop a task")
			rest, ok, err := r.lost(sent, cur, stopError(sent[cur], true))
			return rest, ok, err, true
		}
		grace = time.NewTimer(sv.grace)
		return nil, false, nil, false
	}
	startClock()
	for cur < len(sent) {
		select {
		case m := <-c.msgs:
			j := sent[cur]
			if m.result == nil || m.result.id != j.id {
				return r.violation(sent, cur, fmt.Sprintf("answered task %d with something else", j.id))
			}
			res, err := r.accept(j, m.result)
			if grace != nil && (errors.Is(err, engine.ErrTimeout) || errors.Is(err, engine.ErrCancelled)) {
				// It stopped because it was asked to: say why as this side
				// knows it (the task's own timeout, Close...).
				err = stopError(j, false)
			}
			if !j.finished {
				r.s.observe(res.Duration)
			}
			r.done(j, res, err)
			cur++
			stopTimer(&grace)
			startClock()
		case j := <-r.events:
			if j.finished {
				continue
			}
			if j != sent[cur] {
				// Not started yet: the child skips it, and its future need
				// not wait for the task before it.
				askStop(j)
				r.done(j, engine.Result{}, stopError(j, false))
				continue
			}
			if rest, ok, err, over := stopCurrent(); over {
				return rest, ok, err
			}
		case <-timerC(clock):
			stopTimer(&clock)
			sent[cur].timedOut = true
			if rest, ok, err, over := stopCurrent(); over {
				return rest, ok, err
			}
		case <-timerC(grace):
			r.s.killChild(c, "to stop a task")
			return r.lost(sent, cur, stopError(sent[cur], true))
		case <-c.exited:
			return r.died(sent, cur, grace != nil)
		}
	}
	return nil, true, nil
}

// died ends a batch whose worker process exited. Told to stop the task
// (stopping), or stopped by the pool itself (Close), it did not crash:
// the task's outcome is the stop.
func (r *batchRun) died(sent []*Job, cur int, stopping bool) ([]*Job, bool, error) {
	c := r.c
	c.reap()
	j := sent[cur]
	switch {
	case stopping || j.Ctx.Err() != nil:
		return r.lost(sent, cur, stopError(j, false))
	case c.onPurpose():
		return r.lost(sent, cur, moduleErr(j.Task, fmt.Errorf("%w: its worker process was stopped: %w", engine.ErrCancelled, taskerr.ErrShutdown)))
	}
	r.s.sv.counters.Crashes.Add(1)
	return r.lost(sent, cur, moduleErr(j.Task, c.crashError(funcName(j.Task))))
}

// load makes sure the child holds the modules of jobs, sending those it
// has not seen, and gives each job its module's id there. A module that
// does not compile fails the jobs that need it.
func (r *batchRun) load(jobs []*Job) ([]*Job, bool, error) {
	c := r.c
	for _, j := range jobs {
		if j.finished {
			continue
		}
		m := j.Task.Module
		if id, ok := c.modules[m]; ok {
			j.modID = id
			continue
		}
		id := uint64(initModuleID + 1 + len(c.modules))
		head := moduleMsg{id: id, name: m.Name(), digest: m.Digest()}
		c.enc.Reset()
		head.encodeHead(&c.enc)
		c.awaiting.Add(1)
		if err := r.send(j.Ctx, func() error { return c.w.WriteFrameTo(frameModule, c.enc.Bytes(), m.Size(), m) }); err != nil {
			if j.Ctx.Err() != nil {
				r.s.killChild(c, "to stop a task")
				r.done(j, engine.Result{}, stopError(j, true))
				return r.lost(jobs, len(jobs), nil)
			}
			return r.unwritable(jobs, err)
		}
		loaded, rest, ok, err := r.awaitLoaded(jobs, m, id)
		if !loaded {
			return rest, ok, err
		}
		j.modID = id
	}
	return nil, false, nil
}

// awaitLoaded waits for the child's answer to module id. Compiling cannot
// be interrupted: once every job needing the module has been stopped, the
// child has the grace to finish, as it has to stop a task.
func (r *batchRun) awaitLoaded(jobs []*Job, m *engine.Module, id uint64) (bool, []*Job, bool, error) {
	c, sv := r.c, r.s.sv
	needing := func() int {
		n := 0
		for _, j := range jobs {
			if !j.finished && j.Task.Module == m {
				n++
			}
		}
		return n
	}
	var grace <-chan time.Time
	for {
		select {
		case msg := <-c.msgs:
			if msg.loaded == nil || msg.loaded.id != id {
				rest, ok, err := r.violation(jobs, len(jobs), "answered a module with something else")
				return false, rest, ok, err
			}
			if err := msg.loaded.err; err != nil {
				for _, j := range jobs {
					if !j.finished && j.Task.Module == m {
						r.done(j, engine.Result{}, err)
					}
				}
				return true, nil, false, nil
			}
			c.modules[m] = id
			return true, nil, false, nil
		case <-c.exited:
			c.reap()
			r.s.sv.counters.Crashes.Add(1)
			for _, j := range jobs {
				if !j.finished && j.Task.Module == m {
					rest, ok, err := r.lost(jobs, indexOf(jobs, j), moduleErr(j.Task, c.crashError(funcName(j.Task))))
					return false, rest, ok, err
				}
			}
			rest, ok, err := r.lost(jobs, len(jobs), nil)
			return false, rest, ok, err
		case j := <-r.events:
			if !j.finished {
				r.done(j, engine.Result{}, stopError(j, false))
			}
			if grace == nil && needing() == 0 {
				t := time.NewTimer(sv.grace)
				defer t.Stop()
				grace = t.C
			}
		case <-grace:
			r.s.killChild(c, "to stop a task")
			rest, ok, err := r.lost(jobs, len(jobs), nil)
			return false, rest, ok, err
		}
	}
}

func indexOf(jobs []*Job, j *Job) int {
	for i, x := range jobs {
		if x == j {
			return i
		}
	}
	return len(jobs)
}

// send writes a frame, giving up when ctx ends: a child that does not read
// its stdin (it is stuck) must not keep the task from stopping.
func (r *batchRun) send(ctx context.Context, write func() error) error {
	c := r.c
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.in.SetWriteDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	err := write()
	if !stop() {
		<-interrupted
		_ = c.in.SetWriteDeadline(time.Time{})
	}
	return err
}

// unwritable handles a frame that could not be written whole: the child is
// dead (it died before it could read the frame, so its tasks can go to
// another), or it stopped reading.
func (r *batchRun) unwritable(jobs []*Job, err error) ([]*Job, bool, error) {
	c := r.c
	timer := time.NewTimer(exitGrace)
	defer timer.Stop()
	select {
	case <-c.exited:
		c.reap()
		r.s.sv.counters.Crashes.Add(1)
		crash := moduleErr(jobs[0].Task, c.crashError(""))
		rest, ok, _ := r.lost(jobs, 0, nil)
		return rest, ok, crash
	case <-timer.C:
	}
	return r.violation(jobs, 0, fmt.Sprintf("could not be written to (%v)", err))
}

// accept takes the child's answer to job j.
func (r *batchRun) accept(j *Job, m *resultMsg) (engine.Result, error) {
	c, ctr := r.c, r.s.sv.counters
	ctr.InstancesBuilt.Add(m.instancesBuilt - c.instancesBuilt)
	ctr.InstanceRestarts.Add(m.workerRestarts - c.workerRestarts)
	c.instancesBuilt, c.workerRestarts, c.cpu = m.instancesBuilt, m.workerRestarts, m.cpu
	j.Broken = m.broken
	return m.res, m.err
}

// violation kills a child that broke the protocol and fails the job it
// was on.
func (r *batchRun) violation(jobs []*Job, cur int, what string) ([]*Job, bool, error) {
	c := r.c
	c.breaksProtocol(errors.New(what))
	c.reap()
	r.s.sv.counters.Crashes.Add(1)
	fn := ""
	if cur < len(jobs) {
		fn = funcName(jobs[cur].Task)
	}
	var err error
	if cur < len(jobs) {
		err = moduleErr(jobs[cur].Task, c.crashError(fn))
	}
	return r.lost(jobs, cur, err)
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
