package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Settings name a cluster and fix how it behaves. Executors and workers of
// one cluster must agree on the Namespace; the rest is applied by whoever
// first creates the cluster's streams and buckets (and kept as it is by
// everyone who connects later), so it is set once, where the broker is set
// up: in production by the first executor or worker, by Setup, or by
// Apply, which also changes an existing cluster's (`wasmpool serve-nats`
// applies its flags so).
type Settings struct {
	// Namespace prefixes every stream, subject and bucket, so several
	// independent clusters can share one NATS account. Letters, digits, '-'
	// and '_'. "" means "wasmpool".
	Namespace string
	// AckWait is how long a worker may stay silent about a task before the
	// task is handed to another worker: how long a dead worker's tasks wait
	// to run elsewhere. Workers heartbeat running tasks every fifth of it
	// (at least every second), so a long task is never taken from a live
	// worker. 0 means 5s: failover within seconds, while a live worker may
	// miss four heartbeats in a row (a pause, a reconnection) and keep its
	// tasks. A cluster whose workers may freeze for longer (swapping hosts,
	// long GC pauses) sets more; a frozen worker's task runs twice, and its
	// submitter keeps the first result.
	AckWait time.Duration
	// Memory keeps streams and buckets in the broker's memory instead of on
	// disk: faster, but a broker restart loses every queued task.
	Memory bool
	// Replicas is how many brokers of a NATS cluster keep a copy of each
	// stream (1, 3 or 5). 0 means 1.
	Replicas int
	// ResultTTL bounds how long a result, a large input or a large output
	// waits for a submitter that never collects it (one that crashed) before
	// the broker drops it. 0 means 24h.
	ResultTTL time.Duration
	// CancelTTL is how long the record of a cancelled task is kept for the
	// worker that might pick it up. 0 means 10m.
	CancelTTL time.Duration
	// ModuleTTL is how long the module store keeps a module after it was
	// last stored: the store of a cluster that runs for months, sent
	// modules by many submitters, stays bounded. An executor stores a
	// module again when the copy there is older than half ModuleTTL, so a
	// task's module outlives the task. 0 means 7 days.
	ModuleTTL time.Duration
}

// DefaultAckWait is Settings.AckWait's default.
const DefaultAckWait = 5 * time.Second

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (s Settings) withDefaults() (Settings, error) {
	if s.Namespace == "" {
		s.Namespace = "wasmpool"
	}
	if !namespaceRE.MatchString(s.Namespace) {
		return s, fmt.Errorf("cluster: Namespace %q: want letters, digits, '-' and '_' only", s.Namespace)
	}
	if s.AckWait < 0 || s.ResultTTL < 0 || s.CancelTTL < 0 || s.ModuleTTL < 0 || s.Replicas < 0 {
		return s, errors.New("cluster: AckWait, ResultTTL, CancelTTL, ModuleTTL and Replicas cannot be negative")
	}
	if s.ModuleTTL == 0 {
		s.ModuleTTL = 7 * 24 * time.Hour
	}
	if s.AckWait == 0 {
		s.AckWait = DefaultAckWait
	}
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	if s.ResultTTL == 0 {
		s.ResultTTL = 24 * time.Hour
	}
	if s.CancelTTL == 0 {
		s.CancelTTL = 10 * time.Minute
	}
	return s, nil
}

// names are the cluster's streams, subjects and buckets.
type names struct {
	ns                                  string
	tasksStream, tasksSubject, workers  string
	resultsStream, resultsPrefix        string
	cancelSubject, startedPrefix        string
	answerPrefix                        string
	cancelBucket, modules, payloadsName string
	startBucket, workerRecords          string
	jobBucket, submitters               string
}

func namesFor(ns string) names {
	up := strings.ToUpper(ns)
	return names{
		ns:            ns,
		tasksStream:   up + "_TASKS",
		tasksSubject:  ns + ".tasks",
		workers:       "workers",
		resultsStream: up + "_RESULTS",
		resultsPrefix: ns + ".results.",
		cancelSubject: ns + ".cancel",
		startedPrefix: ns + ".started.",
		answerPrefix:  ns + ".answer.",
		cancelBucket:  ns + "_cancelled",
		startBucket:   ns + "_started",
		workerRecords: ns + "_workers",
		jobBucket:     ns + "_jobs",
		submitters:    ns + "_submitters",
		modules:       ns + "_modules",
		payloadsName:  ns + "_payloads",
	}
}

// topology is a cluster's JetStream objects, created if absent.
type topology struct {
	s        Settings
	n        names
	js       jetstream.JetStream
	tasks    jetstream.Stream
	workers  jetstream.Consumer
	results  jetstream.Stream
	cancels  jetstream.KeyValue
	starts   jetstream.KeyValue // at-most-once tasks that a worker began
	jobs     jetstream.KeyValue // the records of named jobs' tasks (jobs.go)
	modules  jetstream.ObjectStore
	payloads jetstream.ObjectStore
	ackWait  time.Duration // as the broker has it, which may differ from s.AckWait
	// moduleTTL is the module store's, as the broker has it (0: none).
	moduleTTL time.Duration
}

// Setup creates the cluster's streams and buckets with s, if they do not
// exist yet: what a broker's operator runs once, so that the settings are
// theirs and not those of whichever executor or worker connects first.
func Setup(ctx context.Context, nc *nats.Conn, s Settings) error {
	s, err := s.withDefaults()
	if err != nil {
		return err
	}
	_, err = setup(ctx, nc, s)
	return err
}

