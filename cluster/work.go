package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
)

// What a worker does with one task message, from pickup to acknowledgement.
//
// Only a worker that stops answering for the task makes it run again: every
// outcome of running it — success, trap, timeout, memory limit, a bad or
// missing module, a mount this worker refuses — is a result, published to
// the submitter before the acknowledgement. Retrying those would only fail
// the same way (a timeout included: the task had its full time). Trouble
// with the broker itself hands the task back to the queue.

// outcome is how handling a task ended, besides its result.
type outcome int

const (
	report    outcome = iota // publish the result, then acknowledge
	dropped                  // cancelled by its submitter: acknowledge, say nothing
	requeue                  // hand it back to the queue for another try
	interrupt                // the worker is closing, and interrupted it: hand it back at once
	notRun                   // the worker is closing before it ran it: hand it back at once
)

// transient marks a failure of the broker, not of the task.
type transient struct{ error }

func (t transient) Unwrap() error { return t.error }

func (w *Worker) handle(msg taskMsg) {
	wt, err := decodeTask(msg.Data())
	if err == nil && w.fetchCtx.Err() != nil {
		// Arrived as the worker stopped taking tasks: someone else's now.
		w.handBack(msg, wt)
		return
	}
	if err != nil {
		w.log.Error("dropping a task this worker cannot read", "err", err)
		if wt != nil && wt.ID != "" && wt.ReplyTo != "" {
			w.finish(msg, wt, engine.Result{}, &engine.Error{Module: wt.Name, Err: fmt.Errorf("cluster: %w", err)}, func() {})
			return
		}
		_ = msg.TermWithReason("malformed task")
		return
	}
	if wt.Job == "" && wt.Submitter != "" && !w.submitterAlive(wt.Submitter) {
		w.log.Info("dropping a task whose submitter is gone", "task", wt.ID, "module", wt.Name, "submitter", wt.Submitter)
		w.drop(msg)
		return
	}
	hb := w.heartbeat(msg)
	w.stats.running.Add(1)
	defer w.stats.running.Add(-1)

	// An at-most-once task is not judged by its deliveries: one handed to a
	// worker that died before it began runs. Its start record decides (see
	// claim).
	meta, merr := msg.Metadata()
	if merr == nil && wt.MaxDeliveries > 1 && int(meta.NumDelivered)-1+wt.Lost >= wt.MaxDeliveries {
		// Every worker that took it before went silent: it is killing them.
		// (A worker that handed it back on purpose sent it anew: see
		// handBack.)
		w.stats.gaveUp.Add(1)
		n := int(meta.NumDelivered) - 1 + wt.Lost
		w.log.Warn("giving up on a task that its workers never finished", "task", wt.ID, "module", wt.Name, "deliveries", n)
		w.finish(msg, wt, engine.Result{}, &engine.Error{Module: wt.Name, Err: fmt.Errorf(
			"%w: the task was handed to a worker %d time(s) and each worker stopped before finishing it (max deliveries %d)",
			ErrWorkerLost, n, wt.MaxDeliveries)}, hb)
		return
	}
	r := &run{}
	if merr == nil {
		r.prior = int(meta.NumDelivered) - 1 + wt.Lost
	}
	if wt.Job == "" {
		r.submitter = wt.Submitter
	}
	if !w.register(wt.ID, r) {
		hb()
		w.drop(msg)
		return
	}
	defer w.unregister(wt.ID)
	// The submitter hears that the task runs once it has run a moment: a
	// short task's result says so itself, one message fewer per task.
	started := time.AfterFunc(startedAfter, func() { _ = w.nc.Publish(wt.Started, []byte(wt.ID)) })
	defer started.Stop()

	var seq uint64
	if merr == nil {
		seq = meta.Sequence.Stream
	}
	res, out, err := w.run(wt, r, seq)
	switch out {
	case dropped:
		hb()
		w.drop(msg)
	case requeue:
		hb()
		w.log.Warn("handing a task back to the queue", "task", wt.ID, "err", err)
		w.stats.requeued.Add(1)
		_ = msg.NakWithDelay(time.Second)
	case interrupt:
		hb()
		if wt.MaxDeliveries == 1 {
			// An at-most-once task that began here: another run could
			// repeat its effects. Its start record fails the redelivery
			// with ErrWorkerLost, as if this worker had died.
			w.stats.requeued.Add(1)
			_ = msg.Nak()
			return
		}
		w.handBack(msg, wt)
	case notRun:
		hb()
		w.handBack(msg, wt)
	default:
		w.logTask(wt, res, err)
		if r.job != nil {
			w.finishJob(msg, wt, r.job, res, err, hb)
			return
		}
		w.finish(msg, wt, res, err, hb)
	}
}

