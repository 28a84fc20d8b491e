package cluster

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/internal/wire"
	"github.com/wasmpool/wasmpool/pool"
)

// Config configures an Executor.
type Config struct {
	Settings
	// MaxDeliveries is how many times a task may be handed to a worker
	// before its future fails with ErrWorkerLost: each hand-over after the
	// first means the previous worker died or went silent with the task.
	// 0 means 3. SubmitWith sets it per task (1 is at-most-once).
	MaxDeliveries int
	// TaskTimeout is the default for tasks without their own; 0 means none.
	TaskTimeout time.Duration
	// TaskFuel is the default Fuel budget for tasks without their own; 0
	// means none.
	TaskFuel uint64
	// Grants and GrantArgs are the default engine.Task.Grants and
	// GrantArgs, for tasks that set neither. They travel by name: the
	// worker's engine provides the capabilities, and refuses a task granting
	// one it lacks (engine.ErrNoCapability).
	Grants    []string
	GrantArgs map[string][]string
	// Window is how many tasks Map submits ahead of the result it waits
	// for. The executor cannot know how many workers there are: size it to
	// the cluster's free slots. 0 means 64.
	Window int
	// MaxPending is how many of this executor's tasks may be unfinished
	// before Submit blocks (backpressure). 0 means 4096.
	MaxPending int
	// PublishTimeout is how long the executor keeps trying to hand a task
	// to the broker, through disconnections and broker restarts, before the
	// task fails with ErrUnavailable (CLI: --unavailable-after). 0 means
	// 30s. A task the broker has taken is stored: it waits for its result
	// through an outage of any length, bounded only by its context.
	PublishTimeout time.Duration
	// Job names the job every task of this executor belongs to: a job
	// outlives its submitter. Its tasks' results are kept in the cluster
	// (JobRetention), and an executor opened later with the same Job
	// attaches to it: a task whose key the job has finished resolves from
	// the kept result without running again, one queued or running is
	// waited for, and only keys the job does not have are sent to workers
	// (see TaskOptions.Key). "" is an anonymous executor, whose tasks end
	// with it: once it is gone (closed, or silent for the AckWait), workers
	// drop its tasks instead of running them for nobody. Letters, digits,
	// '-' and '_' (else ErrBadName).
	Job string
	// JobRetention is how long the job's records and results are kept
	// after they last changed. 0 means the cluster's ResultTTL. (A large
	// output is kept in the payload store, for ResultTTL at most.)
	JobRetention time.Duration
	// Require is what every task needs of its worker, besides its own
	// TaskOptions.Require (see Requirements.With): the task goes only to a
	// worker that has it. A task's grants and mounts are required without
	// saying so.
	Require Requirements
	// RouteWait is how long a task that requires what no live worker has
	// waits for such a worker to appear before it fails with ErrNoWorker
	// (CLI: --route-wait). 0 means 1m.
	RouteWait time.Duration
}

