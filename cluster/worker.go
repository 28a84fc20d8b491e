package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/pool"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Settings
	// Pool is the local pool the worker runs tasks on: its Mode, and its
	// Workers, which is also how many tasks the worker takes at once (its
	// slots). QueueSize is ignored: the worker never takes a task it has no
	// free slot for.
	Pool pool.Config
	// Name identifies the worker in results and logs. "" means host-pid.
	Name string
	// AllowMounts lets tasks mount directories of this worker's host. Off
	// by default: a submitter could otherwise read any file the worker can.
	AllowMounts bool
	// Labels say what this worker has that tasks may need (gpu=a100,
	// zone=eu-west-1): advertised in its WorkerInfo.
	Labels map[string]string
	// PollWait is how long a request for tasks (one for the slots free at
	// the time) waits at the broker before it is renewed. 0 means 10s. A request the broker forgot
	// (it restarted) is noticed within two of its idle heartbeats (a quarter
	// of PollWait, at most half a second each) and made again.
	PollWait time.Duration
	// Logger receives the worker's notable events; nil discards them.
	Logger *slog.Logger
	// MaxModules is how many modules the worker keeps compiled, the least
	// recently used dropped first (and fetched again if a task needs it):
	// a worker runs for weeks, and may be sent any number of modules.
	// 0 means 256.
	MaxModules int
	// ModuleFailureTTL is how long the worker remembers that a module could
	// not be used (not in the store, not valid, importing what this worker
	// does not grant), failing its tasks at once meanwhile. 0 means 1m.
	ModuleFailureTTL time.Duration
}

// Worker takes tasks from a cluster and runs them on a local pool: it asks
// for a task only when a slot is free, tells the submitter when it starts
// one, heartbeats it while it runs, publishes its result, then acknowledges
// it. A worker that dies before the acknowledgement loses the task to
// another worker after the cluster's AckWait.
type Worker struct {
	cfg  WorkerConfig
	nc   *nats.Conn
	top  *topology
	e    *engine.Engine
	p    *pool.Pool
	log  *slog.Logger
	beat time.Duration // between a running task's progress reports
	// pullBeat is the broker's idle heartbeat on a waiting pull request.
	pullBeat time.Duration

	fetchCtx  context.Context // ends when the worker stops taking tasks
	stopFetch context.CancelFunc
	runCtx    context.Context // ends when the worker is closed: interrupts tasks
	kill      context.CancelFunc
	slots     sync.WaitGroup
	finishing sync.WaitGroup // results on their way, not yet acknowledged
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	cancelSub *nats.Subscription
	cancelKV  jetstream.KeyWatcher
	watching  sync.WaitGroup

	mu        sync.Mutex
	running   map[string]*run
	cancelled map[string]time.Time // tasks cancelled by broadcast, recently
	pruneAt   int                  // size of cancelled that triggers a sweep
	mods      *moduleCache

	stats  workerCounters
	adv    *advertiser
	routes *routeWatch
	live   *liveness // which submitters are still there
}

// run is one task being worked on.
type run struct {
	fut       *future.Future[engine.Result]
	cancelled bool       // by its submitter
	prior     int        // deliveries of the task before this one (see wireTask.Lost)
	submitter string     // of an anonymous task: its executor, whose end ends it
	job       *jobRecord // of a job's task: its record as this worker wrote it
}

