package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmpool/wasmpool/engine"
)

// The executor's side of the wire: publishing tasks, collecting results,
// carrying cancellations into the cluster.
//
// Futures are never resolved on the goroutine of a NATS callback, the
// publisher or tracked background work: a user's OnDone callback may call
// Shutdown, which waits for all of those.

// publishQueue holds the records Submit has accepted for the publisher. It
// is a slice, not a channel: Submit pushes under the executor's lock, and a
// push must never block there (a cancelled task frees its MaxPending slot
// before the publisher has taken its record, so no fixed capacity is
// enough).
type publishQueue struct {
	mu   sync.Mutex
	recs []*record
	wake chan struct{} // holds a value when recs may be non-empty
}

func (q *publishQueue) push(rec *record) {
	q.mu.Lock()
	q.recs = append(q.recs, rec)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *publishQueue) take() []*record {
	q.mu.Lock()
	defer q.mu.Unlock()
	recs := q.recs
	q.recs = nil
	return recs
}

// publisher hands tasks to the broker one at a time, in submission order,
// so that the stream holds them in the order they were submitted — but for
// a task that waits for its module or its large input to be stored: that
// happens off this goroutine (see publish), and the tasks after it go
// ahead.
func (x *Executor) publisher() {
	defer close(x.pubDone)
	for {
		select {
		case <-x.pub.wake:
			for _, rec := range x.pub.take() {
				select {
				case <-x.stopCh:
					close(rec.accepted) // Close ended it; it never left
				default:
					testHookPublish()
					x.publish(rec)
				}
			}
		case <-x.stopCh:
			for _, rec := range x.pub.take() {
				close(rec.accepted) // Close ended it; it never left
			}
			return
		}
	}
}

// testHookPublish is called as the publisher takes a task: the test of a
// stalled publisher holds it there.
var testHookPublish = func() {}

// testHookLargeInput is called as a large input is about to be stored: the
// test of a large input that takes long holds it there.
var testHookLargeInput = func() {}

// publish hands a task to the broker: at once when its module is stored
// and its input fits in the message. A task whose module the store may
// lack waits for the module's upload (one for all the tasks that need it,
// see moduleUploads); one whose input is too large for a message stores it
// on a goroutine of its own first: one big input or new module does not
// hold up the tasks submitted after it.
func (x *Executor) publish(rec *record) {
	if rec.jobKey != "" && rec.jobRev.Load() == 0 {
		// Its record first, which may say the task is not to be sent:
		// a round trip, off the publisher's way.
		x.bg.Go(func() {
			if rec.fut.State().Final() {
				close(rec.accepted)
				return
			}
			send, err := x.prepareJob(rec, time.Now().Add(x.cfg.PublishTimeout))
			switch {
			case errors.Is(err, ErrKeyReused):
				close(rec.accepted)
				go rec.prom.Resolve(engine.Result{}, err)
			case err != nil:
				x.giveUp(rec, fmt.Errorf("job %s: writing the task's record: %w", x.cfg.Job, err))
			case send:
				x.publish(rec)
			default:
				close(rec.accepted) // the job has it: its record settles it
			}
		})
		return
	}
	t := rec.task
	rec.task = engine.Task{} // the input may be large: do not keep it
	if rec.fut.State().Final() {
		close(rec.accepted) // cancelled before it left
		return
	}
	deadline := time.Now().Add(x.cfg.PublishTimeout)
	m := t.Module
	wt := wireTask{
		ID: rec.wireID, ReplyTo: x.resultSubject(), Started: x.top.n.startedPrefix + x.id, Answer: x.answerSubject(),
		Module: m.Digest(), Name: m.Name(), MaxDeliveries: rec.maxDeliv, Submitter: x.id, Task: t,
	}
	if rec.jobKey != "" {
		// Its result goes to the job's record, which this executor
		// watches, and outlives it.
		wt.Answer, wt.Job, wt.JobTTL = "", rec.jobKey, x.job.ttl.Nanoseconds()
	}
	if rec.route != nil {
		wt.Route = rec.route.key
	}
	wt.Task.Module = nil
	if !rec.deadline.IsZero() {
		wt.Deadline = rec.deadline.UnixNano()
	}
	data, err := encodeTask(&wt)
	large := err == nil && len(data) > maxInline(x.nc)
	publishNow := func() {
		if !large {
			x.send(rec, data, err, deadline)
			return
		}
		x.bg.Go(func() {
			if rec.fut.State().Final() {
				close(rec.accepted) // cancelled while it waited
				return
			}
			if err := x.storeInput(rec, &wt, deadline); err != nil {
				x.giveUp(rec, fmt.Errorf("storing the input: %w", err))
				return
			}
			data, err := encodeTask(&wt)
			if err == nil && len(data) > maxInline(x.nc) {
				err = fmt.Errorf("the task's arguments and environment take %d bytes, over the broker's message limit", len(data))
			}
			x.send(rec, data, err, deadline)
		})
	}
	waiting := x.modUploads.after(x, m, deadline, func(uerr error) {
		switch {
		case uerr != nil:
			x.giveUp(rec, fmt.Errorf("storing the module: %w", uerr))
		case rec.fut.State().Final():
			close(rec.accepted) // cancelled while it waited
		default:
			publishNow()
		}
	})
	if !waiting {
		publishNow()
	}
}