func (c Config) withDefaults() (Config, error) {
	var err error
	if c.Settings, err = c.Settings.withDefaults(); err != nil {
		return c, err
	}
	if c.MaxDeliveries < 0 || c.TaskTimeout < 0 || c.Window < 0 || c.MaxPending < 0 || c.PublishTimeout < 0 || c.RouteWait < 0 || c.JobRetention < 0 {
		return c, errors.New("cluster: MaxDeliveries, TaskTimeout, Window, MaxPending, PublishTimeout, RouteWait and JobRetention cannot be negative")
	}
	if err := c.Require.check(); err != nil {
		return c, err
	}
	if c.RouteWait == 0 {
		c.RouteWait = time.Minute
	}
	if c.Job != "" {
		if err := CheckJobName(c.Job); err != nil {
			return c, err
		}
		if c.JobRetention == 0 {
			c.JobRetention = c.ResultTTL
		}
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = 3
	}
	if c.Window == 0 {
		c.Window = 64
	}
	if c.MaxPending == 0 {
		c.MaxPending = 4096
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	return c, nil
}

// TaskOptions are per-task choices of SubmitWith.
type TaskOptions struct {
	// MaxDeliveries overrides Config.MaxDeliveries for this task when > 0.
	MaxDeliveries int
	// Key names the task within its executor's job (Config.Job): the same
	// key, submitted again to the job for the same work, is the same task.
	// "" means the task's position among the executor's submissions ("#0",
	// "#1", ...), which suits a submitter that resubmits the same tasks in
	// the same order. A key the job has for different work fails with
	// ErrKeyReused. Ignored without a job.
	Key string
	// Require is what this task needs of its worker, over Config.Require.
	Require Requirements
}

// AtMostOnce runs a task on one worker at most: if that worker dies while
// running it, the future fails with ErrWorkerLost instead of the task
// running again elsewhere. For tasks with effects that must not repeat.
// The worker records that it begins the task (in a bucket kept ResultTTL)
// just before running it, and only one worker can: a task handed to a
// worker that died before beginning it runs on the next.
var AtMostOnce = TaskOptions{MaxDeliveries: 1}

// Executor runs tasks on the workers of a cluster, behind the same API as a
// pool.Pool: Submit returns a future that a worker's result resolves, and
// future.AsCompleted and future.Wait work on its futures as on any other.
// It is safe for concurrent use.
type Executor struct {
	cfg     Config
	nc      *nats.Conn
	top     *topology
	id      string
	results jetstream.ConsumeContext
	started *nats.Subscription
	answers *nats.Subscription

	mu       sync.Mutex
	tasks    map[string]*record
	closing  bool
	changed  chan struct{}   // closed and replaced whenever a task ends
	stopCh   chan struct{}   // closed when Close begins
	life     context.Context // cancelled when Close begins: ends broker operations
	stopOnce sync.Once
	stopNow  func()
	teardown sync.Once
	tdErr    error

	slots chan struct{} // one per unfinished task: MaxPending
	pub   publishQueue
	// modUploads are the module uploads done lately and under way.
	modUploads moduleUploads
	pubDone    chan struct{}
	clock      clock   // for the waits for the broker's PubAcks
	bg         tracker // network work in the background: acks, cancels, payloads
	next       atomic.Uint64

	stats  execCounters
	router router       // routed tasks' queues, opened on the first
	job    *jobState    // nil for an anonymous executor
	live   *submitterAd // the executor's liveness record
}

// record is one submitted task on its way through the cluster.
type record struct {
	id       string
	task     engine.Task // until it is published
	module   string      // the module's name, for errors
	maxDeliv int
	deadline time.Time
	fut      *future.Future[engine.Result]
	prom     *future.Promise[engine.Result]

	seq      atomic.Uint64          // in the task stream, once the broker has it
	accepted chan struct{}          // closed once published (seq set) or given up
	inputRef atomic.Pointer[string] // payload object holding a large input
	sent     atomic.Bool            // handed to the broker, at least once
	byResult atomic.Bool            // ended by a worker's result, not here
	stopCtx  func() bool
	route    *routeSet // nil: the common queue
	routedAt time.Time

	// Of a task of a job: its record's key, its key and its work's digest.
	jobKey, key, digest string
	// wireID is the ID it is published under: a task a dead submitter had
	// published keeps its ID, so that the broker stores one copy.
	wireID string
	jobRev atomic.Uint64 // of its record, as the submitter last wrote it
}

// largeInput is the payload object holding the task's input, or "". It is
// read where the task's result arrives, which the race detector cannot see
// follows the publishing.
func (r *record) largeInput() string {
	if p := r.inputRef.Load(); p != nil {
		return *p
	}
	return ""
}

// New opens an executor on the cluster nc reaches, creating the cluster's
// streams and buckets if they do not exist. The executor does not own nc:
// close the executor first, then the connection.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Executor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	top, err := setup(ctx, nc, cfg.Settings)
	if err != nil {
		return nil, err
	}
	x := &Executor{
		cfg:     cfg,
		nc:      nc,
		top:     top,
		id:      nuid.Next(),
		tasks:   map[string]*record{},
		changed: make(chan struct{}),
		stopCh:  make(chan struct{}),
		slots:   make(chan struct{}, cfg.MaxPending),
		pub:     publishQueue{wake: make(chan struct{}, 1)},
		pubDone: make(chan struct{}),
	}
	x.router.x = x
	var cancelLife context.CancelFunc
	x.life, cancelLife = context.WithCancel(context.Background())
	x.stopNow = func() { close(x.stopCh); cancelLife() }
	// Results for this executor only: its own subject, read by its own
	// consumer, which the broker drops if the executor vanishes for long.
	cons, err := top.js.CreateConsumer(ctx, top.n.resultsStream, jetstream.ConsumerConfig{
		Durable:           x.consumerName(),
		FilterSubject:     x.resultSubject(),
		AckPolicy:         jetstream.AckExplicitPolicy,
		InactiveThreshold: cfg.ResultTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: creating the result consumer: %w", err)
	}
	x.started, err = nc.Subscribe(top.n.startedPrefix+x.id, x.onStarted)
	if err != nil {
		_ = top.js.DeleteConsumer(ctx, top.n.resultsStream, x.consumerName())
		return nil, fmt.Errorf("cluster: %w", err)
	}
	x.answers, err = nc.Subscribe(top.n.answerPrefix+x.id, x.onAnswer)
	if err != nil {
		_ = x.started.Unsubscribe()
		_ = top.js.DeleteConsumer(ctx, top.n.resultsStream, x.consumerName())
		return nil, fmt.Errorf("cluster: %w", err)
	}
	x.results, err = cons.Consume(x.onResult)
	if err == nil {
		x.live, err = x.startLiveness(ctx)
	}
	if err == nil && cfg.Job != "" {
		if x.job, err = x.attachJob(ctx); err != nil {
			x.live.stop(x.nc)
		}
	}
	if err != nil {
		if x.results != nil {
			x.results.Stop()
		}
		_ = x.started.Unsubscribe()
		_ = x.answers.Unsubscribe()
		_ = top.js.DeleteConsumer(ctx, top.n.resultsStream, x.consumerName())
		return nil, fmt.Errorf("cluster: %w", err)
	}
	go x.clock.run(x.stopCh)
	go x.publisher()
	return x, nil
}

func (x *Executor) consumerName() string  { return "results-" + x.id }
func (x *Executor) resultSubject() string { return x.top.n.resultsPrefix + x.id }
func (x *Executor) answerSubject() string { return x.top.n.answerPrefix + x.id }

// ID is the executor's unique name in the cluster.
func (x *Executor) ID() string { return x.id }

// Job is the name of the executor's job (Config.Job), or "".
func (x *Executor) Job() string { return x.cfg.Job }

// Window is how many tasks Map submits ahead.
func (x *Executor) Window() int { return x.cfg.Window }

// Submit sends a task to the cluster and returns its future at once, unless
// MaxPending tasks are unfinished: then it blocks until one finishes or ctx
// ends. ctx bounds the task's whole life: its deadline travels with the task,
// and its end cancels the task wherever it is. Every error arrives through
// the future.
func (x *Executor) Submit(ctx context.Context, t engine.Task) *future.Future[engine.Result] {
	return x.SubmitWith(ctx, t, TaskOptions{})
}

// SubmitWith is Submit with per-task options, such as AtMostOnce.
func (x *Executor) SubmitWith(ctx context.Context, t engine.Task, opts TaskOptions) *future.Future[engine.Result] {
	f, prom := future.New[engine.Result]()
	x.stats.submitted.Add(1)
	x.stats.pending.Add(1)
	prom.BeforeDone(x.count)
	if t.Module == nil {
		prom.Resolve(engine.Result{}, taskerr.NoModule)
		return f
	}
	if err := wire.StreamsError(&t, "a cluster worker"); err != nil {
		prom.Resolve(engine.Result{}, err)
		return f
	}
	rec := &record{
		id:       fmt.Sprintf("%s-%d", x.id, x.next.Add(1)),
		task:     t,
		module:   t.Module.Name(),
		maxDeliv: x.cfg.MaxDeliveries,
		fut:      f,
		prom:     prom,
		accepted: make(chan struct{}),
	}
	if opts.MaxDeliveries > 0 {
		rec.maxDeliv = opts.MaxDeliveries
	}
	if rec.task.Timeout == 0 {
		rec.task.Timeout = x.cfg.TaskTimeout
	}
	if rec.task.Fuel == 0 {
		rec.task.Fuel = x.cfg.TaskFuel
	}
	if rec.task.Grants == nil && rec.task.GrantArgs == nil {
		rec.task.Grants, rec.task.GrantArgs = x.cfg.Grants, x.cfg.GrantArgs
	}
	rec.wireID = rec.id
	if x.job != nil && x.job.claim(x, rec, opts.Key) {
		return f // settled from the job's records, or refused
	}
	if d, ok := ctx.Deadline(); ok {
		rec.deadline = d
	}
	if err := x.route(rec, opts.Require); err != nil {
		prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module, Err: err})
		return f
	}
	unroute := func() {
		if rec.route != nil {
			x.router.finished(rec.route)
		}
	}
	shutdown := func() *future.Future[engine.Result] {
		unroute()
		close(rec.accepted)
		prom.Resolve(engine.Result{}, &engine.Error{Module: rec.module, Err: pool.ErrShutdown})
		return f
	}
	if x.isClosing() {
		return shutdown()
	}
	select {
	case x.slots <- struct{}{}:
	case <-ctx.Done():
		unroute()
		close(rec.accepted)
		prom.Resolve(engine.Result{}, ctxError(rec, ctx))
		return f
	case <-x.stopCh:
		return shutdown()
	}

	x.mu.Lock()
	if x.closing {
		x.mu.Unlock()
		<-x.slots
		return shutdown()
	}
	x.tasks[rec.id] = rec
	// Queued under the lock: once Close has taken it, every record it
	// cancels is either not here or in the queue the publisher drains.
	x.pub.push(rec)
	x.mu.Unlock()
	if ctx.Done() != nil {
		rec.stopCtx = context.AfterFunc(ctx, func() { prom.Resolve(engine.Result{}, ctxError(rec, ctx)) })
	}
	f.OnDone(x.finished(rec))
	return f
}