// NewWorker connects a worker to the cluster nc reaches (creating the
// cluster's streams and buckets if they do not exist) and starts taking
// tasks. Tasks run on a pool of e: the engine's configuration (memory
// limit, cache directory, host modules) is this worker's. The worker owns
// neither nc nor e: close the worker first.
func NewWorker(ctx context.Context, nc *nats.Conn, e *engine.Engine, cfg WorkerConfig) (*Worker, error) {
	var err error
	if cfg.Settings, err = cfg.Settings.withDefaults(); err != nil {
		return nil, err
	}
	if cfg.PollWait < 0 || cfg.MaxModules < 0 || cfg.ModuleFailureTTL < 0 {
		return nil, errors.New("cluster: PollWait, MaxModules and ModuleFailureTTL cannot be negative")
	}
	if cfg.MaxModules == 0 {
		cfg.MaxModules = 256
	}
	if cfg.ModuleFailureTTL == 0 {
		cfg.ModuleFailureTTL = time.Minute
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 10 * time.Second
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	top, err := setup(ctx, nc, cfg.Settings)
	if err != nil {
		return nil, err
	}
	pcfg := cfg.Pool
	pcfg.QueueSize = 0
	p, err := pool.New(e, pcfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	w := &Worker{
		cfg: cfg, nc: nc, top: top, e: e, p: p, log: log.With("worker", cfg.Name),
		beat:      heartbeatEvery(top.ackWait),
		pullBeat:  max(min(cfg.PollWait/4, 500*time.Millisecond), time.Millisecond),
		done:      make(chan struct{}),
		running:   map[string]*run{},
		cancelled: map[string]time.Time{},
		pruneAt:   1024,
		mods:      newModuleCache(cfg.MaxModules, cfg.ModuleFailureTTL),
	}
	w.fetchCtx, w.stopFetch = context.WithCancel(context.Background())
	w.runCtx, w.kill = context.WithCancel(context.Background())
	// Listen for cancellations before taking any task, so that none can
	// slip between the two.
	if err := w.watchCancels(ctx); err != nil {
		_ = p.Close()
		return nil, err
	}
	if err := w.watchSubmitters(ctx); err != nil {
		w.kill()
		w.stopWatchingCancels()
		_ = p.Close()
		return nil, fmt.Errorf("cluster: watching the submitters: %w", err)
	}
	if w.adv, err = w.startAdvert(ctx); err != nil {
		w.kill()
		w.stopWatchingCancels()
		_ = p.Close()
		return nil, err
	}
	if w.routes, err = w.watchRoutes(ctx); err != nil {
		w.stopFetch()
		w.adv.stopAdvert()
		w.stopWatchingCancels()
		_ = p.Close()
		return nil, err
	}
	n := p.Workers()
	tasks, freed := make(chan taskMsg, n), make(chan struct{}, n)
	w.slots.Add(n + 1)
	go func() {
		defer w.slots.Done()
		w.pull(n, tasks, freed)
	}()
	for range n {
		go w.slot(tasks, freed)
	}
	go func() {
		w.slots.Wait()
		w.finishing.Wait()
		close(w.done)
	}()
	w.log.Info("worker started", "slots", p.Workers(), "mode", p.Mode().String())
	return w, nil
}

// Name is the worker's name.
func (w *Worker) Name() string { return w.cfg.Name }

// Done is closed once the worker has stopped taking and running tasks:
// after Shutdown or Close, or when its connection was closed under it.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Shutdown stops taking tasks and waits for the running ones to finish and
// report. If ctx ends first, it closes the worker (the unfinished tasks go
// back to the queue) and returns ctx.Err().
func (w *Worker) Shutdown(ctx context.Context) error {
	w.stopFetch()
	select {
	case <-w.done:
		return w.Close()
	case <-ctx.Done():
		_ = w.Close()
		return ctx.Err()
	}
}

// Close stops at once: running tasks are interrupted and handed back to the
// queue at once, for another worker to run.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() {
		w.stopFetch()
		w.kill()
		<-w.done
		<-w.routes.done
		w.adv.stopAdvert()
		w.stopWatchingCancels()
		w.closeErr = w.p.Close()
		w.mods.close()
		w.log.Info("worker stopped")
	})
	return w.closeErr
}

// slot runs the tasks the pull goroutine hands it, one at a time, saying
// when it is free again.
func (w *Worker) slot(tasks <-chan taskMsg, freed chan<- struct{}) {
	defer w.slots.Done()
	for msg := range tasks {
		w.handle(msg)
		freed <- struct{}{} // room for every slot: never blocks
	}
}

// backoff paces a slot's requests to a broker that is not answering: at
// once the first time, then doubling up to a second, so that a broker back
// from a restart has its workers back within a second, and one that is
// down is not flooded.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

func (b *backoff) wait(ctx context.Context) {
	if b.d > 0 {
		pause(ctx, b.d)
	}
	b.d = min(max(2*b.d, 50*time.Millisecond), time.Second)
}

// pause waits d, or less if ctx ends: the pace of retries against a broker
// that is not answering.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// cancelRun stops a task being worked on, as its submitter asked.
func (w *Worker) cancelRun(id string) {
	w.mu.Lock()
	var fut *future.Future[engine.Result]
	if r := w.running[id]; r != nil {
		r.cancelled = true
		fut = r.fut
	}
	w.mu.Unlock()
	if fut != nil {
		fut.Cancel()
	}
}

// register records a task as being worked on, unless its cancellation has
// already been broadcast.
func (w *Worker) register(id string, r *run) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.cancelled[id]; ok {
		return false
	}
	w.running[id] = r
	return true
}

func (w *Worker) unregister(id string) {
	w.mu.Lock()
	delete(w.running, id)
	w.mu.Unlock()
}

// started attaches the pool's future to the run, cancelling it at once if
// the cancellation came while the task was being prepared.
func (w *Worker) started(r *run, fut *future.Future[engine.Result]) {
	w.mu.Lock()
	r.fut = fut
	c := r.cancelled
	w.mu.Unlock()
	if c {
		fut.Cancel()
	}
}

func (w *Worker) isCancelled(r *run) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return r.cancelled
}

// WorkerStats is a snapshot of a worker's counters.
type WorkerStats struct {
	Running        int64 // tasks being worked on now
	Finished       int64 // tasks whose result was published (success or failure)
	Failed         int64 // those of Finished whose result is an error
	Cancelled      int64 // tasks stopped or skipped: cancelled, their submitter gone, or their job's result already kept
	Requeued       int64 // tasks handed back to the queue (worker closing, broker trouble)
	GaveUp         int64 // tasks failed with ErrWorkerLost after too many deliveries
	ModulesFetched int64 // modules fetched from the module store
	ModulesCached  int64 // modules the worker holds now (at most MaxModules)
}

type workerCounters struct {
	running, finished, failed, cancelled, requeued, gaveUp, modulesFetched atomic.Int64
}

// Stats returns a snapshot of the worker's counters.
func (w *Worker) Stats() WorkerStats {
	c := &w.stats
	return WorkerStats{
		Running: c.running.Load(), Finished: c.finished.Load(), Failed: c.failed.Load(), Cancelled: c.cancelled.Load(),
		Requeued: c.requeued.Load(), GaveUp: c.gaveUp.Load(), ModulesFetched: c.modulesFetched.Load(),
		ModulesCached: int64(w.mods.len()),
	}
}
