package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Looking at and acting on named jobs from outside their submitter: what
// `wasmpool jobs` and `wasmpool job NAME` do.

// JobInfo is a named job as the cluster keeps it.
type JobInfo struct {
	Name      string        `json:"name"`
	Retention time.Duration `json:"retention_ns"`
	Created   time.Time     `json:"created"`
	Attached  time.Time     `json:"attached"` // a submitter last attached to it
	// The job's tasks by state: Left are queued for a worker; Cancelled by
	// CancelJob. Total is their sum.
	Left      int `json:"left"`
	Running   int `json:"running"`
	Done      int `json:"done"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Total     int `json:"total"`
}

// JobTask is one task of a job, by its key.
type JobTask struct {
	Key    string       `json:"key"`
	ID     string       `json:"id"` // the task's ID in the cluster
	State  JobTaskState `json:"state"`
	Worker string       `json:"worker,omitempty"` // that began it (running, done, failed)
	// Updated is when its record last changed.
	Updated time.Time `json:"updated"`
}

// jobAdmin is the job bucket of a cluster opened without creating
// anything: a cluster that has none has no jobs.
func jobAdmin(ctx context.Context, nc *nats.Conn, s Settings) (*topology, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	t, err := newTopology(nc, s)
	if err != nil {
		return nil, err
	}
	t.jobs, err = t.js.KeyValue(ctx, t.n.jobBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: opening the job records of namespace %s: %w", s.Namespace, err)
	}
	return t, nil
}

// Jobs lists the cluster's named jobs, by name, with their counts.
func Jobs(ctx context.Context, nc *nats.Conn, s Settings) ([]JobInfo, error) {
	t, err := jobAdmin(ctx, nc, s)
	if err != nil || t.jobs == nil {
		return nil, err
	}
	lister, err := t.jobs.ListKeysFiltered(ctx, "*.job")
	if err != nil {
		return nil, fmt.Errorf("cluster: listing the jobs: %w", err)
	}
	var names []string
	for k := range lister.Keys() {
		names = append(names, strings.TrimSuffix(k, ".job"))
	}
	slices.Sort(names)
	infos := make([]JobInfo, 0, len(names))
	for _, name := range names {
		info, _, err := readJob(ctx, t, name)
		if errors.Is(err, ErrNoJob) {
			continue // deleted or expired as we looked
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Job reads one job and its tasks, in key order.
func Job(ctx context.Context, nc *nats.Conn, s Settings, name string) (JobInfo, []JobTask, error) {
	if err := CheckJobName(name); err != nil {
		return JobInfo{}, nil, err
	}
	t, err := jobAdmin(ctx, nc, s)
	if err != nil {
		return JobInfo{}, nil, err
	}
	if t.jobs == nil {
		return JobInfo{}, nil, fmt.Errorf("cluster: job %s: %w", name, ErrNoJob)
	}
	info, recs, err := readJob(ctx, t, name)
	if err != nil {
		return info, nil, err
	}
	tasks := make([]JobTask, len(recs))
	for i, r := range recs {
		tasks[i] = JobTask{Key: r.Key, ID: r.ID, State: r.State, Worker: r.Worker, Updated: r.Updated}
	}
	return info, tasks, nil
}

// JobTaskStatus reads one task of a job, by the key it was submitted
// under (TaskOptions.Key; a map input's or batch line's position is "#N",
// from 0). A key the job does not have is ErrNoJob.
func JobTaskStatus(ctx context.Context, nc *nats.Conn, s Settings, name, key string) (JobTask, error) {
	if err := CheckJobName(name); err != nil {
		return JobTask{}, err
	}
	t, err := jobAdmin(ctx, nc, s)
	if err != nil {
		return JobTask{}, err
	}
	if t.jobs == nil {
		return JobTask{}, fmt.Errorf("cluster: job %s: %w", name, ErrNoJob)
	}
	r, err := t.getJob(ctx, jobTaskKey(name, key))
	if err != nil {
		return JobTask{}, fmt.Errorf("cluster: job %s: key %q: %w", name, key, err)
	}
	if r == nil {
		return JobTask{}, fmt.Errorf("cluster: job %s: key %q: %w (the job has no such key)", name, key, ErrNoJob)
	}
	return JobTask{Key: r.Key, ID: r.ID, State: r.State, Worker: r.Worker, Updated: r.Updated}, nil
}

// readJob reads the job's record and every task record (one watch that
// stops once it has delivered what is there).
func readJob(ctx context.Context, t *topology, name string) (JobInfo, []*jobRecord, error) {
	info := JobInfo{Name: name}
	e, err := t.jobs.Get(ctx, jobMetaKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return info, nil, fmt.Errorf("cluster: job %s: %w", name, ErrNoJob)
	}
	if err != nil {
		return info, nil, fmt.Errorf("cluster: job %s: %w", name, err)
	}
	var m jobMeta
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return info, nil, fmt.Errorf("cluster: job %s: its record: %w", name, err)
	}
	info.Retention, info.Created, info.Attached = m.Retention, m.Created, m.Attached
	w, err := t.jobs.WatchFiltered(ctx, []string{jobTasksFilter(name)}, jetstream.IgnoreDeletes())
	if err != nil {
		return info, nil, fmt.Errorf("cluster: job %s: reading its tasks: %w", name, err)
	}
	defer func() { _ = w.Stop() }()
	var recs []*jobRecord
	for e := range w.Updates() {
		if e == nil {
			break
		}
		r, err := decodeJobRecord(e.Value(), e.Revision())
		if err != nil {
			continue
		}
		recs = append(recs, r)
		switch r.State {
		case JobQueued:
			info.Left++
		case JobRunning:
			info.Running++
		case JobDone:
			info.Done++
		case JobFailed:
			info.Failed++
		case JobCancelled:
			info.Cancelled++
		}
		info.Total++
	}
	if err := ctx.Err(); err != nil {
		return info, nil, fmt.Errorf("cluster: job %s: reading its tasks: %w", name, err)
	}
	slices.SortFunc(recs, func(a, b *jobRecord) int { return strings.Compare(a.Key, b.Key) })
	return info, recs, nil
}

// CancelJob cancels every task of the job that has not finished, through
// the path a submitter's own cancellation takes (a cancel record, a
// broadcast, the task's removal from the queue), and marks them cancelled:
// a submitter attached to the job sees their futures end with
// engine.ErrCancelled. Finished tasks keep their results. It returns how
// many tasks it cancelled.
func CancelJob(ctx context.Context, nc *nats.Conn, s Settings, name string) (int, error) {
	if err := CheckJobName(name); err != nil {
		return 0, err
	}
	s, err := s.withDefaults()
	if err != nil {
		return 0, err
	}
	t, err := setup(ctx, nc, s)
	if err != nil {
		return 0, err
	}
	info, recs, err := readJob(ctx, t, name)
	if err != nil {
		return 0, err
	}
	// The job's own record says so first: a worker that finds a task of it
	// later finds its record cancelled too.
	if e, err := t.jobs.Get(ctx, jobMetaKey(name)); err == nil {
		var m jobMeta
		if json.Unmarshal(e.Value(), &m) == nil {
			m.Cancelled = true
			if data, err := json.Marshal(m); err == nil {
				_, _ = t.putJob(ctx, jobMetaKey(name), data, -1, m.Retention)
			}
		}
	}
	// The queued ones first: a running one stopped frees its worker's slot,
	// which would take a queued one next.
	slices.SortStableFunc(recs, func(a, b *jobRecord) int {
		return cmpBool(a.State == JobRunning, b.State == JobRunning)
	})
	n := 0
	for _, r := range recs {
		ok, err := cancelJobTask(ctx, t, nc, name, r, info.Retention)
		if err != nil {
			return n, fmt.Errorf("cluster: job %s: cancelling key %q: %w", name, r.Key, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// cancelJobTask cancels one task of a job unless it has finished. A task
// whose record changes as it is cancelled (a worker begins it) is read
// again and cancelled as it is now.
func cancelJobTask(ctx context.Context, t *topology, nc *nats.Conn, name string, r *jobRecord, ttl time.Duration) (bool, error) {
	key := jobTaskKey(name, r.Key)
	for range 5 {
		if r == nil || r.State.final() || r.State == JobCancelled {
			return false, nil
		}
		c := *r
		c.State, c.Updated = JobCancelled, time.Now().UTC()
		data, err := c.encode()
		if err != nil {
			return false, err
		}
		_, err = t.putJob(ctx, key, data, int64(r.rev), ttl)
		if errors.Is(err, errRevision) {
			if r, err = t.getJob(ctx, key); err != nil {
				return false, err
			}
			continue
		}
		if err != nil {
			return false, err
		}
		if _, err := t.cancels.Put(ctx, r.ID, nil); err != nil {
			return false, err
		}
		_ = nc.Publish(t.n.cancelSubject, []byte(r.ID))
		// Only if the message there is this task: the place a worker
		// noted may be in a requirement set's queue, not the common one.
		if r.Seq > 0 {
			if m, err := t.tasks.GetMsg(ctx, r.Seq); err == nil {
				if wt, err := decodeTask(m.Data); err == nil && wt.ID == r.ID {
					_ = t.tasks.DeleteMsg(ctx, r.Seq)
				}
			}
		}
		return true, nil
	}
	return false, errors.New("its record kept changing")
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// DeleteJob removes the job's records and kept results. A submitter
// attached to it sees its waiting futures end with engine.ErrCancelled; a
// task of it still queued or running is dropped by the worker that takes
// it, or its result when it ends: cancel the job first to stop the running
// ones now.
func DeleteJob(ctx context.Context, nc *nats.Conn, s Settings, name string) error {
	if err := CheckJobName(name); err != nil {
		return err
	}
	t, err := jobAdmin(ctx, nc, s)
	if err != nil {
		return err
	}
	if t.jobs == nil {
		return fmt.Errorf("cluster: job %s: %w", name, ErrNoJob)
	}
	_, recs, err := readJob(ctx, t, name)
	if err != nil {
		return err
	}
	// Key by key, not one purge of the job's subjects: a purge marker is
	// what tells an attached submitter's watch that the record went. The
	// markers go after a minute.
	for _, r := range recs {
		if err := t.jobs.Purge(ctx, jobTaskKey(name, r.Key), jetstream.PurgeTTL(time.Minute)); err != nil {
			return fmt.Errorf("cluster: job %s: deleting key %q: %w", name, r.Key, err)
		}
	}
	if err := t.jobs.Purge(ctx, jobMetaKey(name), jetstream.PurgeTTL(time.Minute)); err != nil {
		return fmt.Errorf("cluster: job %s: deleting its record: %w", name, err)
	}
	return nil
}
