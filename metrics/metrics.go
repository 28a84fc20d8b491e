package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/taskerr"
	"github.com/wasmpool/wasmpool/pool"
)

// Namespace prefixes every metric's name.
const Namespace = "wasmpool"

// Bucket bounds of the histograms, in seconds, and in instructions for
// fuel: from a warm call (tens of microseconds) to a long task, each bound
// about 2.5 to 4 times the one before.
var (
	waitBuckets = prometheus.ExponentialBucketsRange(100e-6, 60, 12)
	runBuckets  = prometheus.ExponentialBucketsRange(10e-6, 300, 14)
	fuelBuckets = prometheus.ExponentialBuckets(1e3, 10, 10)
)

// Metrics is a prometheus.Collector of a pool's tasks: per-task metrics,
// which it hears of through TaskDone (give it to pool.Config.OnTaskDone),
// and the counters of whatever it watches (WatchPool, WatchEngine,
// WatchWorker), read at each scrape. One Metrics serves one pool: for
// several, make one each and tell them apart with
// prometheus.WrapRegistererWith. It is safe for concurrent use.
type Metrics struct {
	tasks *prometheus.CounterVec
	wait  prometheus.Histogram
	run   prometheus.Histogram
	fuel  prometheus.Histogram

	mu     sync.Mutex
	pool   func() (pool.Stats, int) // the counters, and the workers
	engine *engine.Engine
	worker *cluster.Worker
}

// New returns a Metrics that has heard of no task and watches nothing yet.
func New() *Metrics {
	m := &Metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tasks_total",
			Help: "Tasks finished, by outcome (succeeded, failed, timed_out, cancelled) and error kind (as the CLI's error_kind; empty for a success).",
		}, []string{"outcome", "error_kind"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "task_queue_wait_seconds", Buckets: waitBuckets,
			Help: "How long tasks waited in the queue before a worker took them (tasks a worker ran).",
		}),
		run: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "task_run_seconds", Buckets: runBuckets,
			Help: "Time tasks spent inside their sandbox (tasks a worker ran).",
		}),
		fuel: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "task_fuel_used", Buckets: fuelBuckets,
			Help: "Fuel (instructions) used by the tasks that ran with a fuel budget.",
		}),
	}
	// A series that exists from the start lets rate() see the first task.
	m.tasks.WithLabelValues(pool.TaskSucceeded.String(), "")
	return m
}

// TaskDone records a finished task: put it in pool.Config.OnTaskDone (or a
// cluster.WorkerConfig's Pool.OnTaskDone).
func (m *Metrics) TaskDone(ev pool.TaskEvent) {
	m.tasks.WithLabelValues(ev.Outcome.String(), taskerr.Kind(ev.Err)).Inc()
	if !ev.Ran {
		return
	}
	m.wait.Observe(ev.Wait.Seconds())
	m.run.Observe(ev.Duration.Seconds())
	if ev.FuelBudget > 0 {
		m.fuel.Observe(float64(ev.Fuel))
	}
}

// WatchPool reports p's counters (pool.Stats) at each scrape: queued and
// running tasks, instances built, worker processes crashed and restarted.
// It returns m.
func (m *Metrics) WatchPool(p *pool.Pool) *Metrics {
	m.mu.Lock()
	m.pool = func() (pool.Stats, int) { return p.Stats(), p.Workers() }
	m.mu.Unlock()
	return m
}

// WatchEngine reports e's counters (engine.Stats) at each scrape: modules
// compiled, and compilations spared by a cache. It returns m.
func (m *Metrics) WatchEngine(e *engine.Engine) *Metrics {
	m.mu.Lock()
	m.engine = e
	m.mu.Unlock()
	return m
}

// WatchWorker reports a cluster worker's counters (cluster.WorkerStats) and
// those of its pool at each scrape. It returns m.
func (m *Metrics) WatchWorker(w *cluster.Worker) *Metrics {
	m.mu.Lock()
	m.worker = w
	m.pool = func() (pool.Stats, int) { return w.PoolStats(), w.Slots() }
	m.mu.Unlock()
	return m
}

// Describe sends every metric m can report, watched or not: a registry
// then knows them all, whenever the watching begins.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.tasks.Describe(ch)
	m.wait.Describe(ch)
	m.run.Describe(ch)
	m.fuel.Describe(ch)
	for _, d := range poolDescs {
		ch <- d.desc
	}
	ch <- modulesCompiled
	ch <- cacheHits
	for _, d := range workerDescs {
		ch <- d.desc
	}
}

// Collect sends the per-task metrics and the counters of what m watches.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.tasks.Collect(ch)
	m.wait.Collect(ch)
	m.run.Collect(ch)
	m.fuel.Collect(ch)
	m.mu.Lock()
	poolOf, e, w := m.pool, m.engine, m.worker
	m.mu.Unlock()
	if poolOf != nil {
		st, workers := poolOf()
		for _, d := range poolDescs {
			ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.value(st, workers))
		}
	}
	if e != nil {
		st := e.Stats()
		ch <- prometheus.MustNewConstMetric(modulesCompiled, prometheus.CounterValue, float64(st.ModulesCompiled))
		ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(st.DiskCacheHits), "disk")
		ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(st.MemoryCacheHits), "memory")
	}
	if w != nil {
		st := w.Stats()
		for _, d := range workerDescs {
			ch <- prometheus.MustNewConstMetric(d.desc, d.kind, d.value(st))
		}
	}
}