// storeInput puts a task's input, too large for one message, in the payload
// store, and names it in the task instead.
func (x *Executor) storeInput(rec *record, wt *wireTask, deadline time.Time) error {
	testHookLargeInput()
	ctx, cancel := x.opContext(deadline)
	defer cancel()
	ref := "in." + rec.id
	err := retry(ctx, func(ctx context.Context) error {
		if err := x.whileConnected(); err != nil {
			return err
		}
		_, err := x.top.payloads.PutBytes(ctx, ref, wt.Task.Input)
		return err
	})
	if err != nil {
		return err
	}
	x.stats.largePayloads.Add(1)
	rec.inputRef.Store(&ref)
	wt.InputRef = ref
	wt.Task.Input = nil
	return nil
}

// send publishes a task's message (or fails the task with encErr, the
// message's own trouble), and waits for the broker to store it in the
// background.
func (x *Executor) send(rec *record, data []byte, encErr error, deadline time.Time) {
	if encErr != nil {
		close(rec.accepted)
		go rec.prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf("cluster: %w", encErr)})
		return
	}
	if x.isStopped() {
		close(rec.accepted) // Close ended it; it never left
		return
	}
	msg := &nats.Msg{Subject: x.top.n.tasksSubject, Data: data}
	if rec.route != nil {
		msg.Subject = rec.route.subject
	}
	rec.sent.Store(true)
	var paf jetstream.PubAckFuture
	var err error
	if x.nc.IsConnected() {
		if paf, err = x.top.js.PublishMsgAsync(msg, jetstream.WithMsgID(rec.wireID)); err != nil {
			paf = nil // retried synchronously below
		}
	}
	x.bg.Go(func() { x.awaitAck(rec, msg, paf, deadline) })
}

// maxInline is the largest task or result frame sent as one message; the
// rest of the broker's limit is left for headers.
func maxInline(nc *nats.Conn) int {
	return int(nc.MaxPayload()) - 8<<10
}