// Map runs every task of tasks on the cluster and yields the results in
// input order, reading tasks lazily, at most Window ahead of the result
// being waited for. It behaves as pool.Pool.Map does.
func (x *Executor) Map(ctx context.Context, tasks iter.Seq[engine.Task]) iter.Seq2[engine.Result, error] {
	return pool.MapWindow(ctx, x.Submit, x.cfg.Window, tasks)
}

var _ pool.Executor = (*Executor)(nil)

// ctxError is the error of a task whose context ended before its result
// came, worded as the pool words it.
func ctxError(rec *record, ctx context.Context) error {
	where := " while queued"
	if rec.fut.State() == future.Running {
		where = ""
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &engine.Error{Module: rec.module, Err: fmt.Errorf("%w%s: the context's deadline passed", engine.ErrTimeout, where)}
	}
	return &engine.Error{Module: rec.module, Err: fmt.Errorf("%w%s", engine.ErrCancelled, where)}
}

// finished runs first among a task's callbacks, however its future ended.
// A future that ended here rather than by a worker's result (cancelled, its
// context ended, the executor closed) is also cancelled in the cluster.
func (x *Executor) finished(rec *record) func(*future.Future[engine.Result]) {
	return func(f *future.Future[engine.Result]) {
		if rec.stopCtx != nil {
			rec.stopCtx()
		}
		x.mu.Lock()
		delete(x.tasks, rec.id)
		close(x.changed)
		x.changed = make(chan struct{})
		x.mu.Unlock()
		<-x.slots
		if rec.route != nil {
			x.router.finished(rec.route)
		}
		if rec.jobKey != "" {
			// A job's task outlives its future: only CancelJob stops it.
			x.job.forget(rec)
			return
		}
		if !rec.byResult.Load() {
			x.bg.Go(func() { x.cancelRemote(rec) })
		}
	}
}

