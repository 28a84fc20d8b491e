package pool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// procWorker is a worker of a Subprocess pool: it takes tasks from the queue
// like any worker, and runs them in its worker process, replacing that
// process whenever it dies or has to be killed. The embedded worker is what
// the pool's Close and Stats see of it.
type procWorker struct {
	*worker
	sv      *supervisor
	c       *child // nil between a death and the next start
	started bool   // a first child was started: later ones are restarts
}

func (pw *procWorker) startChild() error {
	c, err := pw.sv.startChild(pw.p.killCh)
	if err != nil {
		return err
	}
	if pw.started {
		pw.p.stats.processRestarts.Add(1)
	}
	pw.started = true
	if pw.sv.initModule != nil {
		c.modules[pw.sv.initModule] = initModuleID
	}
	pw.c = c
	return nil
}

func (pw *procWorker) loop() {
	p := pw.p
	pw.gid.Store(goid()) // so that a Shutdown from a callback skips this worker: see lifecycle
	defer pw.exit()
	for {
		var died <-chan struct{}
		var unasked <-chan childMsg
		if pw.c != nil {
			died, unasked = pw.c.exited, pw.c.msgs
		}
		select {
		case j := <-p.queue:
			pw.handle(j)
		case <-p.killCh:
			return
		case <-p.drainCh:
			p.drain(pw.handle)
			return
		case <-died:
			// It died while idle: no task fails, but it counts, and the
			// next task should not wait for its replacement to start.
			// (Or Close stopped it, not waiting for this worker: see
			// supervisor.stopAll.)
			if !pw.c.onPurpose() {
				p.stats.processCrashes.Add(1)
			}
			pw.c.reap()
			pw.c = nil
			pw.replace()
		case <-unasked:
			// A frame nobody asked for: it is not following the protocol.
			pw.c.breaksProtocol(errors.New("it sent a frame while idle"))
			pw.c.reap()
			pw.c = nil
			p.stats.processCrashes.Add(1)
			pw.replace()
		}
	}
}

func (pw *procWorker) exit() {
	p := pw.p
	if pw.c != nil {
		pw.c.stop(exitGrace)
		pw.c = nil
	}
	p.life.update(func() {
		p.life.live--
		if p.life.live == 0 {
			// The last worker out: every child is gone.
			pw.sv.close()
		}
	})
}

// replace starts a worker process in place of one that is gone, unless the
// pool is closing, or draining with nothing left to run. A failure is not
// final: the next task tries again, and fails with the reason if it must.
func (pw *procWorker) replace() {
	p := pw.p
	select {
	case <-p.killCh:
		return
	case <-p.drainCh:
		if len(p.queue) == 0 {
			return
		}
	default:
	}
	_ = pw.startChild()
}

// handle runs the job in the worker process, then replaces the process if
// the task took it down.
func (pw *procWorker) handle(j *job) {
	ran := pw.serve(j, func(j *job) (engine.Result, error) {
		ctx, cancel := context.WithCancelCause(j.ctx)
		defer cancel(nil)
		j.bind(cancelTarget(cancel))
		defer j.unbind()
		start := time.Now()
		res, err := pw.run(ctx, j.task)
		if err != nil && res.Duration == 0 {
			// Stopped or lost before the worker process could answer (a
			// kill, a crash): the time it held the task is all there is.
			res.Duration = time.Since(start)
		}
		return res, err
	})
	if ran && pw.c == nil {
		pw.replace()
	}
}

// run runs t in the worker process, starting one first if there is none.
// A worker process found dead before it could be handed the task (it died
// while idle, just as the task came) is replaced and the task handed to the
// new one: only a task a worker process held can fail with its death.
func (pw *procWorker) run(ctx context.Context, t engine.Task) (engine.Result, error) {
	for retried := false; ; retried = true {
		res, err := pw.runOnce(ctx, t)
		var nd *notDeliveredError
		if !errors.As(err, &nd) {
			return res, err
		}
		if retried {
			return res, nd.crash
		}
	}
}

