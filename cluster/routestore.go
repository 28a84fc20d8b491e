package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Where routed tasks wait: a work-queue stream of their own, one subject
// and one durable consumer per requirement set, and a bucket recording
// each set's requirements, so that workers learn which sets exist. The
// stream is apart from the common one so that the common consumer keeps
// reading every message of its stream, as it always did: in one
// work-queue stream, consumers' subjects may not overlap, and the common
// consumer would have had to take a filter.

// routeRecordTTL is how long a set's record lives unless its submitters
// write it again: they do every third of it while they have tasks of the
// set, so a set nobody submits to any more leaves the workers' lists.
const routeRecordTTL = 10 * time.Minute

// routeStore is the routed stream and the set records, opened on first use.
type routeStore struct {
	t       *topology
	stream  jetstream.Stream
	records jetstream.KeyValue
}

func (n names) routedStream() string          { return strings.ToUpper(n.ns) + "_ROUTED" }
func (n names) routedSubject(k string) string { return n.ns + ".routed." + k }
func (n names) routeBucket() string           { return n.ns + "_routes" }
func routeConsumer(key string) string         { return "r-" + key }

// openRoutes opens (creating if absent) where routed tasks wait.
func openRoutes(ctx context.Context, t *topology) (*routeStore, error) {
	storage := jetstream.FileStorage
	if t.s.Memory {
		storage = jetstream.MemoryStorage
	}
	st, err := createStream(ctx, t.js, jetstream.StreamConfig{
		Name:        t.n.routedStream(),
		Description: "wasmpool tasks that require something of their worker, one subject per requirement set",
		Subjects:    []string{t.n.routedSubject("*")},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		Replicas:    t.s.Replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: setting up the routed task stream: %w", err)
	}
	kv, err := keyValue(ctx, t.js, jetstream.KeyValueConfig{
		Bucket: t.n.routeBucket(), Description: "wasmpool requirement sets of routed tasks, kept while submitters use them",
		TTL: routeRecordTTL, Storage: storage, Replicas: t.s.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: setting up the requirement set records: %w", err)
	}
	return &routeStore{t: t, stream: st, records: kv}, nil
}

// consumer opens the set's consumer, creating it if absent: by the first
// submitter of the set or the first worker to serve it, whichever comes
// first. Its deliveries are counted by workers against each task's own
// limit, as the common consumer's are.
func (rs *routeStore) consumer(ctx context.Context, key string) (jetstream.Consumer, error) {
	c, err := createConsumer(ctx, rs.t.js, rs.t.n.routedStream(), jetstream.ConsumerConfig{
		Durable:       routeConsumer(key),
		Description:   "wasmpool workers meeting requirement set " + key,
		FilterSubject: rs.t.n.routedSubject(key),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       rs.t.ackWait,
		MaxDeliver:    -1,
		MaxWaiting:    16384,
		// A set no worker has asked for in this long, or whose tasks are all
		// done, goes: whoever needs it again makes it again, and the
		// stream keeps its tasks meanwhile.
		InactiveThreshold: 2 * routeRecordTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: setting up the queue of requirement set %s: %w", key, err)
	}
	return c, nil
}

// RouteStatus is one requirement set as Status reads it: the tasks queued
// for the workers that meet it, and how many live workers do.
type RouteStatus struct {
	// Key names the set's queue: subject NAMESPACE.routed.KEY, consumer
	// r-KEY of stream NAMESPACE_ROUTED.
	Key          string       `json:"key"`
	Requires     string       `json:"requires"` // Requirements.String
	Requirements Requirements `json:"requirements"`
	Queued       int64        `json:"queued"`
	InFlight     int64        `json:"in_flight"`
	// Workers counts the live workers that meet the set and are not
	// draining: 0 with tasks queued is tasks that wait (see
	// Config.RouteWait).
	Workers int `json:"workers"`
}

// readRoutes reads the requirement sets in use and their queues, by key.
func readRoutes(ctx context.Context, js jetstream.JetStream, n names, workers []WorkerInfo) ([]RouteStatus, error) {
	routes := []RouteStatus{}
	kv, err := js.KeyValue(ctx, n.routeBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return routes, nil // no routed task was ever submitted
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the requirement sets: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := kv.WatchAll(wctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the requirement sets: %w", err)
	}
	defer func() { _ = watch.Stop() }()
	for {
		select {
		case e, ok := <-watch.Updates():
			if !ok {
				return nil, errors.New("cluster: reading the requirement sets: the watch ended early")
			}
			if e == nil {
				slices.SortFunc(routes, func(a, b RouteStatus) int { return cmp.Compare(a.Key, b.Key) })
				return routes, nil
			}
			req, ok := decodeRouteRecord(e.Key(), e.Value())
			if !ok {
				continue
			}
			rs := RouteStatus{Key: e.Key(), Requires: req.String(), Requirements: req}
			for _, w := range workers {
				if canServe(req, w) {
					rs.Workers++
				}
			}
			c, err := js.Consumer(ctx, n.routedStream(), routeConsumer(e.Key()))
			switch {
			case err == nil:
				ci := c.CachedInfo()
				rs.Queued, rs.InFlight = int64(ci.NumPending), int64(ci.NumAckPending)
			case !errors.Is(err, jetstream.ErrConsumerNotFound):
				return nil, fmt.Errorf("cluster: reading the queue of requirement set %s: %w", e.Key(), err)
			}
			routes = append(routes, rs)
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: reading the requirement sets: %w", ctx.Err())
		}
	}
}

// applyRoutes gives the routed stream and its sets' consumers what Apply
// gives the common ones: the AckWait, the Replicas. Consumers made later
// take the AckWait from the common consumer (see consumer).
func applyRoutes(ctx context.Context, t *topology, s Settings) ([]string, error) {
	rs, err := openRoutes(ctx, t)
	if err != nil {
		return nil, err
	}
	var changed []string
	if cfg := rs.stream.CachedInfo().Config; cfg.Replicas != s.Replicas {
		was := cfg.Replicas
		cfg.Replicas = s.Replicas
		if _, err := t.js.UpdateStream(ctx, cfg); err != nil {
			return changed, fmt.Errorf("the routed task stream: %w", err)
		}
		changed = append(changed, fmt.Sprintf("the routed task stream: Replicas %d (was %d)", s.Replicas, was))
	}
	n := 0
	list := rs.stream.ListConsumers(ctx)
	for ci := range list.Info() {
		if ci.Config.AckWait == s.AckWait {
			continue
		}
		cfg := ci.Config
		cfg.AckWait = s.AckWait
		if _, err := t.js.UpdateConsumer(ctx, t.n.routedStream(), cfg); err != nil {
			return changed, fmt.Errorf("the queue of requirement set %s: %w", strings.TrimPrefix(ci.Name, "r-"), err)
		}
		n++
	}
	if err := list.Err(); err != nil {
		return changed, fmt.Errorf("the routed task stream: %w", err)
	}
	if n > 0 {
		changed = append(changed, fmt.Sprintf("AckWait %v of %d requirement set queue(s)", s.AckWait, n))
	}
	return changed, nil
}
