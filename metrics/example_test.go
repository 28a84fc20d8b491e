package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/metrics"
	"github.com/wasmpool/wasmpool/pool"
)

func Example() {
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{})
	if err != nil {
		panic(err)
	}
	defer e.Close(ctx)

	m := metrics.New()
	p, err := pool.New(e, pool.Config{Workers: 1, OnTaskDone: m.TaskDone})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	m.WatchPool(p).WatchEngine(e)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) // serve it at /metrics

	echo, err := e.CompileFile(ctx, "../testdata/wat/echo.wasm")
	if err != nil {
		panic(err)
	}
	for _, in := range []string{"a", "b", "c"} {
		if _, err := p.Submit(ctx, engine.Task{Module: echo, Func: "echo", Input: []byte(in)}).Result(ctx); err != nil {
			panic(err)
		}
	}
	scrape := httptest.NewRecorder()
	metricsHandler.ServeHTTP(scrape, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(scrape.Body.String()) {
		for _, name := range []string{"wasmpool_tasks_total", "wasmpool_task_run_seconds_count", "wasmpool_instances_built_total", "wasmpool_modules_compiled_total"} {
			if strings.HasPrefix(line, name) {
				fmt.Print(line)
			}
		}
	}
	// Output:
	// wasmpool_instances_built_total 1
	// wasmpool_modules_compiled_total 1
	// wasmpool_task_run_seconds_count 3
	// wasmpool_tasks_total{error_kind="",outcome="succeeded"} 3
}
