package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmpool/wasmpool/engine"
)

// The executor's side of a named job (see jobs.go): attaching to the job,
// deciding per key whether to send, wait or settle at once, and settling a
// task's future from its record when a worker writes the result.

// jobState is an executor's view of its job.
type jobState struct {
	name  string
	ttl   time.Duration
	watch jetstream.KeyWatcher
	ended chan struct{} // closed when the watch's goroutine returns

	mu      sync.Mutex
	known   map[string]*jobRecord // by record key: the broker's, as last seen
	waiting map[string]*record    // by record key: futures waiting for their record to end
	next    int                   // position of the next task without a key
}

// attachJob writes the job's own record and reads every task record the
// job has, before the first Submit: what is done is known from the start.
// A watch, not a lookup per key, and it keeps telling the executor of every
// record a worker finishes.
func (x *Executor) attachJob(ctx context.Context) (*jobState, error) {
	j := &jobState{name: x.cfg.Job, ttl: x.cfg.JobRetention, ended: make(chan struct{}),
		known: map[string]*jobRecord{}, waiting: map[string]*record{}}
	if err := x.touchJobMeta(ctx); err != nil {
		return nil, fmt.Errorf("job %s: writing its record: %w", j.name, err)
	}
	// The watch lives as long as the executor, not as long as ctx.
	w, err := x.top.jobs.WatchFiltered(x.life, []string{jobTasksFilter(j.name)})
	if err != nil {
		return nil, fmt.Errorf("job %s: watching its records: %w", j.name, err)
	}
	j.watch = w
	initial := make(chan struct{})
	go func() {
		defer close(j.ended)
		caughtUp := false
		for e := range w.Updates() {
			if e == nil {
				if !caughtUp {
					caughtUp = true
					close(initial)
				}
				continue
			}
			x.jobUpdate(j, e)
		}
		if !caughtUp {
			close(initial)
		}
	}()
	select {
	case <-initial:
		return j, nil
	case <-ctx.Done():
		_ = w.Stop()
		<-j.ended
		return nil, fmt.Errorf("job %s: reading its records: %w", j.name, ctx.Err())
	}
}

// touchJobMeta creates the job's record, or marks it attached again (and
// no longer cancelled: a submitter that attaches means to run it).
func (x *Executor) touchJobMeta(ctx context.Context) error {
	now := time.Now().UTC()
	m := jobMeta{Name: x.cfg.Job, Retention: x.cfg.JobRetention, Created: now, Attached: now}
	if e, err := x.top.jobs.Get(ctx, jobMetaKey(x.cfg.Job)); err == nil {
		var old jobMeta
		if json.Unmarshal(e.Value(), &old) == nil && !old.Created.IsZero() {
			m.Created = old.Created
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = x.top.putJob(ctx, jobMetaKey(x.cfg.Job), data, -1, x.cfg.JobRetention)
	return err
}

func (j *jobState) stopWatch() {
	_ = j.watch.Stop()
	<-j.ended
}

// jobUpdate takes a record as the watch brings it: the initial ones, then
// each change. A record that ends settles the future waiting for it.
func (x *Executor) jobUpdate(j *jobState, e jetstream.KeyValueEntry) {
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		j.mu.Lock()
		delete(j.known, key)
		rec := j.waiting[key]
		delete(j.waiting, key)
		j.mu.Unlock()
		if rec != nil {
			x.settleJob(rec, &jobRecord{State: JobCancelled})
		}
		return
	}
	r, err := decodeJobRecord(e.Value(), e.Revision())
	if err != nil {
		return // not ours to read: a newer version's
	}
	j.mu.Lock()
	j.known[key] = r
	rec := j.waiting[key]
	ends := r.State.final() || r.State == JobCancelled
	switch {
	case rec == nil || r.Digest != rec.digest:
		rec = nil
	case ends:
		delete(j.waiting, key)
		j.known[key] = r.withoutResult()
	}
	j.mu.Unlock()
	switch {
	case rec == nil:
	case ends:
		x.settleJob(rec, r)
	case r.State == JobRunning:
		rec.prom.Start()
	}
}

// claim decides what to do with a task of the job as it is submitted: it
// reports true when it settled the future itself (the job has the key's
// result, or has the key for other work); otherwise the task goes on its
// way, and its record decides whether it is sent (see prepare).
func (j *jobState) claim(x *Executor, rec *record, key string) bool {
	j.mu.Lock()
	if key == "" {
		key = "#" + strconv.Itoa(j.next)
		j.next++
	}
	rec.key, rec.jobKey = key, jobTaskKey(j.name, key)
	rec.digest = workDigest(&rec.task, rec.task.Module.Digest())
	known := j.known[rec.jobKey]
	if w := j.waiting[rec.jobKey]; w != nil && !w.fut.State().Final() {
		j.mu.Unlock()
		rec.jobKey = ""
		rec.prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf(
			"cluster: job %s: key %q: %w: it is already submitted, and not finished", j.name, key, ErrKeyReused)})
		return true
	}
	if known != nil && known.Digest != rec.digest {
		j.mu.Unlock()
		rec.jobKey = ""
		rec.prom.Resolve(engine.Result{}, j.reused(rec))
		return true
	}
	if known != nil && known.State.final() {
		j.known[rec.jobKey] = known.withoutResult()
		j.mu.Unlock()
		x.stats.resumed.Add(1)
		x.settleJob(rec, known)
		return true
	}
	j.waiting[rec.jobKey] = rec
	j.mu.Unlock()
	return false
}

