package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/wasmpool/wasmpool/cluster"
	"github.com/wasmpool/wasmpool/cluster/embedded"
	"github.com/wasmpool/wasmpool/engine"
	"github.com/wasmpool/wasmpool/metrics"
	"github.com/wasmpool/wasmpool/pool"
)

// metricsFlag is --metrics ADDR, of the commands that run for long:
// worker and serve-nats.
type metricsFlag struct{ addr string }

func (f *metricsFlag) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.addr, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics, e.g. 127.0.0.1:9464 (port 0: any free port, printed on stderr)")
}

// metricsServer serves /metrics on the address of --metrics. Its port is
// taken before the command does anything else, so that an address in use
// fails the command at once.
type metricsServer struct {
	ln  net.Listener
	reg *prometheus.Registry
	m   *metrics.Metrics
	srv *http.Server
}

// listen takes the port of --metrics; with no --metrics it returns nil,
// whose methods do nothing.
func (f *metricsFlag) listen() (*metricsServer, error) {
	if f.addr == "" {
		return nil, nil
	}
	_, port, err := net.SplitHostPort(f.addr)
	if err != nil {
		return nil, usagef("--metrics %q: want HOST:PORT, such as 127.0.0.1:9464", f.addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, usagef("--metrics %q: the port must be a number from 0 to 65535 (0: any free port)", f.addr)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, hostError{fmt.Errorf("--metrics %s: cannot listen there: %w", f.addr, cleanOpError(err))}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &metricsServer{ln: ln, reg: reg, m: metrics.New()}, nil
}

// onTaskDone is the hook for the pool whose tasks the metrics count (nil
// without --metrics: the pool then spends nothing on it).
func (s *metricsServer) onTaskDone() func(pool.TaskEvent) {
	if s == nil {
		return nil
	}
	return s.m.TaskDone
}

// serve starts answering scrapes, saying where on stderr: the metrics of
// the worker w and its engine e, if there is one, and cs.
func (s *metricsServer) serve(stderr io.Writer, w *cluster.Worker, e *engine.Engine, cs ...prometheus.Collector) error {
	if s == nil {
		return nil
	}
	if w != nil {
		cs = append(cs, s.m.WatchWorker(w).WatchEngine(e))
	}
	for _, c := range cs {
		if err := s.reg.Register(c); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			report(stderr, "metrics: %v", err)
		}
	}()
	report(stderr, "metrics at http://%s/metrics", s.ln.Addr())
	return nil
}

// close stops serving (or frees the port, if serving never began).
func (s *metricsServer) close() {
	if s == nil {
		return
	}
	if s.srv == nil {
		_ = s.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// brokerCollector is serve-nats's view of its cluster, with the workers
// connected counted on its embedded server.
func brokerCollector(srv *embedded.Server, nc *nats.Conn, set cluster.Settings) (prometheus.Collector, error) {
	subject, err := cluster.WorkerSubject(set)
	if err != nil {
		return nil, err
	}
	return metrics.NewBrokerCollector(metrics.Broker{
		Conn: nc, Settings: set,
		CountWorkers: func() (int, error) { return srv.Subscriptions(subject) },
	}), nil
}
