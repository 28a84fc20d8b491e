package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"go.uber.org/goleak"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/internal/testmod"
	"github.com/wasmpool/wasmpool/metrics"
	"github.com/wasmpool/wasmpool/pool"
)

func TestMain(m *testing.M) {
	// As in package cluster's tests: nats.go's async-publish watcher can
	// miss the connection's CLOSED event (not ours to fix).
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

func within(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// endpoint serves reg's /metrics on a loopback port for the test.
func endpoint(t testing.TB, cs ...prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// scraped is one scrape of an endpoint, in the text format.
type scraped map[string]*dto.MetricFamily

// scrape GETs url as Prometheus does, asking for the text format, and
// parses what comes back.
func scrape(t testing.TB, url string) scraped {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	for name := range fams {
		require.True(t, strings.HasPrefix(name, "wasmpool_"), "%s is not prefixed wasmpool_", name)
	}
	return fams
}

// get returns the value of the series of name with exactly the given
// labels (name=value pairs): a counter's or gauge's value, a histogram's
// count. A series that is not there fails the test.
func (s scraped) get(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	fam := s[name]
	require.NotNil(t, fam, "no metric %s in the scrape (have %v)", name, s.names())
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	for _, m := range fam.Metric {
		got := map[string]string{}
		for _, lp := range m.Label {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	require.Failf(t, "series missing", "%s%v not in the scrape: %v", name, labels, fam.Metric)
	return 0
}

// sum is a histogram's sum.
func (s scraped) sum(t testing.TB, name string) float64 {
	t.Helper()
	fam := s[name]
	require.NotNil(t, fam, name)
	require.Len(t, fam.Metric, 1)
	return fam.Metric[0].Histogram.GetSampleSum()
}

func (s scraped) names() []string {
	var ns []string
	for n := range s {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func compileWAT(t testing.TB, e *engine.Engine, name string) *engine.Module {
	t.Helper()
	m, err := e.CompileFile(context.Background(), testmod.WAT(t, name))
	require.NoError(t, err)
	return m
}

// TestPoolMetricsMoveWithRealTasks runs good, trapping, timing-out and
// fuel-exhausted tasks on a real pool and reads what they did off a real
// /metrics endpoint.
func TestPoolMetricsMoveWithRealTasks(t *testing.T) {
	ctx := within(t)
	// No cache directory: every first compile is paid for, so the counts
	// are exact.
	e, err := engine.New(ctx, engine.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	m := metrics.New()
	p, err := pool.New(e, pool.Config{Workers: 1, OnTaskDone: m.TaskDone})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	m.WatchPool(p).WatchEngine(e)
	url := endpoint(t, m)

	before := scrape(t, url)
	assert.Zero(t, before.get(t, "wasmpool_tasks_total", "outcome=succeeded", "error_kind="))
	assert.Zero(t, before.get(t, "wasmpool_tasks_submitted_total"))
	assert.Zero(t, before.get(t, "wasmpool_task_run_seconds"))
	assert.Equal(t, 1.0, before.get(t, "wasmpool_workers"))
	assert.Zero(t, before.get(t, "wasmpool_modules_compiled_total"))

	echo, div, spin, xs := compileWAT(t, e, "echo"), compileWAT(t, e, "divzero"), compileWAT(t, e, "spin"), compileWAT(t, e, "xorshift")
	_, err = e.CompileFile(ctx, testmod.WAT(t, "echo")) // the engine has it: a memory hit
	require.NoError(t, err)
	tasks := []struct {
		task engine.Task
		err  error
	}{
		{engine.Task{Module: echo, Func: "echo", Input: []byte("a")}, nil},
		{engine.Task{Module: echo, Func: "echo", Input: []byte("b")}, nil},
		{engine.Task{Module: echo, Func: "echo", Input: []byte("c"), Fuel: 1 << 40}, nil},
		{engine.Task{Module: div, Func: "run"}, &engine.TrapError{}},
		{engine.Task{Module: spin, Func: "spin", Timeout: 50 * time.Millisecond}, engine.ErrTimeout},
		{engine.Task{Module: xs, Func: "run", Params: []uint64{100000}, Fuel: 1000}, engine.ErrFuelExhausted},
	}
	for _, c := range tasks {
		_, err := p.Submit(ctx, c.task).Result(ctx)
		switch want := c.err.(type) {
		case nil:
			require.NoError(t, err)
		case *engine.TrapError:
			require.ErrorAs(t, err, &want)
		default:
			require.ErrorIs(t, err, want)
		}
	}

	after := scrape(t, url)
	assert.Equal(t, 3.0, after.get(t, "wasmpool_tasks_total", "outcome=succeeded", "error_kind="))
	assert.Equal(t, 1.0, after.get(t, "wasmpool_tasks_total", "outcome=failed", "error_kind=trap"))
	assert.Equal(t, 1.0, after.get(t, "wasmpool_tasks_total", "outcome=failed", "error_kind=fuel"))
	assert.Equal(t, 1.0, after.get(t, "wasmpool_tasks_total", "outcome=timed_out", "error_kind=timeout"))
	assert.Len(t, after["wasmpool_tasks_total"].Metric, 4, "no other series")

	assert.Equal(t, 6.0, after.get(t, "wasmpool_task_run_seconds"), "every task ran")
	assert.Equal(t, 6.0, after.get(t, "wasmpool_task_queue_wait_seconds"))
	assert.Positive(t, after.sum(t, "wasmpool_task_run_seconds"))
	assert.Equal(t, 2.0, after.get(t, "wasmpool_task_fuel_used"), "the two tasks with a budget")
	assert.Greater(t, after.sum(t, "wasmpool_task_fuel_used"), 1000.0, "the exhausted task's 1000, and the echo's own")

	assert.Equal(t, 6.0, after.get(t, "wasmpool_tasks_submitted_total"))
	assert.Zero(t, after.get(t, "wasmpool_tasks_queued"))
	assert.Zero(t, after.get(t, "wasmpool_tasks_running"))
	st := p.Stats()
	assert.Equal(t, float64(st.InstancesBuilt), after.get(t, "wasmpool_instances_built_total"))
	assert.GreaterOrEqual(t, st.InstancesBuilt, int64(4), "one per module at least")
	assert.Equal(t, float64(st.WorkerRestarts), after.get(t, "wasmpool_instance_restarts_total"))
	assert.Positive(t, st.WorkerRestarts, "the trap's instance was thrown away")
	assert.Equal(t, float64(st.WarmInstances), after.get(t, "wasmpool_warm_instances"))
	assert.Zero(t, after.get(t, "wasmpool_worker_process_crashes_total"))
	assert.Zero(t, after.get(t, "wasmpool_worker_process_restarts_total"))

	assert.Equal(t, 4.0, after.get(t, "wasmpool_modules_compiled_total"))
	assert.Equal(t, 1.0, after.get(t, "wasmpool_module_cache_hits_total", "cache=memory"))
	assert.Zero(t, after.get(t, "wasmpool_module_cache_hits_total", "cache=disk"))
	assert.Nil(t, after["wasmpool_cluster_results_published_total"], "no worker watched")
}

// gateEngine is an engine whose "test"."barrier" host function (the
// barrier module's import) tells entered, then blocks until release is
// closed or the task is stopped.
func gateEngine(t testing.TB) (e *engine.Engine, entered chan struct{}, release chan struct{}) {
	t.Helper()
	entered, release = make(chan struct{}, 16), make(chan struct{})
	host := engine.HostModule{Name: "test", Define: func(hb wazero.HostModuleBuilder) {
		hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}), nil, nil).Export("barrier")
	}}
	e, err := engine.New(context.Background(), engine.Config{CacheDir: testmod.CompileCache(), HostModules: []engine.HostModule{host}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	return e, entered, release
}

// TestQueueDepthAndRunningAtTheScrape: a task waiting behind a busy worker
// is the queue's depth and the busy worker's task is running, at the
// moment of the scrape; cancelled, the queued one is counted as such, and
// never ran.
func TestQueueDepthAndRunningAtTheScrape(t *testing.T) {
	ctx := within(t)
	e, entered, release := gateEngine(t)
	m := metrics.New()
	p, err := pool.New(e, pool.Config{Workers: 1, OnTaskDone: m.TaskDone})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	url := endpoint(t, m.WatchPool(p))

	gate, echo := compileWAT(t, e, "barrier"), compileWAT(t, e, "echo")
	running := p.Submit(ctx, engine.Task{Module: gate, Func: "run"})
	<-entered
	queued := p.Submit(ctx, engine.Task{Module: echo, Func: "echo"})
	s := scrape(t, url)
	assert.Equal(t, 1.0, s.get(t, "wasmpool_tasks_running"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_tasks_queued"))

	require.True(t, queued.Cancel())
	close(release)
	require.NoError(t, running.Err(ctx))
	require.NoError(t, p.Shutdown(ctx))
	s = scrape(t, url)
	assert.Equal(t, 1.0, s.get(t, "wasmpool_tasks_total", "outcome=succeeded", "error_kind="))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_tasks_total", "outcome=cancelled", "error_kind=cancelled"))
	assert.Equal(t, 1.0, s.get(t, "wasmpool_task_queue_wait_seconds"), "only the task that ran")
	assert.Zero(t, s.get(t, "wasmpool_tasks_queued"))
	assert.Zero(t, s.get(t, "wasmpool_tasks_running"))
}
