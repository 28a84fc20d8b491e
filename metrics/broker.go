package metrics

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmpool/wasmpool/cluster"
)

// Broker says which cluster a broker collector reports on, and how.
type Broker struct {
	// Conn reaches the cluster's broker; Settings name the cluster (only
	// its Namespace matters here).
	Conn     *nats.Conn
	Settings cluster.Settings
	// CountWorkers, if set, counts the workers connected: `wasmpool
	// serve-nats` counts the subscriptions to cluster.WorkerSubject on its
	// embedded server (embedded.Server.Subscriptions). A plain NATS client
	// cannot count them.
	CountWorkers func() (int, error)
	// Timeout bounds each scrape's questions to the broker. 0 means 5s.
	Timeout time.Duration
}

// NewBrokerCollector returns a prometheus.Collector of what the broker
// knows of the cluster at each scrape (cluster.ReadBrokerStats): tasks
// queued, in flight and redelivered, free worker slots, results waiting,
// and with CountWorkers the workers connected. wasmpool_broker_up is 0,
// and the rest left out, when the broker did not answer.
func NewBrokerCollector(b Broker) prometheus.Collector {
	if b.Timeout == 0 {
		b.Timeout = 5 * time.Second
	}
	return &brokerCollector{b: b}
}

type brokerCollector struct{ b Broker }

var (
	brokerUp          = prometheus.NewDesc(name("broker_up"), "1 if the broker answered this scrape's questions about the cluster, else 0.", nil, nil)
	brokerQueued      = prometheus.NewDesc(name("broker_tasks_queued"), "Tasks in the cluster's queue waiting for a worker.", nil, nil)
	brokerInFlight    = prometheus.NewDesc(name("broker_tasks_in_flight"), "Tasks workers took and have not finished (or a dead worker held, until the ack wait gives them to another).", nil, nil)
	brokerRedelivered = prometheus.NewDesc(name("broker_tasks_redelivered"), "Of the tasks in flight, those given to a worker before.", nil, nil)
	brokerFreeSlots   = prometheus.NewDesc(name("broker_free_slots"), "Worker slots waiting for a task (each free slot keeps a request at the broker).", nil, nil)
	brokerResults     = prometheus.NewDesc(name("broker_results_waiting"), "Results waiting for their submitter.", nil, nil)
	brokerWorkers     = prometheus.NewDesc(name("broker_workers"), "Workers connected to the broker.", nil, nil)
)

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{brokerUp, brokerQueued, brokerInFlight, brokerRedelivered, brokerFreeSlots, brokerResults, brokerWorkers} {
		ch <- d
	}
}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.b.Timeout)
	defer cancel()
	st, err := cluster.ReadBrokerStats(ctx, c.b.Conn, c.b.Settings)
	if err != nil {
		gauge(brokerUp, 0)
		return
	}
	gauge(brokerUp, 1)
	gauge(brokerQueued, st.Queued)
	gauge(brokerInFlight, st.InFlight)
	gauge(brokerRedelivered, st.Redelivered)
	gauge(brokerFreeSlots, st.FreeSlots)
	gauge(brokerResults, st.Results)
	if c.b.CountWorkers != nil {
		if n, err := c.b.CountWorkers(); err == nil {
			gauge(brokerWorkers, int64(n))
		}
	}
}
