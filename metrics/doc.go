// Package metrics exposes what a wasmpool pool, engine, cluster worker and
// cluster broker do as Prometheus metrics (github.com/prometheus/client_golang),
// every name prefixed wasmpool_. It is a package of its own so that the
// core (engine, pool, cluster) does not depend on Prometheus: only a
// program that imports this package links it.
//
// A Metrics is a prometheus.Collector. It hears of each finished task
// through the pool's hook, and reads the counters of what it watches at
// each scrape:
//
//	m := metrics.New()
//	p, err := pool.New(e, pool.Config{OnTaskDone: m.TaskDone})
//	...
//	m.WatchPool(p).WatchEngine(e)
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// A cluster worker builds its pool itself: give the hook to its
// WorkerConfig.Pool.OnTaskDone and watch it with WatchWorker. A broker's
// view of the cluster (its queue, the tasks in flight, free worker slots)
// is NewBrokerCollector's. `wasmpool worker --metrics ADDR` and `wasmpool
// serve-nats --metrics ADDR` serve all this on ADDR/metrics.
//
// From TaskDone (every task, whichever way it ended):
//
//	wasmpool_tasks_total{outcome, error_kind}  counter: outcome is succeeded, failed, timed_out or cancelled (as pool.Stats counts them); error_kind is the CLI's ("trap", "timeout", "fuel", "memory", ...; "" for a success)
//	wasmpool_task_queue_wait_seconds           histogram: time queued, of the tasks a worker ran
//	wasmpool_task_run_seconds                  histogram: time inside the sandbox, of the tasks a worker ran
//	wasmpool_task_fuel_used                    histogram: fuel (instructions) used, of the tasks with a fuel budget
//
// From WatchPool (pool.Stats) or WatchWorker (its pool's):
//
//	wasmpool_tasks_submitted_total             counter
//	wasmpool_tasks_queued                      gauge: the queue's depth
//	wasmpool_tasks_running                     gauge
//	wasmpool_workers                           gauge: tasks run at once
//	wasmpool_instances_built_total             counter
//	wasmpool_instance_restarts_total           counter: warm instances rebuilt after an error or MaxTasksPerWorker
//	wasmpool_warm_instances                    gauge
//	wasmpool_worker_process_crashes_total      counter (Isolation Subprocess)
//	wasmpool_worker_process_restarts_total     counter (Isolation Subprocess)
//
// From WatchEngine (engine.Stats):
//
//	wasmpool_modules_compiled_total            counter: compilations paid for
//	wasmpool_module_cache_hits_total{cache}    counter: compilations spared, by the cache directory ("disk") or a module compiled already ("memory")
//
// From WatchWorker (cluster.WorkerStats):
//
//	wasmpool_cluster_tasks_in_progress         gauge
//	wasmpool_cluster_results_published_total   counter
//	wasmpool_cluster_tasks_cancelled_total     counter
//	wasmpool_cluster_tasks_requeued_total      counter
//	wasmpool_cluster_tasks_given_up_total      counter
//	wasmpool_cluster_modules_fetched_total     counter
//	wasmpool_cluster_modules_cached            gauge
//
// From NewBrokerCollector (cluster.ReadBrokerStats, at each scrape):
//
//	wasmpool_broker_up                         gauge: 1 if the broker answered
//	wasmpool_broker_tasks_queued               gauge
//	wasmpool_broker_tasks_in_flight            gauge
//	wasmpool_broker_tasks_redelivered          gauge
//	wasmpool_broker_free_slots                 gauge
//	wasmpool_broker_results_waiting            gauge
//	wasmpool_broker_workers                    gauge (with Broker.CountWorkers: serve-nats)
package metrics