func (pw *procWorker) runOnce(ctx context.Context, t engine.Task) (engine.Result, error) {
	p := pw.p
	if pw.c != nil && pw.c.usedItsCPUShare() {
		pw.c.stop(exitGrace)
		pw.c = nil
	}
	if pw.c == nil {
		if err := pw.startChild(); err != nil {
			return engine.Result{}, p.moduleErrFor(t, &CrashError{Reason: "could not be started: " + err.Error()})
		}
	}
	c := pw.c
	modID, err := pw.load(ctx, c, t)
	if err != nil {
		return engine.Result{}, err
	}
	if ctx.Err() != nil {
		// Stopped before the child got the task: the child stays.
		return engine.Result{}, stopError(ctx, t, false)
	}
	if t.Timeout > 0 {
		// The pool's own clock: the child keeps the same timeout, and
		// stops the task itself when the guest lets it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t.Timeout, &taskTimeout{t.Timeout})
		defer cancel()
	}
	c.lastID++
	id := c.lastID
	msg := taskMsg{id: id, moduleID: modID, task: t}
	c.enc.Reset()
	msg.encodeHead(&c.enc)
	if len(c.enc.Bytes())+len(t.Input) > wire.MaxPayload {
		return engine.Result{}, p.moduleErrFor(t, fmt.Errorf("the task is %d bytes, over the %d a worker process accepts",
			len(c.enc.Bytes())+len(t.Input), wire.MaxPayload))
	}
	if err := pw.send(ctx, c, func() error { return c.w.WriteFrame(frameTask, c.enc.Bytes(), t.Input) }); err != nil {
		return pw.lost(ctx, c, t, err)
	}

	select {
	case m := <-c.msgs:
		return pw.accept(c, t, id, m)
	case <-c.exited:
		return pw.crashed(c, t)
	case <-ctx.Done():
	}
	// Ask it to stop the task, and kill it if it has not within the grace:
	// a guest blocked in a host function stops when asked; one in a loop
	// cannot, without the checks that slow every guest down.
	grace := time.NewTimer(pw.sv.grace)
	defer grace.Stop()
	cm := cancelMsg{id: id, reason: cancelReasonOf(ctx)}
	c.enc.Reset()
	cm.encode(&c.enc)
	_ = c.in.SetWriteDeadline(time.Now().Add(pw.sv.grace))
	werr := c.w.WriteFrame(frameCancel, c.enc.Bytes())
	_ = c.in.SetWriteDeadline(time.Time{})
	if werr != nil {
		pw.killChild(c, "to stop a task")
		return engine.Result{}, stopError(ctx, t, true)
	}
	select {
	case m := <-c.msgs:
		res, err := pw.accept(c, t, id, m)
		if errors.Is(err, engine.ErrTimeout) || errors.Is(err, engine.ErrCancelled) {
			// It stopped because it was asked to: say why as this side
			// knows it (the task's own timeout, Close...).
			err = stopError(ctx, t, false)
		}
		return res, err
	case <-c.exited:
		// It died as it was told to stop: the task's outcome is the stop.
		c.reap()
		pw.c = nil
		p.stats.processCrashes.Add(1)
		return engine.Result{}, stopError(ctx, t, false)
	case <-grace.C:
		pw.killChild(c, "to stop a task")
		return engine.Result{}, stopError(ctx, t, true)
	}
}

// notDeliveredError marks a task that never reached its worker process,
// which died first: safe to hand to another. crash is the death's error.
type notDeliveredError struct{ crash error }

func (e *notDeliveredError) Error() string { return e.crash.Error() }

// load makes sure the child holds t's module, sending it the first time.
func (pw *procWorker) load(ctx context.Context, c *child, t engine.Task) (uint64, error) {
	m := t.Module
	if id, ok := c.modules[m]; ok {
		return id, nil
	}
	if ctx.Err() != nil {
		return 0, stopError(ctx, t, false)
	}
	id := uint64(initModuleID + 1 + len(c.modules))
	head := moduleMsg{id: id, name: m.Name(), digest: m.Digest()}
	c.enc.Reset()
	head.encodeHead(&c.enc)
	if err := pw.send(ctx, c, func() error { return c.w.WriteFrameTo(frameModule, c.enc.Bytes(), m.Size(), m) }); err != nil {
		_, err = pw.lost(ctx, c, t, err)
		return 0, err
	}
	var grace <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case msg := <-c.msgs:
			if msg.loaded == nil || msg.loaded.id != id {
				_, err := pw.violation(c, t, "answered a module with something else")
				return 0, err
			}
			if err := msg.loaded.err; err != nil {
				return 0, err
			}
			c.modules[m] = id
			if ctx.Err() != nil {
				return 0, stopError(ctx, t, false)
			}
			return id, nil
		case <-c.exited:
			_, err := pw.crashed(c, t)
			return 0, err
		case <-done:
			// Compiling cannot be interrupted: the child has the grace to
			// finish, as it has to stop a task.
			timer := time.NewTimer(pw.sv.grace)
			defer timer.Stop()
			grace, done = timer.C, nil
		case <-grace:
			pw.killChild(c, "to stop a task")
			return 0, stopError(ctx, t, true)
		}
	}
}