// presumedDead fails the unfinished anonymous tasks this executor has
// sent: its liveness record expired while it was out of touch, and the
// workers dropped them as a dead submitter's.
func (x *Executor) presumedDead() {
	x.mu.Lock()
	var recs []*record
	for _, r := range x.tasks {
		if r.jobKey == "" && r.sent.Load() {
			recs = append(recs, r)
		}
	}
	x.mu.Unlock()
	for _, r := range recs {
		go r.prom.Resolve(engine.Result{}, &engine.Error{Module: r.module, Err: fmt.Errorf(
			"%w: this submitter was out of touch with the broker for longer than its record lives (three times the cluster's AckWait), and its workers dropped its tasks as a dead submitter's",
			ErrUnavailable)})
	}
}

// count keeps the statistics of a task as its future settles, before
// anyone can see its outcome: whoever gets a result sees it counted. It
// counts as a pool does.
func (x *Executor) count(s future.State, err error) {
	x.stats.pending.Add(-1)
	switch {
	case s == future.Succeeded:
		x.stats.succeeded.Add(1)
	case s == future.Cancelled, errors.Is(err, engine.ErrCancelled):
		x.stats.cancelled.Add(1)
	default:
		x.stats.failed.Add(1)
	}
}

func (x *Executor) isClosing() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.closing
}