// awaitAck waits for the broker to store the task, publishing again (under
// the same message ID, so it is stored once) until it does or the
// PublishTimeout passes.
func (x *Executor) awaitAck(rec *record, msg *nats.Msg, paf jetstream.PubAckFuture, deadline time.Time) {
	if paf != nil {
		// The coarse clock, not a timer or a context of its own: this wait
		// is on every task's way, thousands at once.
	wait:
		for {
			select {
			case ack := <-paf.Ok():
				x.accept(rec, ack.Sequence)
				return
			case <-paf.Err():
				break wait
			case <-x.stopCh:
				break wait
			case <-x.clock.tick():
				if time.Now().After(deadline) {
					// The connection went down with the task on its way,
					// and the broker never said: unavailable, not a wait
					// without end.
					break wait
				}
			}
		}
		if x.isStopped() {
			close(rec.accepted)
			return
		}
	}
	ctx, cancel := x.opContext(deadline)
	defer cancel()
	var ack *jetstream.PubAck
	err := retry(ctx, func(ctx context.Context) error {
		if err := x.whileConnected(); err != nil {
			return err
		}
		var err error
		ack, err = x.top.js.PublishMsg(ctx, msg, jetstream.WithMsgID(rec.wireID))
		return err
	})
	if err != nil {
		x.giveUp(rec, err)
		return
	}
	x.accept(rec, ack.Sequence)
}

// whileConnected fails an attempt to hand the broker something while the
// connection is down: nats.go would keep the message in its reconnect
// buffer and send it on reconnecting, so that a task failed as unavailable
// meanwhile would be stored, and run, after all.
func (x *Executor) whileConnected() error {
	if x.nc.IsConnected() {
		return nil
	}
	return fmt.Errorf("not connected to the broker (%s)", x.nc.Status())
}

func (x *Executor) isStopped() bool {
	select {
	case <-x.stopCh:
		return true
	default:
		return false
	}
}

func (x *Executor) accept(rec *record, seq uint64) {
	rec.seq.Store(seq)
	if rec.jobKey != "" {
		x.noteSeq(rec, seq)
	}
	close(rec.accepted)
}

// giveUp fails a task the broker would not take.
func (x *Executor) giveUp(rec *record, cause error) {
	close(rec.accepted)
	err := &engine.Error{Module: rec.module, Err: fmt.Errorf("%w: the broker did not take the task within %v: %w",
		ErrUnavailable, x.cfg.PublishTimeout, cause)}
	select {
	case <-x.stopCh:
		return // Close has already ended it
	default:
	}
	go rec.prom.Resolve(engine.Result{}, err)
}

// opContext is a context for the broker operations of one task: it ends at
// deadline, or when Close begins.
func (x *Executor) opContext(deadline time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(x.life, deadline)
}

// errNoAnswer is the cause of an outage in which the broker said nothing at
// all (the connection was down): the retries' deadline is not the task's.
var errNoAnswer = errors.New("no answer from the broker")

// retry calls op until it succeeds or ctx ends, pausing between attempts
// (an outage is not made worse by hammering the broker). Its error is the
// broker's last word (no responders, disconnected), rather than the context
// ending that cut the last attempt short, when there was one.
func retry(ctx context.Context, op func(context.Context) error) error {
	pause := 50 * time.Millisecond
	var last error
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			last = err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			switch {
			case last != nil:
				return last
			case errors.Is(err, context.DeadlineExceeded):
				// Not the task's deadline: the broker's silence.
				return errNoAnswer
			}
			return err
		}
		pause = min(2*pause, time.Second)
	}
}

// uploadModule puts the module's bytes in the module store under their
// digest, unless a copy young enough is there already (see
// Settings.ModuleTTL).
func (x *Executor) uploadModule(ctx context.Context, m *engine.Module) error {
	info, err := x.top.modules.GetInfo(ctx, m.Digest())
	if err == nil && !stale(info.ModTime, x.top.moduleTTL, time.Now()) {
		return nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return err
	}
	if _, err := x.top.modules.PutBytes(ctx, m.Digest(), m.Bytes()); err != nil {
		return err
	}
	x.stats.modulesUploaded.Add(1)
	return nil
}