// send writes a frame, giving up when ctx ends: a child that does not read
// its stdin (it is stuck) must not keep the task from stopping.
func (pw *procWorker) send(ctx context.Context, c *child, write func() error) error {
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

// lost handles a frame that could not be written whole: the task's context
// ended mid-write, or the child is dead (it died before it could read the
// frame, so the task can go to another), or it stopped reading.
func (pw *procWorker) lost(ctx context.Context, c *child, t engine.Task, err error) (engine.Result, error) {
	if ctx.Err() != nil {
		pw.killChild(c, "to stop a task")
		return engine.Result{}, stopError(ctx, t, true)
	}
	timer := time.NewTimer(exitGrace)
	defer timer.Stop()
	select {
	case <-c.exited:
		_, crash := pw.crashed(c, t)
		return engine.Result{}, &notDeliveredError{crash: crash}
	case <-timer.C:
	}
	return pw.violation(c, t, fmt.Sprintf("could not be written to (%v)", err))
}

// accept takes the child's answer to task id.
func (pw *procWorker) accept(c *child, t engine.Task, id uint64, m childMsg) (engine.Result, error) {
	p := pw.p
	r := m.result
	if r == nil || r.id != id {
		return pw.violation(c, t, fmt.Sprintf("answered task %d with something else", id))
	}
	p.stats.instancesBuilt.Add(r.instancesBuilt - c.instancesBuilt)
	p.stats.workerRestarts.Add(r.workerRestarts - c.workerRestarts)
	c.instancesBuilt, c.workerRestarts, c.cpu = r.instancesBuilt, r.workerRestarts, r.cpu
	if r.broken {
		return r.res, p.moduleErrFor(t, p.breakWith(r.err))
	}
	return r.res, r.err
}

// crashed reports a child that died under task t on its own.
func (pw *procWorker) crashed(c *child, t engine.Task) (engine.Result, error) {
	c.reap()
	pw.c = nil
	pw.p.stats.processCrashes.Add(1)
	return engine.Result{}, pw.p.moduleErrFor(t, c.crashError(funcName(t)))
}

// violation kills a child that broke the protocol and fails task t.
func (pw *procWorker) violation(c *child, t engine.Task, what string) (engine.Result, error) {
	c.breaksProtocol(errors.New(what))
	return pw.crashed(c, t)
}

func (pw *procWorker) killChild(c *child, why string) {
	c.kill(why)
	c.reap()
	pw.c = nil
}

// usedItsCPUShare reports whether the child has used half its CPU limit:
// it is replaced before its next task, so that every task can count on
// the other half (see ProcessLimits.CPUTime).
func (c *child) usedItsCPUShare() bool {
	return c.ready.cpuSeconds > 0 && c.cpu >= time.Duration(c.ready.cpuSeconds)*time.Second/2
}

func funcName(t engine.Task) string {
	if t.Func == "" {
		return "_start"
	}
	return t.Func
}

// taskTimeout marks a context that ended because the task's own Timeout ran
// out, so the error can say "after 2s".
type taskTimeout struct{ d time.Duration }

func (c *taskTimeout) Error() string        { return fmt.Sprintf("timed out after %v", c.d) }
func (c *taskTimeout) Is(target error) bool { return target == context.DeadlineExceeded }

func cancelReasonOf(ctx context.Context) cancelReason {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return cancelDeadline
	case errors.Is(cause, ErrShutdown):
		return cancelShutdown
	}
	return cancelCanceled
}

// stoppedError is a task the pool stopped: it reads like the engine's own
// timeout and cancel errors, and matches the same sentinels and cause.
type stoppedError struct {
	detail   string
	sentinel error
	cause    error
}

func (e *stoppedError) Error() string { return e.detail }
func (e *stoppedError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.sentinel, e.cause}
	}
	return []error{e.sentinel}
}

func stopError(ctx context.Context, t engine.Task, killed bool) error {
	fn := funcName(t)
	cause := context.Cause(ctx)
	var tt *taskTimeout
	e := &stoppedError{sentinel: engine.ErrCancelled}
	switch {
	case errors.As(cause, &tt):
		e.sentinel, e.detail = engine.ErrTimeout, fmt.Sprintf("function %q timed out after %v", fn, tt.d)
	case errors.Is(cause, context.DeadlineExceeded):
		e.sentinel, e.detail = engine.ErrTimeout, fmt.Sprintf("function %q timed out: the context's deadline passed", fn)
	case cause == nil || cause == context.Canceled:
		e.detail = fmt.Sprintf("function %q was cancelled", fn)
	default:
		e.detail, e.cause = fmt.Sprintf("function %q was cancelled: %v", fn, cause), cause
	}
	if killed {
		e.detail += "; its worker process was killed to stop it"
	}
	return &engine.Error{Module: t.Module.Name(), Err: e}
}