// logTask says, once per task run, what ran and how it ended: an operator
// watching a worker sees its work, not only its trouble.
func (w *Worker) logTask(wt *wireTask, res engine.Result, err error) {
	fn := wt.Task.Func
	if fn == "" {
		fn = "_start"
	}
	if err != nil {
		w.log.Info("task failed", "task", wt.ID, "module", wt.Name, "func", fn, "duration", res.Duration, "err", err)
		return
	}
	w.log.Info("task done", "task", wt.ID, "module", wt.Name, "func", fn, "duration", res.Duration)
}

// handBack gives a task back to the queue on purpose, this worker closing:
// as a new message, the old one acknowledged. A redelivery of the old one
// would count against the task's MaxDeliveries as a worker that died with
// it, and a few rolling restarts would fail it with ErrWorkerLost; the new
// message carries the deliveries that did go silent (Lost) instead.
func (w *Worker) handBack(msg taskMsg, wt *wireTask) {
	w.stats.requeued.Add(1)
	meta, err := msg.Metadata()
	if err == nil {
		again := *wt
		again.Lost += int(meta.NumDelivered) - 1
		var data []byte
		if data, err = encodeTask(&again); err == nil {
			// Not under runCtx: the worker is closing, and the task must
			// still go back.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			subject := w.top.n.tasksSubject
			if wt.Route != "" {
				subject = w.top.n.routedSubject(wt.Route)
			}
			_, err = w.top.js.Publish(ctx, subject, data,
				jetstream.WithMsgID(fmt.Sprintf("%s-h%d", wt.ID, meta.Sequence.Stream)))
		}
	}
	if err != nil {
		w.log.Warn("could not hand a task back as a new message: its redelivery counts", "task", wt.ID, "err", err)
		_ = msg.Nak()
		return
	}
	_ = msg.Ack()
}

func (w *Worker) drop(msg taskMsg) {
	w.stats.cancelled.Add(1)
	_ = msg.Ack()
}

// startedAfter is how long a task runs before its worker tells the
// submitter it has it (the future's Running state).
const startedAfter = time.Millisecond

// heartbeatEvery is how often a running task's worker tells the broker it
// is still on it: a fifth of the ack deadline, so that four reports in a row
// may be lost or late before a live worker loses the task, and at least
// every second, so that an operator who shortens the AckWait of a running
// cluster (serve-nats --ack-wait) does not take tasks from its live workers
// before they reconnect.
func heartbeatEvery(ackWait time.Duration) time.Duration {
	return max(min(ackWait/5, time.Second), time.Millisecond)
}

