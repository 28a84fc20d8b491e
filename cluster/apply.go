package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Apply sets the cluster's streams and buckets up with s, creating what is
// missing and changing what exists to s: what a broker's operator runs
// (serve-nats does, with its flags), so that a store created with other
// settings takes the operator's. It returns what it changed, one line
// each. Where the broker was set up for memory and s is for disk, or the
// reverse, it fails and says so: JetStream cannot move a stream between
// them (remove the store, or use another Namespace).
//
// Workers and executors that are running keep working: each heartbeats a
// running task at least every second, so a shorter AckWait takes no task
// from a live worker (down to a few seconds), and a longer one only waits
// longer for a dead worker's tasks.
func Apply(ctx context.Context, nc *nats.Conn, s Settings) ([]string, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	t, err := setup(ctx, nc, s)
	if err != nil {
		return nil, err
	}
	var changed []string
	fail := func(what string, err error) ([]string, error) {
		return changed, fmt.Errorf("cluster: applying the settings to %s: %w", what, err)
	}

	ci, err := t.workers.Info(ctx)
	if err != nil {
		return fail("the worker consumer", err)
	}
	if ci.Config.AckWait != s.AckWait {
		cfg := ci.Config
		cfg.AckWait = s.AckWait
		if _, err := t.js.UpdateConsumer(ctx, t.n.tasksStream, cfg); err != nil {
			return fail("the worker consumer", err)
		}
		changed = append(changed, fmt.Sprintf("AckWait %v (was %v)", s.AckWait, ci.Config.AckWait))
	}

	storage := jetstream.FileStorage
	if s.Memory {
		storage = jetstream.MemoryStorage
	}
	for _, st := range []struct {
		name, what string
		maxAge     time.Duration
		ageName    string
		// inMemory: kept in memory whatever Memory says.
		inMemory bool
	}{
		{t.n.tasksStream, "the task stream", -1, "", false},
		{t.n.resultsStream, "the result stream", s.ResultTTL, "ResultTTL", false},
		{"KV_" + t.n.cancelBucket, "the cancel records", s.CancelTTL, "CancelTTL", false},
		{"KV_" + t.n.startBucket, "the start records", s.ResultTTL, "ResultTTL", false},
		{"OBJ_" + t.n.modules, "the module store", s.ModuleTTL, "ModuleTTL", false},
		{"OBJ_" + t.n.payloadsName, "the payload store", s.ResultTTL, "ResultTTL", false},
		// A worker's or a submitter's record lives as long as its tasks
		// may stay silent. The first worker or executor makes the bucket,
		// so there may be none yet.
		{"KV_" + t.n.workerRecords, "the worker records", s.AckWait, "AckWait", true},
		{"KV_" + t.n.submitters, "the submitter records", submitterTTL(s.AckWait), "three AckWaits", true},
	} {
		stream, err := t.js.Stream(ctx, st.name)
		if errors.Is(err, jetstream.ErrStreamNotFound) && st.inMemory {
			continue
		}
		if err != nil {
			return fail(st.what, err)
		}
		cfg := stream.CachedInfo().Config
		if cfg.Storage != storage && !st.inMemory {
			return fail(st.what, fmt.Errorf("it is kept in %s and Memory asks for %s: JetStream cannot move a stream; remove the store (or use another Namespace) to change it",
				storageName(cfg.Storage), storageName(storage)))
		}
		var what []string
		if st.maxAge >= 0 && cfg.MaxAge != st.maxAge {
			what = append(what, fmt.Sprintf("%s %v (was %v)", st.ageName, st.maxAge, cfg.MaxAge))
			cfg.MaxAge = st.maxAge
			// JetStream refuses a duplicates window longer than the age
			// (a bucket made with a short TTL has its window at the TTL).
			if cfg.MaxAge > 0 && cfg.Duplicates > cfg.MaxAge {
				cfg.Duplicates = cfg.MaxAge
			}
		}
		if cfg.Replicas != s.Replicas {
			what = append(what, fmt.Sprintf("Replicas %d (was %d)", s.Replicas, cfg.Replicas))
			cfg.Replicas = s.Replicas
		}
		if len(what) == 0 {
			continue
		}
		if _, err := t.js.UpdateStream(ctx, cfg); err != nil {
			return fail(st.what, err)
		}
		for _, w := range what {
			changed = append(changed, st.what+": "+w)
		}
	}
	more, err := applyRoutes(ctx, t, s)
	changed = append(changed, more...)
	if err != nil {
		return fail("the routed tasks", err)
	}
	return changed, nil
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.MemoryStorage {
		return "memory"
	}
	return "files"
}