func (j *jobState) reused(rec *record) error {
	return &engine.Error{Module: rec.module, Err: fmt.Errorf(
		"cluster: job %s: key %q: %w: the job has it for another module, function, input or limits", j.name, rec.key, ErrKeyReused)}
}

// forget drops a future that ended here (Close, its context) from those
// waiting for a record: the task itself goes on in the cluster.
func (j *jobState) forget(rec *record) {
	j.mu.Lock()
	if j.waiting[rec.jobKey] == rec {
		delete(j.waiting, rec.jobKey)
	}
	j.mu.Unlock()
}

// prepare makes the task's record say it is queued, just before the task
// is published, and reports whether to publish it. A key the job has
// queued or running, still in the task stream, is only waited for; one
// the job has without the task being there (its submitter died before
// publishing it, or it was cancelled) is published again, under the ID it
// had, so that the broker keeps one copy of a task published twice.
func (x *Executor) prepareJob(rec *record, deadline time.Time) (publish bool, err error) {
	j := x.job
	ctx, cancel := x.opContext(deadline)
	defer cancel()
	for range 5 {
		j.mu.Lock()
		known := j.known[rec.jobKey]
		j.mu.Unlock()
		if known == nil {
			if known, err = x.top.getJob(ctx, rec.jobKey); err != nil {
				return false, err
			}
		}
		nr := &jobRecord{Key: rec.key, Digest: rec.digest, ID: rec.id, State: JobQueued, Updated: time.Now().UTC()}
		rev := int64(0)
		switch {
		case known == nil:
		case known.Digest != rec.digest:
			return false, j.reused(rec)
		case known.State.final():
			// Finished since it was submitted here: the watch settles it.
			return false, nil
		case known.State != JobCancelled && known.Seq > 0 && x.onBroker(ctx, known.Seq, known.ID):
			x.stats.attached.Add(1)
			return false, nil
		default:
			rev = int64(known.rev)
			if known.State != JobCancelled {
				// Its old copy may still be on its way: the broker keeps
				// one of the two. A cancelled one's ID has a cancel record
				// that workers honour, so it goes out as a new task.
				nr.ID = known.ID
			}
		}
		data, err := nr.encode()
		if err != nil {
			return false, err
		}
		newRev, err := x.top.putJob(ctx, rec.jobKey, data, rev, j.ttl)
		if errors.Is(err, errRevision) {
			// Another submitter of the job, or a worker, wrote it first.
			j.mu.Lock()
			delete(j.known, rec.jobKey)
			j.mu.Unlock()
			if known, err = x.top.getJob(ctx, rec.jobKey); err != nil {
				return false, err
			}
			j.mu.Lock()
			if known != nil {
				j.known[rec.jobKey] = known
			}
			j.mu.Unlock()
			continue
		}
		if err != nil {
			return false, err
		}
		rec.wireID = nr.ID
		rec.jobRev.Store(newRev)
		return true, nil
	}
	return false, fmt.Errorf("job %s: key %q: its record kept changing under this submitter", j.name, rec.key)
}