// newTopology is a cluster's names and JetStream context, nothing opened yet.
func newTopology(nc *nats.Conn, s Settings) (*topology, error) {
	if nc == nil {
		return nil, errors.New("cluster: the NATS connection is nil")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return &topology{s: s, n: namesFor(s.Namespace), js: js}, nil
}

// bucketTTL is how long kv's records live as the broker has the bucket
// (whoever made it first may have seen another AckWait), or fallback.
func bucketTTL(ctx context.Context, kv jetstream.KeyValue, fallback time.Duration) time.Duration {
	if st, err := kv.Status(ctx); err == nil && st.TTL() > 0 {
		return st.TTL()
	}
	return fallback
}

// setup opens the cluster's streams and buckets, creating what is missing.
// Existing ones are used as they are: the first to create them set them up.
func setup(ctx context.Context, nc *nats.Conn, s Settings) (*topology, error) {
	t, err := newTopology(nc, s)
	if err != nil {
		return nil, err
	}
	js := t.js
	storage := jetstream.FileStorage
	if s.Memory {
		storage = jetstream.MemoryStorage
	}
	fail := func(what string, err error) error {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) {
			err = fmt.Errorf("%w (is JetStream enabled on the NATS server?)", err)
		}
		return fmt.Errorf("cluster: setting up %s: %w", what, err)
	}

	// Tasks: a work queue, each task removed once a worker acknowledges it.
	// Redelivery is unlimited here; workers count deliveries themselves
	// against the task's own limit, so that a task that keeps killing
	// workers ends with a result instead of lying forgotten in the stream.
	t.tasks, err = createStream(ctx, js, jetstream.StreamConfig{
		Name:        t.n.tasksStream,
		Description: "wasmpool tasks waiting for a worker",
		Subjects:    []string{t.n.tasksSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    s.Replicas,
		Duplicates:  2 * time.Minute, // a submitter's retried publish is stored once
	})
	if err != nil {
		return nil, fail("the task stream", err)
	}
	t.workers, err = createConsumer(ctx, js, t.n.tasksStream, jetstream.ConsumerConfig{
		Durable:     t.n.workers,
		Description: "wasmpool workers",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     s.AckWait,
		MaxDeliver:  -1,
		// Every free slot of every worker keeps one pull request waiting:
		// this bounds the free slots of the whole cluster (past it, a slot
		// waits a second and asks again).
		MaxWaiting: 16384,
	})
	if err != nil {
		return nil, fail("the worker consumer", err)
	}
	t.ackWait = t.workers.CachedInfo().Config.AckWait

	// Results: one subject per submitter, each read (and so removed) by
	// that submitter alone. MaxAge drops what a dead submitter left.
	t.results, err = createStream(ctx, js, jetstream.StreamConfig{
		Name:        t.n.resultsStream,
		Description: "wasmpool results on their way back to the submitter",
		Subjects:    []string{t.n.resultsPrefix + "*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    s.Replicas,
		MaxAge:      s.ResultTTL,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fail("the result stream", err)
	}
	t.cancels, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: t.n.cancelBucket, Description: "wasmpool tasks cancelled by their submitter",
		TTL: s.CancelTTL, Storage: storage, Replicas: s.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		t.cancels, err = js.KeyValue(ctx, t.n.cancelBucket)
	}
	if err != nil {
		return nil, fail("the cancel records", err)
	}
	// Kept as long as a result: an at-most-once task may wait that long for
	// a worker after the one that began it died, and must not begin again.
	if t.starts, err = keyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: t.n.startBucket, Description: "wasmpool at-most-once tasks a worker has begun",
		TTL: s.ResultTTL, Storage: storage, Replicas: s.Replicas,
	}); err != nil {
		return nil, fail("the start records", err)
	}
	// Job records: each written with its job's retention as its own TTL
	// (a job sets it, not the cluster), so the bucket has none.
	if t.jobs, err = keyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: t.n.jobBucket, Description: "wasmpool named jobs: each task's state and kept result",
		LimitMarkerTTL: time.Minute, Storage: storage, Replicas: s.Replicas,
	}); err != nil {
		return nil, fail("the job records", err)
	}
	if t.modules, err = objectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket: t.n.modules, Description: "wasmpool modules by sha256",
		TTL: s.ModuleTTL, Storage: storage, Replicas: s.Replicas,
	}); err != nil {
		return nil, fail("the module store", err)
	}
	if st, err := t.modules.Status(ctx); err == nil {
		t.moduleTTL = st.TTL()
	}
	if t.payloads, err = objectStore(ctx, js, jetstream.ObjectStoreConfig{
		Bucket: t.n.payloadsName, Description: "wasmpool inputs and outputs too large for a message",
		TTL: s.ResultTTL, Storage: storage, Replicas: s.Replicas,
	}); err != nil {
		return nil, fail("the payload store", err)
	}
	return t, nil
}

func createStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, cfg.Name)
	}
	return st, err
}

func createConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.CreateConsumer(ctx, stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return js.Consumer(ctx, stream, cfg.Durable)
	}
	return c, err
}

func keyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, cfg.Bucket)
	}
	return kv, err
}

func objectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	os, err := js.CreateObjectStore(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.ObjectStore(ctx, cfg.Bucket)
	}
	return os, err
}

// Connect dials a NATS server or cluster (a comma-separated list of URLs)
// with the options a long-lived executor or worker wants: reconnect for
// ever, and keep what is published while disconnected until it can be sent.
// Close the connection after the executor or worker that uses it.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to %s: %w", url, err)
	}
	return nc, nil
}