// heartbeat tells the broker the task is still being worked on, every
// heartbeatEvery, until the returned function is called.
// No goroutine waits meanwhile: most tasks end before the first report.
func (w *Worker) heartbeat(msg taskMsg) func() {
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock() // t is set before the first report reads it
	defer mu.Unlock()
	t = time.AfterFunc(w.beat, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			_ = msg.InProgress()
			t.Reset(w.beat)
		}
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

// run prepares the task and runs it on the local pool.
func (w *Worker) run(wt *wireTask, r *run, seq uint64) (engine.Result, outcome, error) {
	fail := func(err error) (engine.Result, outcome, error) {
		return engine.Result{}, report, &engine.Error{Module: wt.Name, Err: err}
	}
	ctx := w.runCtx
	if wt.Deadline != 0 {
		deadline := time.Unix(0, wt.Deadline)
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("%w while queued: the context's deadline passed", engine.ErrTimeout))
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	task := wt.Task
	if len(task.Mounts) > 0 && !w.cfg.AllowMounts {
		return fail(fmt.Errorf("%w: the task mounts %s, and worker %s does not allow mounts", ErrNotAllowed, task.Mounts[0].HostPath, w.cfg.Name))
	}
	m, release, err := w.module(ctx, wt.Module)
	if err != nil {
		return w.prepFailed(ctx, wt, err)
	}
	defer release()
	if wt.InputRef != "" {
		if task.Input, err = w.fetchInput(ctx, wt.InputRef); err != nil {
			return w.prepFailed(ctx, wt, err)
		}
	}
	task.Module = m
	if wt.MaxDeliveries == 1 {
		if err := w.claim(ctx, wt, r.prior); err != nil {
			var lost lostError
			if errors.As(err, &lost) {
				w.stats.gaveUp.Add(1)
				w.log.Warn("not running an at-most-once task that began on a worker before", "task", wt.ID, "module", wt.Name, "err", lost.error)
				return engine.Result{}, report, &engine.Error{Module: wt.Name, Err: lost.error}
			}
			return w.prepFailed(ctx, wt, err)
		}
	}
	if wt.Job != "" {
		jr, err := w.beginJobTask(ctx, wt, seq)
		if err != nil {
			return w.prepFailed(ctx, wt, err)
		}
		if jr == nil {
			return engine.Result{}, dropped, nil
		}
		r.job = jr
	}
	fut := w.p.Submit(ctx, task)
	w.started(r, fut)
	res, err := fut.Result(context.Background())
	err = future.Cause(err)
	switch {
	case w.isCancelled(r):
		return res, dropped, err
	case w.runCtx.Err() != nil && err != nil:
		return res, interrupt, err
	}
	return res, report, err
}

// lostError is an at-most-once task that began on a worker before: it
// fails with ErrWorkerLost instead of running.
type lostError struct{ error }

// claim records that an at-most-once task begins here, as the last step
// before it runs: the record is created only if absent, so of all the
// workers a task is ever handed to (one died with it, or froze past the
// AckWait), one alone begins it, and a task handed to workers that died
// before beginning it still runs.
func (w *Worker) claim(ctx context.Context, wt *wireTask, prior int) error {
	_, err := w.top.starts.Create(ctx, wt.ID, []byte(w.cfg.Name))
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return transient{fmt.Errorf("recording that the at-most-once task begins: %w", err)}
	}
	who := "another worker"
	if e, gerr := w.top.starts.Get(ctx, wt.ID); gerr == nil && len(e.Value()) > 0 {
		who = fmt.Sprintf("worker %s", e.Value())
	}
	return lostError{fmt.Errorf("%w: the at-most-once task was handed to a worker %d time(s) before; it began on %s, which stopped before finishing it: it is not run again",
		ErrWorkerLost, prior, who)}
}

// prepFailed sorts a failure to get a task's module or input: the broker's
// trouble goes back to the queue, the task's own is its result, and so is
// its deadline passing meanwhile.
func (w *Worker) prepFailed(ctx context.Context, wt *wireTask, err error) (engine.Result, outcome, error) {
	switch {
	case w.runCtx.Err() != nil:
		return engine.Result{}, notRun, err
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return engine.Result{}, report, &engine.Error{Module: wt.Name,
			Err: fmt.Errorf("%w while queued: the context's deadline passed while the worker fetched the task's module or input", engine.ErrTimeout)}
	case errors.As(err, new(transient)):
		return engine.Result{}, requeue, err
	}
	var ee *engine.Error
	if !errors.As(err, &ee) {
		err = &engine.Error{Module: wt.Name, Err: err}
	}
	return engine.Result{}, report, err
}

// module returns the compiled module of the digest, fetching it from the
// module store the first time only (see moduleCache), held until release.
func (w *Worker) module(ctx context.Context, digest string) (_ *engine.Module, release func(), _ error) {
	return w.mods.get(ctx, digest, func(ctx context.Context) (*engine.Module, error) { return w.fetchModule(ctx, digest) })
}

func (w *Worker) fetchModule(ctx context.Context, digest string) (*engine.Module, error) {
	data, err := w.top.modules.GetBytes(ctx, digest)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: module sha256:%s is not in the cluster's module store", engine.ErrBadModule, digest)
	}
	if err != nil {
		return nil, transient{fmt.Errorf("fetching module sha256:%s: %w", digest, err)}
	}
	w.stats.modulesFetched.Add(1)
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != digest {
		return nil, fmt.Errorf("%w: the module store's copy of sha256:%s has sha256:%s: refusing to run it", engine.ErrBadModule, digest, got)
	}
	return w.e.Compile(ctx, data)
}

func (w *Worker) fetchInput(ctx context.Context, ref string) ([]byte, error) {
	data, err := w.top.payloads.GetBytes(ctx, ref)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("cluster: the task's input %s is gone from the payload store (expired, or the task was cancelled)", ref)
	}
	if err != nil {
		return nil, transient{fmt.Errorf("fetching the task's input: %w", err)}
	}
	return data, nil
}

