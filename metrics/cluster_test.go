package metrics_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/future"
	"github.com/wasmpool/wasmpool/metrics"
	"github.com/wasmpool/wasmpool/pool"
)

// TestWorkerAndBrokerMetrics: a cluster worker's metrics and the broker's
// view of the cluster, scraped from one endpoint while a task holds the
// worker's one slot and two more wait, and after they all ran.
func TestWorkerAndBrokerMetrics(t *testing.T) {
	ctx := within(t)
	srv, err := embedded.StartServer(embedded.ServerConfig{})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	conn := func(name string) *nats.Conn {
		nc, err := srv.Connect(name)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc
	}
	set := cluster.Settings{Namespace: "m" + strconv.FormatInt(time.Now().UnixNano(), 36), Memory: true}
	require.NoError(t, cluster.Setup(ctx, conn("setup"), set))

	e, entered, release := gateEngine(t)
	m := metrics.New()
	w, err := cluster.NewWorker(ctx, conn("worker"), e, cluster.WorkerConfig{
		Settings: set, Pool: pool.Config{Workers: 1, OnTaskDone: m.TaskDone}, PollWait: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	subject, err := cluster.WorkerSubject(set)
	require.NoError(t, err)
	brokerConn := conn("metrics")
	url := endpoint(t, m.WatchWorker(w).WatchEngine(e), metrics.NewBrokerCollector(metrics.Broker{
		Conn: brokerConn, Settings: set,
		CountWorkers: func() (int, error) { return srv.Subscriptions(subject) },
	}))

	x, err := cluster.New(ctx, conn("submitter"), cluster.Config{Settings: set})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, x.Close()) })
	gate, echo := compileWAT(t, e, "barrier"), compileWAT(t, e, "echo")
	futs := []*future.Future[engine.Result]{x.Submit(ctx, engine.Task{Module: gate, Func: "run"})}
	<-entered // the worker's one slot is busy
	for _, in := range []string{"a", "b"} {
		futs = append(futs, x.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte(in)}))
	}
	require.NoError(t, x.Flush(ctx)) // both stored at the broker

	s := scrape(t, url)
	assert.Equal(t, 1.0, s.get(t, "wasmpool_broker_up"))
	assert.Equal(t, 2.0, s.get(t, "wasmpool_broker_tasks_queued"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_broker_tasks_in_flight"))
	assert.Zero(t, s.get(t, "wasmpool_broker_tasks_redelivered"))
	assert.Zero(t, s.get(t, "wasmpool_broker_free_slots"), "the one slot is busy")
	assert.Zero(t, s.get(t, "wasmpool_broker_results_waiting"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_broker_workers"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_cluster_tasks_in_progress"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_tasks_running"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_workers"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_cluster_modules_fetched_total"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_cluster_modules_cached"))

	close(release)
	for _, f := range futs {
		_, err := f.Result(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, w.Shutdown(ctx)) // every result published and acknowledged
	s = scrape(t, url)
	assert.Equal(t, 3.0, s.get(t, "wasmpool_tasks_total", "outcome=succeeded", "error_kind="))
	assert.Equal(t, 3.0, s.get(t, "wasmpool_task_run_seconds"))
	assert.Equal(t, 3.0, s.get(t, "wasmpool_cluster_results_published_total"))
	assert.Equal(t, 2.0, s.get(t, "wasmpool_cluster_modules_fetched_total"))
	assert.Zero(t, s.get(t, "wasmpool_cluster_tasks_in_progress"))
	assert.Zero(t, s.get(t, "wasmpool_broker_tasks_queued"))

	// A broker that cannot be asked is down, not an error of the scrape.
	brokerConn.Close()
	s = scrape(t, url)
	assert.Zero(t, s.get(t, "wasmpool_broker_up"))
	assert.Nil(t, s["wasmpool_broker_tasks_queued"])
}

// TestReadBrokerStatsOfAClusterNotSetUp: a namespace nobody set up is an
// error naming it, and nothing is created.
func TestReadBrokerStatsOfAClusterNotSetUp(t *testing.T) {
	srv, err := embedded.StartServer(embedded.ServerConfig{})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("metrics")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	_, err = cluster.ReadBrokerStats(context.Background(), nc, cluster.Settings{Namespace: "nobody"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nobody"`)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.Stream(context.Background(), "NOBODY_TASKS")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "reading created nothing")
}