// onBroker reports whether the task stream still holds the task id at seq:
// queued, or held by a worker (a work-queue stream drops a task once a
// worker acknowledges it).
func (x *Executor) onBroker(ctx context.Context, seq uint64, id string) bool {
	m, err := x.top.tasks.GetMsg(ctx, seq)
	if err != nil {
		return false
	}
	wt, err := decodeTask(m.Data)
	return err == nil && wt.ID == id
}

// noteSeq records where the broker stored the task, so that a submitter
// attaching later can tell it is still there. A worker that has begun it
// meanwhile wrote the record first, with the same place.
func (x *Executor) noteSeq(rec *record, seq uint64) {
	rev := rec.jobRev.Load()
	if rev == 0 {
		return
	}
	nr := &jobRecord{Key: rec.key, Digest: rec.digest, ID: rec.wireID, Seq: seq, State: JobQueued, Updated: time.Now().UTC()}
	data, err := nr.encode()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(x.life, 5*time.Second)
	defer cancel()
	_, _ = x.top.putJob(ctx, rec.jobKey, data, int64(rev), x.job.ttl)
}

// settleJob resolves a task's future from the job's record of it. A kept
// output too large for the record is read from the payload store, and
// left there: a later submitter of the job may need it too.
func (x *Executor) settleJob(rec *record, r *jobRecord) {
	rec.byResult.Store(true)
	if r.State.final() && r.result == nil {
		// Settled here once already, and its result not kept in memory
		// since: the same key submitted again reads it again.
		x.bg.Go(func() {
			ctx, cancel := x.opContext(time.Now().Add(x.cfg.PublishTimeout))
			defer cancel()
			var again *jobRecord
			err := retry(ctx, func(ctx context.Context) error {
				var err error
				again, err = x.top.getJob(ctx, rec.jobKey)
				return err
			})
			switch {
			case err != nil:
				go rec.prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf("%w: reading job %s's kept result: %w", ErrUnavailable, x.cfg.Job, err)})
			case again == nil || again.result == nil:
				x.settleJob(rec, &jobRecord{State: JobCancelled})
			default:
				x.settleJob(rec, again)
			}
		})
		return
	}
	if r.State == JobCancelled || r.result == nil {
		go rec.prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module,
			Err: fmt.Errorf("%w: job %s was cancelled (or deleted) in the cluster", engine.ErrCancelled, x.cfg.Job)})
		return
	}
	wr, err := decodeResult(r.result, func(string) string { return rec.module })
	if err != nil {
		go rec.prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf("cluster: job %s: key %q: its kept result: %w", x.cfg.Job, rec.key, err)})
		return
	}
	wr.Res.Worker = wr.Worker
	if wr.PayloadRef == "" {
		go rec.prom.Resolve(wr.Res, wr.Err)
		return
	}
	x.bg.Go(func() {
		ctx, cancel := x.opContext(time.Now().Add(x.cfg.PublishTimeout))
		defer cancel()
		var raw []byte
		ferr := retry(ctx, func(ctx context.Context) error {
			var err error
			raw, err = x.top.payloads.GetBytes(ctx, wr.PayloadRef)
			if errors.Is(err, jetstream.ErrObjectNotFound) {
				return nil
			}
			return err
		})
		res, err := wr.Res, wr.Err
		switch {
		case ferr != nil:
			res, err = engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf("%w: fetching the task's output: %w", ErrUnavailable, ferr)}
		case raw == nil:
			res, err = engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf(
				"cluster: job %s: key %q: its output is gone from the payload store (kept ResultTTL)", x.cfg.Job, rec.key)}
		default:
			x.stats.largePayloads.Add(1)
			var serr error
			if res.Output, res.Stderr, serr = wr.split(raw); serr != nil {
				res, err = engine.Result{}, &engine.Error{Module: rec.module, Err: fmt.Errorf("cluster: %w", serr)}
			}
		}
		go rec.prom.Resolve(res, err)
	})
}
