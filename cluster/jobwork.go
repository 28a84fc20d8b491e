package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wasmpool/wasmpool/engine"
)

// The worker's side of a named job (see jobs.go): a task of a job is run
// only if its record says it still has to be, and its result goes to the
// record, not to a submitter that may be gone.

// jobRecordRoom is what a record's JSON head may take of a message, beside
// the result frame.
const jobRecordRoom = 2 << 10

// beginJobTask reads the task's record just before it runs, and marks it
// running (with this worker and the task's place in the stream) if it is
// still to run. It returns nil when the task is not to run: a copy of a
// task whose result the job already keeps (published again by a submitter
// that attached while it ran), cancelled by CancelJob, or of a job deleted
// or expired. So a kept result is never computed twice.
func (w *Worker) beginJobTask(ctx context.Context, wt *wireTask, seq uint64) (*jobRecord, error) {
	for range 5 {
		jr, err := w.top.getJob(ctx, wt.Job)
		if err != nil {
			return nil, transient{fmt.Errorf("reading the task's job record: %w", err)}
		}
		if jr == nil || jr.ID != wt.ID || jr.State.final() || jr.State == JobCancelled {
			w.log.Info("not running a task its job no longer needs", "task", wt.ID, "module", wt.Name, "record", jobKeyState(jr))
			return nil, nil
		}
		jr.State, jr.Worker, jr.Updated = JobRunning, w.cfg.Name, time.Now().UTC()
		if seq > 0 {
			jr.Seq = seq
		}
		data, err := jr.encode()
		if err != nil {
			return nil, err
		}
		rev, err := w.top.putJob(ctx, wt.Job, data, int64(jr.rev), time.Duration(wt.JobTTL))
		if errors.Is(err, errRevision) {
			continue // its submitter noted where it is meanwhile: read again
		}
		if err != nil {
			return nil, transient{fmt.Errorf("marking the task running in its job record: %w", err)}
		}
		jr.rev = rev
		return jr, nil
	}
	return nil, transient{errors.New("the task's job record kept changing")}
}

func jobKeyState(jr *jobRecord) string {
	if jr == nil {
		return "gone"
	}
	return string(jr.State)
}

// finishJob keeps the task's result in its record, then acknowledges the
// task: in that order, as finish does. The write is conditional on the
// record being as this worker left it: a job cancelled or deleted
// meanwhile is not brought back by a late result.
func (w *Worker) finishJob(msg taskMsg, wt *wireTask, jr *jobRecord, res engine.Result, err error, hb func()) {
	data, failed, err := w.resultFrame(wt, res, err, maxInline(w.nc)-jobRecordRoom)
	if err != nil {
		w.requeueUnsent(msg, wt, hb, err)
		return
	}
	kept := *jr
	kept.State, kept.Updated, kept.result = JobDone, time.Now().UTC(), data
	if failed {
		kept.State = JobFailed
	}
	value, err := kept.encode()
	if err != nil {
		w.requeueUnsent(msg, wt, hb, err)
		return
	}
	stale := false
	err = retry(w.runCtx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := w.top.putJob(ctx, wt.Job, value, int64(jr.rev), time.Duration(wt.JobTTL))
		if errors.Is(err, errRevision) {
			stale = true
			return nil
		}
		return err
	})
	if err != nil {
		w.requeueUnsent(msg, wt, hb, err)
		return
	}
	if stale {
		w.log.Info("dropping the result of a task whose job record changed while it ran (cancelled or deleted)", "task", wt.ID)
		hb()
		w.drop(msg)
		return
	}
	w.reported(msg, failed, hb)
}

// submitterAlive bounds the broker lookup alive may make.
func (w *Worker) submitterAlive(id string) bool {
	ctx, cancel := context.WithTimeout(w.runCtx, time.Second)
	defer cancel()
	return w.live.alive(ctx, id)
}