func name(n string) string { return prometheus.BuildFQName(Namespace, "", n) }

type poolDesc struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(pool.Stats, int) float64
}

var poolDescs = []poolDesc{
	{prometheus.NewDesc(name("tasks_submitted_total"), "Tasks submitted to the pool.", nil, nil),
		prometheus.CounterValue, func(s pool.Stats, _ int) float64 { return float64(s.Submitted) }},
	{prometheus.NewDesc(name("tasks_queued"), "Tasks waiting in the pool's queue for a worker (the queue's depth).", nil, nil),
		prometheus.GaugeValue, func(s pool.Stats, _ int) float64 { return float64(s.Queued) }},
	{prometheus.NewDesc(name("tasks_running"), "Tasks running on the pool's workers.", nil, nil),
		prometheus.GaugeValue, func(s pool.Stats, _ int) float64 { return float64(s.Running) }},
	{prometheus.NewDesc(name("workers"), "The pool's workers: how many tasks it runs at once.", nil, nil),
		prometheus.GaugeValue, func(_ pool.Stats, n int) float64 { return float64(n) }},
	{prometheus.NewDesc(name("instances_built_total"), "Instances built: one per task in process mode and for commands, one per warm instance in thread mode.", nil, nil),
		prometheus.CounterValue, func(s pool.Stats, _ int) float64 { return float64(s.InstancesBuilt) }},
	{prometheus.NewDesc(name("instance_restarts_total"), "Warm instances thrown away and rebuilt, after a failed task or MaxTasksPerWorker.", nil, nil),
		prometheus.CounterValue, func(s pool.Stats, _ int) float64 { return float64(s.WorkerRestarts) }},
	{prometheus.NewDesc(name("warm_instances"), "Warm instances the workers hold now, each with its linear memory.", nil, nil),
		prometheus.GaugeValue, func(s pool.Stats, _ int) float64 { return float64(s.WarmInstances) }},
	{prometheus.NewDesc(name("worker_process_crashes_total"), "Worker processes (--isolation subprocess) that died on their own: a signal, an exit, out of memory.", nil, nil),
		prometheus.CounterValue, func(s pool.Stats, _ int) float64 { return float64(s.ProcessCrashes) }},
	{prometheus.NewDesc(name("worker_process_restarts_total"), "Worker processes started to replace one that died, was killed to stop a task, or was retired.", nil, nil),
		prometheus.CounterValue, func(s pool.Stats, _ int) float64 { return float64(s.ProcessRestarts) }},
}

var (
	modulesCompiled = prometheus.NewDesc(name("modules_compiled_total"), "Modules whose code was compiled (not found in a cache).", nil, nil)
	cacheHits       = prometheus.NewDesc(name("module_cache_hits_total"),
		"Module compilations spared: by the engine's cache directory (disk), or by a module it had compiled already (memory).", []string{"cache"}, nil)
)

type workerDesc struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(cluster.WorkerStats) float64
}

var workerDescs = []workerDesc{
	{prometheus.NewDesc(name("cluster_tasks_in_progress"), "Cluster tasks this worker is working on: fetching their module, running, reporting.", nil, nil),
		prometheus.GaugeValue, func(s cluster.WorkerStats) float64 { return float64(s.Running) }},
	{prometheus.NewDesc(name("cluster_results_published_total"), "Results this worker published (successes and failures).", nil, nil),
		prometheus.CounterValue, func(s cluster.WorkerStats) float64 { return float64(s.Finished) }},
	{prometheus.NewDesc(name("cluster_tasks_cancelled_total"), "Tasks this worker stopped or skipped because their submitter cancelled them.", nil, nil),
		prometheus.CounterValue, func(s cluster.WorkerStats) float64 { return float64(s.Cancelled) }},
	{prometheus.NewDesc(name("cluster_tasks_requeued_total"), "Tasks this worker handed back to the queue (closing, broker trouble).", nil, nil),
		prometheus.CounterValue, func(s cluster.WorkerStats) float64 { return float64(s.Requeued) }},
	{prometheus.NewDesc(name("cluster_tasks_given_up_total"), "Tasks this worker failed with ErrWorkerLost after too many deliveries.", nil, nil),
		prometheus.CounterValue, func(s cluster.WorkerStats) float64 { return float64(s.GaveUp) }},
	{prometheus.NewDesc(name("cluster_modules_fetched_total"), "Modules this worker fetched from the cluster's module store.", nil, nil),
		prometheus.CounterValue, func(s cluster.WorkerStats) float64 { return float64(s.ModulesFetched) }},
	{prometheus.NewDesc(name("cluster_modules_cached"), "Modules this worker holds compiled now.", nil, nil),
		prometheus.GaugeValue, func(s cluster.WorkerStats) float64 { return float64(s.ModulesCached) }},
}
