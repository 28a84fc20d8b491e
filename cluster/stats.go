package cluster

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wasmpool/wasmpool/pool"
)

// PoolStats returns a snapshot of the counters of the local pool the worker
// runs its tasks on: queued and running tasks, instances built, worker
// processes crashed and restarted (see pool.Stats).
func (w *Worker) PoolStats() pool.Stats { return w.p.Stats() }

// BrokerStats is what the broker knows of a cluster's tasks, as
// ReadBrokerStats reads it.
type BrokerStats struct {
	// Queued counts the tasks waiting for a worker.
	Queued int64
	// InFlight counts the tasks a worker took and has not yet finished:
	// running, or held by a worker that died, until AckWait hands them to
	// another.
	InFlight int64
	// Redelivered counts those of InFlight that were given to a worker
	// before (one that died, or let them go).
	Redelivered int64
	// FreeSlots counts the worker slots waiting for a task: each free slot
	// of each worker keeps one request for a task at the broker (renewed
	// every WorkerConfig.PollWait).
	FreeSlots int64
	// Results counts the results waiting for their submitter.
	Results int64
}

// ReadBrokerStats asks the broker nc reaches about the cluster s names: two
// requests, cheap enough for every scrape of a metrics endpoint. It creates
// nothing: a cluster not set up yet is an error.
func ReadBrokerStats(ctx context.Context, nc *nats.Conn, s Settings) (BrokerStats, error) {
	s, err := s.withDefaults()
	if err != nil {
		return BrokerStats{}, err
	}
	if nc == nil {
		return BrokerStats{}, fmt.Errorf("cluster: the NATS connection is nil")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return BrokerStats{}, fmt.Errorf("cluster: %w", err)
	}
	n := namesFor(s.Namespace)
	c, err := js.Consumer(ctx, n.tasksStream, n.workers)
	if err != nil {
		return BrokerStats{}, fmt.Errorf("cluster: reading the task queue of %q: %w", s.Namespace, err)
	}
	results, err := js.Stream(ctx, n.resultsStream)
	if err != nil {
		return BrokerStats{}, fmt.Errorf("cluster: reading the results of %q: %w", s.Namespace, err)
	}
	ci := c.CachedInfo()
	return BrokerStats{
		Queued:      int64(ci.NumPending),
		InFlight:    int64(ci.NumAckPending),
		Redelivered: int64(ci.NumRedelivered),
		FreeSlots:   int64(ci.NumWaiting),
		Results:     int64(results.CachedInfo().State.Msgs),
	}, nil
}

// WorkerSubject is the subject each Worker of the cluster s names keeps one
// subscription to for as long as it runs (its submitters' cancellations,
// which every worker hears): a broker that counts subscriptions counts the
// cluster's workers with it (embedded.Server.Subscriptions).
func WorkerSubject(s Settings) (string, error) {
	s, err := s.withDefaults()
	if err != nil {
		return "", err
	}
	return namesFor(s.Namespace).cancelSubject, nil
}

// Slots is how many tasks the worker runs at once: its pool's workers.
func (w *Worker) Slots() int { return w.p.Workers() }