// Flush waits until every task submitted so far has been accepted by the
// broker (or has failed to be), and every cancellation so far has been
// carried out in the cluster. A program that submits and exits without
// waiting for results calls it to know its tasks are safely queued: in a
// named job (Config.Job), since the tasks of an anonymous executor that is
// gone are dropped by the workers.
func (x *Executor) Flush(ctx context.Context) error {
	x.mu.Lock()
	recs := make([]*record, 0, len(x.tasks))
	for _, r := range x.tasks {
		recs = append(recs, r)
	}
	x.mu.Unlock()
	for _, r := range recs {
		select {
		case <-r.accepted:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return x.bg.wait(ctx)
}

// Shutdown stops taking tasks and waits for the submitted ones to finish.
// If ctx ends first, it cancels what is left (in the cluster too) and
// returns ctx.Err(). It may be called from a future's OnDone callback.
func (x *Executor) Shutdown(ctx context.Context) error {
	x.mu.Lock()
	x.closing = true
	x.mu.Unlock()
	for {
		x.mu.Lock()
		n, ch := len(x.tasks), x.changed
		x.mu.Unlock()
		if n == 0 {
			return x.stop()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			_ = x.Close()
			return ctx.Err()
		}
	}
}

// Close stops at once: unfinished tasks are cancelled, in the cluster too,
// and their futures end with an error that wraps pool.ErrShutdown.
func (x *Executor) Close() error {
	x.mu.Lock()
	x.closing = true
	recs := make([]*record, 0, len(x.tasks))
	for _, r := range x.tasks {
		recs = append(recs, r)
	}
	x.mu.Unlock()
	x.stopOnce.Do(x.stopNow)
	// Each on its own goroutine: a callback may call Shutdown or Close,
	// which must not wait on the futures this loop has yet to end.
	var ended sync.WaitGroup
	for _, r := range recs {
		ended.Go(func() {
			r.prom.Resolve(engine.Result{}, &engine.Error{Module: r.module, Err: fmt.Errorf("%w by Close: %w", engine.ErrCancelled, pool.ErrShutdown)})
		})
	}
	ended.Wait()
	return x.stop()
}

// stop tears the executor down once no task is left: background work ends,
// and the executor's consumer and leftover results leave the broker.
func (x *Executor) stop() error {
	x.teardown.Do(func() {
		x.stopOnce.Do(x.stopNow)
		<-x.pubDone
		x.router.close()
		x.results.Stop()
		<-x.results.Closed()
		_ = x.started.Unsubscribe()
		_ = x.answers.Unsubscribe()
		if x.job != nil {
			x.job.stopWatch()
		}
		_ = x.bg.wait(context.Background())
		x.live.stop(x.nc)
		// A broker that is down (the outage that failed the tasks) gets a
		// moment, not five seconds of the user's time: the consumer then
		// expires on its own after ResultTTL.
		wait := 5 * time.Second
		if !x.nc.IsConnected() {
			wait = 250 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := x.top.js.DeleteConsumer(ctx, x.top.n.resultsStream, x.consumerName()); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			x.tdErr = fmt.Errorf("cluster: removing the executor's result consumer: %w", err)
			return
		}
		// The consumer's acks are sent without waiting, and one still on
		// its way as the consumer goes leaves its result in the stream for
		// ResultTTL: whatever is left on this executor's subject is for
		// nobody now. (A result of a task cancelled here that arrives
		// later still waits out ResultTTL.)
		if err := x.top.results.Purge(ctx, jetstream.WithPurgeSubject(x.resultSubject())); err != nil {
			x.tdErr = fmt.Errorf("cluster: removing the executor's leftover results: %w", err)
		}
	})
	return x.tdErr
}

// ExecutorStats is a snapshot of an executor's counters.
type ExecutorStats struct {
	Submitted, Pending, Succeeded, Failed, Cancelled int64
	// Resumed counts the tasks of a job settled from its kept results,
	// without running; Attached those found queued or running for the job
	// (a submitter before this one sent them), waited for, not sent again.
	Resumed, Attached int64
	ModulesUploaded   int64 // modules this executor put in the module store
	LargePayloads     int64 // inputs and outputs that went through the payload store
}

type execCounters struct {
	submitted, pending, succeeded, failed, cancelled, modulesUploaded, largePayloads atomic.Int64
	resumed, attached                                                                atomic.Int64
}

// Stats returns a snapshot of the executor's counters.
func (x *Executor) Stats() ExecutorStats {
	c := &x.stats
	return ExecutorStats{
		Submitted: c.submitted.Load(), Pending: c.pending.Load(), Succeeded: c.succeeded.Load(),
		Failed: c.failed.Load(), Cancelled: c.cancelled.Load(), Resumed: c.resumed.Load(), Attached: c.attached.Load(),
		ModulesUploaded: c.modulesUploaded.Load(), LargePayloads: c.largePayloads.Load(),
	}
}