// answerWait is how long a worker waits for a live submitter to say it has
// a result sent straight to it, before storing the result in the stream
// instead. A submitter that is gone says so at once (no responders).
const answerWait = 2 * time.Second

// answer sends the result straight to its submitter, and reports whether
// the submitter said it has it.
// (A timeout, not a context: nats.go pools the timers of its requests, and
// this is on every task's way. A closing worker may wait it out once.)
func (w *Worker) answer(wt *wireTask, data []byte) bool {
	_, err := w.nc.RequestMsg(&nats.Msg{Subject: wt.Answer, Data: data}, answerWait)
	return err == nil
}

// finish publishes the task's result for its submitter, then acknowledges
// the task: in that order, so a worker dying between the two makes the task
// run twice rather than never report. The slot is free only once the task
// is acknowledged: a slot that asked for its next task while its last
// result was on its way would hold two, and a worker dying then would hold
// both for the AckWait (one of them never started).
func (w *Worker) finish(msg taskMsg, wt *wireTask, res engine.Result, err error, hb func()) {
	data, failed, err := w.resultFrame(wt, res, err, maxInline(w.nc))
	if err != nil {
		w.requeueUnsent(msg, wt, hb, err)
		return
	}
	if wt.Answer != "" && w.answer(wt, data) {
		w.reported(msg, failed, hb)
		return
	}
	if wt.Submitter != "" && !w.submitterAlive(wt.Submitter) {
		// Nobody to keep it for: it would wait in the stream ResultTTL.
		hb()
		w.log.Info("dropping the result of a task whose submitter is gone", "task", wt.ID, "submitter", wt.Submitter)
		w.drop(msg)
		return
	}
	out := &nats.Msg{Subject: wt.ReplyTo, Data: data}
	msgID := jetstream.WithMsgID("r-" + wt.ID)
	paf, err := w.top.js.PublishMsgAsync(out, msgID)
	if err == nil {
		select {
		case <-paf.Ok():
		case err = <-paf.Err():
		case <-w.runCtx.Done():
			// Closing: no waiting on a broker that may be gone. If the
			// result did land, the task's second run is ignored.
			err = w.runCtx.Err()
		}
	}
	if err != nil {
		// Not stored: try again (the message ID keeps it to one copy)
		// until it is, or the worker closes.
		err = retry(w.runCtx, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			// A message of its own each time: nats.go may still be
			// retrying the asynchronous publish of out, whose headers a
			// publish sets.
			_, err := w.top.js.PublishMsg(ctx, &nats.Msg{Subject: wt.ReplyTo, Data: data}, msgID)
			return err
		})
	}
	if err != nil {
		w.requeueUnsent(msg, wt, hb, err)
		return
	}
	w.reported(msg, failed, hb)
}

// requeueUnsent hands back a task whose result could not be sent: the
// worker closed first, and someone else runs it.
func (w *Worker) requeueUnsent(msg taskMsg, wt *wireTask, hb func(), err error) {
	hb()
	w.log.Warn("could not send a result: handing the task back", "task", wt.ID, "err", err)
	w.handBack(msg, wt)
}

// resultFrame encodes a task's result, putting an output and stderr that
// would make it longer than limit in the payload store instead, and says
// whether the result is a failure.
func (w *Worker) resultFrame(wt *wireTask, res engine.Result, err error, limit int) ([]byte, bool, error) {
	wr := wireResult{ID: wt.ID, Err: err, Res: res, Worker: w.cfg.Name}
	data, err := encodeResult(&wr)
	if err == nil && len(data) > limit {
		ref := "out." + wt.ID
		raw := append(append(make([]byte, 0, len(res.Output)+len(res.Stderr)), res.Output...), res.Stderr...)
		err = retry(w.runCtx, func(ctx context.Context) error {
			_, err := w.top.payloads.PutBytes(ctx, ref, raw)
			return err
		})
		if err == nil {
			wr.PayloadRef, wr.OutputLen = ref, len(res.Output)
			wr.Res.Output, wr.Res.Stderr = nil, nil
			data, err = encodeResult(&wr)
		}
	}
	return data, wr.Err != nil, err
}

// reported counts a task whose result is out, and acknowledges it.
func (w *Worker) reported(msg taskMsg, failed bool, hb func()) {
	hb()
	if failed {
		w.stats.failed.Add(1)
	}
	w.stats.finished.Add(1)
	_ = msg.Ack()
}