// cancelRemote carries a cancellation into the cluster: a record that a
// worker picking the task up will find, a broadcast that stops it where it
// runs, and the task's removal from the queue. Each step is best effort;
// together they leave no window in which the task starts unnoticed.
func (x *Executor) cancelRemote(rec *record) {
	<-rec.accepted
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rec.sent.Load() {
		_, _ = x.top.cancels.Put(ctx, rec.id, nil)
		_ = x.nc.Publish(x.top.n.cancelSubject, []byte(rec.id))
		if seq := rec.seq.Load(); seq > 0 {
			stream := x.top.tasks
			if rec.route != nil {
				stream = x.router.rs.stream
			}
			_ = stream.DeleteMsg(ctx, seq)
		}
	}
	if ref := rec.largeInput(); ref != "" {
		_ = x.top.payloads.Delete(ctx, ref)
	}
}

func (x *Executor) lookup(id string) *record {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.tasks[id]
}

// onStarted marks a task Running when a worker says it has it.
func (x *Executor) onStarted(m *nats.Msg) {
	if rec := x.lookup(string(m.Data)); rec != nil {
		rec.prom.Start()
	}
}

// onAnswer takes a result a worker sent straight here, and says so: the
// worker then has no need to store it in the result stream. It says so
// first: the result is here, in memory, and the worker's slot waits.
func (x *Executor) onAnswer(m *nats.Msg) {
	_ = m.Respond(nil)
	x.takeResult(m.Data)
}

// onResult takes a result from the result stream: one this executor did
// not answer when it was sent (it was disconnected, or busy past the
// worker's patience).
func (x *Executor) onResult(msg jetstream.Msg) {
	_ = msg.Ack() // nothing more to learn from it once read
	x.takeResult(msg.Data())
}

// takeResult resolves a task's future from a worker's result. A result
// that comes twice (answered late, and stored too) finds no task the
// second time.
func (x *Executor) takeResult(data []byte) {
	var rec *record
	r, err := decodeResult(data, func(id string) string {
		if rec = x.lookup(id); rec != nil {
			return rec.module
		}
		return ""
	})
	if err != nil {
		return // not ours to understand: a newer worker, or garbage
	}
	r.Res.Worker = r.Worker // the result says which worker ran it
	if rec == nil {
		// Cancelled or ended here first: only its leftovers remain.
		if r.PayloadRef != "" {
			x.bg.Go(func() { x.deletePayload(r.PayloadRef) })
		}
		return
	}
	if r.PayloadRef == "" && rec.largeInput() == "" {
		rec.byResult.Store(true)
		go rec.prom.Resolve(r.Res, r.Err)
		return
	}
	x.bg.Go(func() {
		if ref := rec.largeInput(); ref != "" {
			x.deletePayload(ref)
		}
		res, err := r.Res, r.Err
		if r.PayloadRef != "" {
			ctx, cancel := x.opContext(time.Now().Add(x.cfg.PublishTimeout))
			defer cancel()
			var raw []byte
			ferr := retry(ctx, func(ctx context.Context) error {
				var err error
				raw, err = x.top.payloads.GetBytes(ctx, r.PayloadRef)
				return err
			})
			if ferr != nil {
				rec.byResult.Store(true)
				go rec.prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module,
					Err: fmt.Errorf("%w: fetching the task's output: %w", ErrUnavailable, ferr)})
				return
			}
			x.stats.largePayloads.Add(1)
			x.deletePayload(r.PayloadRef)
			var serr error
			if res.Output, res.Stderr, serr = r.split(raw); serr != nil {
				res, err = engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf("cluster: %w", serr)}
			}
		}
		rec.byResult.Store(true)
		go rec.prom.Resolve(res, err)
	})
}

func (x *Executor) deletePayload(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = x.top.payloads.Delete(ctx, name)
}

// clock is a coarse clock for the many waits that only need to notice, to
// within clockTick, that their deadline passed: tick's channel is closed
// and replaced every clockTick, until stop is closed.
type clock struct {
	mu sync.Mutex
	ch chan struct{}
}

const clockTick = 100 * time.Millisecond

func (c *clock) tick() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *clock) run(stop <-chan struct{}) {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-stop:
			return
		}
		c.mu.Lock()
		if c.ch != nil {
			close(c.ch)
			c.ch = nil
		}
		c.mu.Unlock()
	}
}
