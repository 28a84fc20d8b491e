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
// and every other job without an outcome is returned, to run elsewhere.
func (r *batchRun) lost(jobs []*Job, cur int, err error) ([]*Job, bool, error) {
	r.s.c = nil
	if cur < len(jobs) && err != nil {
		r.done(jobs[cur], engine.Result{}, err)
	}
	var rest []*Job
	for _, j := range jobs {
		if !j.finished {
			rest = append(rest, j)
		}
	}
	return rest, r.progressed, err
}

func (r *batchRun) run(jobs []*Job) ([]*Job, bool, error) {
	c := r.c
	if over, rest, ok, err := r.load(jobs); over {
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
// does not compile fails the jobs that need it. over says the worker
// process is gone: the batch ends with the rest.
func (r *batchRun) load(jobs []*Job) (over bool, rest []*Job, progressed bool, err error) {
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
				rest, ok, err := r.lost(jobs, indexOf(jobs, j), stopError(j, true))
				return true, rest, ok, err
			}
			rest, ok, err := r.unwritable(jobs, err)
			return true, rest, ok, err
		}
		loaded, rest, ok, err := r.awaitLoaded(jobs, m, id)
		if !loaded {
			return true, rest, ok, err
		}
		j.modID = id
	}
	return false, nil, false, nil
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
			if c.onPurpose() {
				// Stopped by the pool (Close): no crash, and what is left
				// is sorted by the next try (stopped, or run elsewhere).
				rest, ok, err := r.lost(jobs, len(jobs), nil)
				return false, rest, ok, err
			}
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
		rest, ok, _ := r.lost(jobs, 0, nil)
		if c.onPurpose() {
			return rest, ok, nil
		}
		r.s.sv.counters.Crashes.Add(1)
		return rest, ok, moduleErr(jobs[0].Task, c.crashError(""))
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
