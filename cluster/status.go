package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterStatus is a cluster as its broker sees it, read by Status: the
// workers that advertise themselves, the task queue, and their sums.
type ClusterStatus struct {
	Namespace string `json:"namespace"`
	// At is when it was read, by this host's clock.
	At time.Time `json:"at"`
	// Workers are the live workers' records, by name (then ID).
	Workers []WorkerInfo `json:"workers"`

	// The task queue, as the broker counts it (see BrokerStats).
	Queued      int64 `json:"queued"`
	InFlight    int64 `json:"in_flight"`
	Redelivered int64 `json:"redelivered"`
	FreeSlots   int64 `json:"free_slots"`
	Results     int64 `json:"results_waiting"`

	// Sums over Workers: their slots, their tasks running now, finished
	// since each started, and finished per second lately (WorkerInfo.Rate).
	Slots     int64   `json:"slots"`
	Running   int64   `json:"running"`
	Succeeded int64   `json:"succeeded"`
	Failed    int64   `json:"failed"`
	Rate      float64 `json:"rate"`

	// Routes are the requirement sets of routed tasks in use, by key, with
	// their queues (tasks that require something of their worker; the
	// counts above are the common queue's).
	Routes []RouteStatus `json:"routes"`
}

// Status reads the cluster s names from the broker nc reaches: the
// records its workers advertise and the state of its task queue. It
// creates nothing and changes nothing. A broker that does not answer is
// ErrUnavailable; a broker where the cluster was never set up (no worker
// or submitter of that namespace ever connected) is an error wrapping
// jetstream.ErrStreamNotFound.
func Status(ctx context.Context, nc *nats.Conn, s Settings) (ClusterStatus, error) {
	s, err := s.withDefaults()
	if err != nil {
		return ClusterStatus{}, err
	}
	if nc == nil {
		return ClusterStatus{}, errors.New("cluster: the NATS connection is nil")
	}
	st := ClusterStatus{Namespace: s.Namespace, At: time.Now().UTC()}
	bs, err := ReadBrokerStats(ctx, nc, s)
	if err != nil {
		return st, statusError(s.Namespace, err)
	}
	st.Queued, st.InFlight, st.Redelivered, st.FreeSlots, st.Results = bs.Queued, bs.InFlight, bs.Redelivered, bs.FreeSlots, bs.Results
	if st.Workers, err = ReadWorkers(ctx, nc, s); err != nil {
		return st, statusError(s.Namespace, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return st, fmt.Errorf("cluster: %w", err)
	}
	if st.Routes, err = readRoutes(ctx, js, namesFor(s.Namespace), st.Workers); err != nil {
		return st, statusError(s.Namespace, err)
	}
	for _, w := range st.Workers {
		st.Slots += int64(w.Slots)
		st.Running += w.Running
		st.Succeeded += w.Succeeded
		st.Failed += w.Failed
		st.Rate += w.Rate
	}
	return st, nil
}

// ReadWorkers returns the records of the live workers of the cluster s
// names, by name (then ID): one pass over the workers bucket. A cluster
// whose workers never advertised (none ran yet) has none.
func ReadWorkers(ctx context.Context, nc *nats.Conn, s Settings) ([]WorkerInfo, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	what := fmt.Sprintf("cluster: reading the workers of %q", s.Namespace)
	kv, err := js.KeyValue(ctx, namesFor(s.Namespace).workerRecords)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return []WorkerInfo{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// A watch delivers every live record, then nil: one consumer, rather
	// than a request per key.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := kv.WatchAll(wctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = watch.Stop() }()
	workers := []WorkerInfo{}
	for {
		select {
		case e, ok := <-watch.Updates():
			if !ok {
				return nil, fmt.Errorf("%s: the watch ended early", what)
			}
			if e == nil {
				slices.SortFunc(workers, func(a, b WorkerInfo) int {
					return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
				})
				return workers, nil
			}
			var w WorkerInfo
			// A record this version cannot read is left out, not fatal:
			// status must show the workers it can.
			if json.Unmarshal(e.Value(), &w) == nil && w.ID != "" {
				workers = append(workers, w)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// statusError says which of the two ways a status read fails it was: the
// broker did not answer, or it has no such cluster.
func statusError(ns string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("cluster: no cluster %q on this broker (no worker or submitter of that namespace has connected to it): %w", ns, err)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: the broker did not answer for the status of %q: %w", ErrUnavailable, ns, err)
	}
	return err
}
