package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/wire"
)

// Named jobs: a submission that outlives its submitter. Every task of a job
// has a record in the cluster's job bucket (NAMESPACE_jobs), keyed by the
// job's name and a hash of the task's key, and the record is what the task
// is: queued, running (on which worker, at which place in the task stream),
// done or failed with its result frame, or cancelled. Workers write the
// result there, not to the submitter, so that "is this key done?" is a
// lookup, and a submitter that comes back (the same job name) reads every
// record once, as its watch on the job begins, and submits only the keys
// that have none. Each write carries the job's retention as its own TTL:
// the broker drops a job's records that long after they last changed,
// whatever the cluster's ResultTTL.

var (
	// ErrBadName is the error of a job name that is not 1 to 128 letters,
	// digits, '-' and '_'.
	ErrBadName = errors.New("bad job name")
	// ErrKeyReused is the error of a task of a job whose key the job
	// already has for different work (another module, function, input,
	// arguments or limits): its kept result would be the wrong one.
	ErrKeyReused = errors.New("job key reused for different work")
	// ErrNoJob is the error of a job the cluster has no record of (never
	// submitted, deleted, or past its retention).
	ErrNoJob = errors.New("no such job")
)

var jobNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// CheckJobName refuses a job name that cannot name the job's records.
func CheckJobName(name string) error {
	if !jobNameRE.MatchString(name) {
		return fmt.Errorf("cluster: job %q: %w: want 1 to 128 letters, digits, '-' and '_'", name, ErrBadName)
	}
	return nil
}

// JobTaskState is where a task of a job is.
type JobTaskState string

const (
	JobQueued    JobTaskState = "queued"    // in the task stream, waiting for a worker
	JobRunning   JobTaskState = "running"   // a worker has begun it
	JobDone      JobTaskState = "done"      // finished, its result kept
	JobFailed    JobTaskState = "failed"    // finished with an error, kept as its result
	JobCancelled JobTaskState = "cancelled" // by CancelJob: not run, or stopped
)

// final reports whether a task in this state has its outcome for good.
func (s JobTaskState) final() bool { return s == JobDone || s == JobFailed }

// jobRecord is one task's record: a JSON head, then (done or failed) a
// newline and the task's result frame, as a worker sends it to a
// submitter: one result codec for both ways.
type jobRecord struct {
	Key     string       `json:"key"`    // as the submitter gave it
	Digest  string       `json:"digest"` // of the work: module, function, input, limits
	ID      string       `json:"id"`     // the task's ID on the wire
	Seq     uint64       `json:"seq,omitempty"`
	State   JobTaskState `json:"state"`
	Worker  string       `json:"worker,omitempty"`
	Updated time.Time    `json:"updated"`

	result []byte // the result frame
	rev    uint64 // the record's revision, as read
}

// withoutResult is the record as an executor keeps it once the result
// has settled its future: a job's results are not all held in memory.
func (r *jobRecord) withoutResult() *jobRecord {
	c := *r
	c.result = nil
	return &c
}

func (r *jobRecord) encode() ([]byte, error) {
	head, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if r.result == nil {
		return head, nil
	}
	// json.Marshal writes no raw newline: the first one ends the head.
	return append(append(head, '\n'), r.result...), nil
}

func decodeJobRecord(data []byte, rev uint64) (*jobRecord, error) {
	head, result, _ := bytes.Cut(data, []byte{'\n'})
	r := &jobRecord{rev: rev}
	if err := json.Unmarshal(head, r); err != nil {
		return nil, fmt.Errorf("%w: a job record: %w", errBadFrame, err)
	}
	if len(result) > 0 {
		r.result = result
	}
	return r, nil
}

// jobMeta is a job's own record: what `wasmpool jobs` lists.
type jobMeta struct {
	Name      string        `json:"name"`
	Retention time.Duration `json:"retention"`
	Created   time.Time     `json:"created"`
	Attached  time.Time     `json:"attached"` // a submitter last attached
	Cancelled bool          `json:"cancelled,omitempty"`
}

// The bucket's keys: NAME.job for the job, NAME.t.HASH for each task.
func jobMetaKey(name string) string     { return name + ".job" }
func jobTasksFilter(name string) string { return name + ".t.*" }

// jobTaskKey is the record key of a task key: its hash, since a key is any
// string and a record key only a token.
func jobTaskKey(name, key string) string {
	sum := sha256.Sum256([]byte(key))
	return name + ".t." + hex.EncodeToString(sum[:16])
}

// workDigest identifies a task's work, to tell a key given to the same work
// again (a resumed job) from a key reused for different work. It is the
// task as the wire encodes it (one codec), the module by digest.
func workDigest(t *engine.Task, module string) string {
	var enc wire.Encoder
	enc.String(module)
	wire.EncodeTaskHead(&enc, t)
	h := sha256.New()
	h.Write(enc.Bytes())
	h.Write(t.Input)
	return hex.EncodeToString(h.Sum(nil))
}

// errRevision is a conditional write that found the record changed (or
// gone) since it was read.
var errRevision = errors.New("the job record changed meanwhile")

// putJob writes a record of the job bucket with ttl as its own lifetime
// (the job's retention), only if its revision is still rev (0: only if it
// does not exist), or whatever it is when rev < 0. It publishes to the
// bucket's subject itself: the key-value API gives a lifetime to a
// record's creation only.
func (t *topology) putJob(ctx context.Context, key string, data []byte, rev int64, ttl time.Duration) (uint64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithMsgTTL(max(ttl, time.Second))}
	if rev >= 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(uint64(rev)))
	}
	subject := "$KV." + t.n.jobBucket + "." + key
	ack, err := t.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, opts...)
	if isWrongRevision(err) && rev == 0 {
		// A record deleted, purged or expired leaves a marker, which is
		// the subject's last message: creating the record again follows it.
		if marker, ok := t.jobMarker(ctx, subject); ok {
			opts[len(opts)-1] = jetstream.WithExpectLastSequencePerSubject(marker)
			ack, err = t.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, opts...)
		}
	}
	if isWrongRevision(err) {
		return 0, errRevision
	}
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// jobMarker returns the sequence of the subject's last message if that is
// a marker of a record deleted, purged or expired.
func (t *topology) jobMarker(ctx context.Context, subject string) (uint64, bool) {
	st, err := t.js.Stream(ctx, "KV_"+t.n.jobBucket)
	if err != nil {
		return 0, false
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return 0, false
	}
	switch {
	case m.Header.Get("KV-Operation") == "DEL", m.Header.Get("KV-Operation") == "PURGE", m.Header.Get("Nats-Marker-Reason") != "":
		return m.Sequence, true
	}
	return 0, false
}

// getJob reads a task's record; nil if it has none.
func (t *topology) getJob(ctx context.Context, key string) (*jobRecord, error) {
	e, err := t.jobs.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeJobRecord(e.Value(), e.Revision())
}
