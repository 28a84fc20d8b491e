package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// WorkerInfo is what a worker advertises about itself: one record per
// running worker in the cluster's workers bucket (a JetStream key-value
// bucket, NAMESPACE_workers, keyed by ID), written again every
// AdvertEvery of the bucket's TTL. A worker that stops deletes its record;
// one that dies stops writing it, and the broker drops it when the TTL
// (the cluster's AckWait when the bucket was made) has passed since its
// last write: a dead worker leaves the list within seconds, when its tasks
// go to others.
//
// The record is JSON with the field names below, so that anything that
// reads the bucket (a router choosing which workers may take a task, a
// dashboard, the nats CLI's `nats kv get`) reads it without this package.
// What a task could require of a worker is here as values to compare
// with: Labels exactly, Capabilities and AllowMounts as what the worker
// grants, MemoryLimit as the most a task may use.
type WorkerInfo struct {
	// Format is the version of this record's layout, AdvertFormat.
	Format int `json:"format"`
	// ID identifies this run of the worker: the record's key, unique even
	// when two workers have the same Name.
	ID   string `json:"id"`
	Name string `json:"name"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// Slots is how many tasks it runs at once; Mode is its pool's mode
	// ("thread" or "process").
	Slots int    `json:"slots"`
	Mode  string `json:"mode"`
	// Labels are WorkerConfig.Labels: what its operator says it has (a
	// GPU, a zone, a dataset on its disk).
	Labels map[string]string `json:"labels,omitempty"`
	// Capabilities are the names of the host capabilities its engine
	// provides (engine.Config.Capabilities), sorted.
	Capabilities []string `json:"capabilities,omitempty"`
	// AllowMounts: tasks may mount directories of its host.
	AllowMounts bool `json:"allow_mounts"`
	// MemoryLimit is the most linear memory one of its tasks may use, in
	// bytes (its engine's limit).
	MemoryLimit uint64 `json:"memory_limit"`
	// Running counts its tasks being worked on; Succeeded and Failed those
	// whose result it sent, by whether the result is an error, since it
	// started.
	Running   int64 `json:"running"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	// Rate is how many tasks per second it finished (succeeded or failed)
	// over the last RateWindow, or since it started if that is shorter.
	Rate float64 `json:"rate"`
	// Draining: it takes no more tasks, and is finishing those it has
	// (Shutdown, a signal to the worker command).
	Draining  bool      `json:"draining,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// SeenAt is when the worker wrote this record, by its own clock.
	SeenAt time.Time `json:"seen_at"`
}

// AdvertFormat is WorkerInfo.Format as this version writes it. A reader
// meeting a higher one may find fields it does not know; none that it
// knows changes meaning without the format changing.
const AdvertFormat = 1

// RateWindow is the span over which WorkerInfo.Rate is measured.
const RateWindow = 5 * time.Second

// workersBucket opens the cluster's bucket of worker records, creating it
// if absent with records that live ttl. It is kept in memory whatever
// Settings.Memory says: a broker that restarts loses the records, and the
// live workers make it again and write them within a second.
func workersBucket(ctx context.Context, t *topology, ttl time.Duration) (jetstream.KeyValue, time.Duration, error) {
	kv, err := keyValue(ctx, t.js, jetstream.KeyValueConfig{
		Bucket: t.n.workerRecords, Description: "wasmpool workers and what they have, each record dropped when its worker stops writing it",
		TTL: ttl, Storage: jetstream.MemoryStorage, Replicas: t.s.Replicas,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: setting up the worker records: %w", err)
	}
	return kv, bucketTTL(ctx, kv, ttl), nil
}

// AdvertEvery is how often a worker writes its record, for a bucket whose
// records live ttl: five times per ttl, at least once a second, so that
// a live worker's record survives four lost writes.
func AdvertEvery(ttl time.Duration) time.Duration { return heartbeatEvery(ttl) }

var (
	labelKeyRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	labelValueRE = regexp.MustCompile(`^[A-Za-z0-9._:/-]*$`)
)

// CheckLabels refuses labels a router could not match safely: keys and
// values are plain tokens (letters, digits and . _ / -, values also ':').
// NewWorker checks WorkerConfig.Labels with it.
func CheckLabels(labels map[string]string) error {
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) || len(k) > 64 {
			return fmt.Errorf("cluster: worker label %q: a key is 1 to 64 letters, digits, '.', '_', '/' or '-', starting with a letter or digit", k)
		}
		if !labelValueRE.MatchString(v) || len(v) > 256 {
			return fmt.Errorf("cluster: worker label %s=%q: a value is at most 256 letters, digits, '.', '_', ':', '/' or '-'", k, v)
		}
	}
	return nil
}

// advertiser keeps a worker's record in the workers bucket.
type advertiser struct {
	w     *Worker
	kv    jetstream.KeyValue
	every time.Duration
	info  WorkerInfo // the fixed part; counters filled in at each write

	// life ends at stopAdvert, cutting short a write to a broker that is
	// not answering.
	life    context.Context
	stop    context.CancelFunc
	stopped chan struct{}
	once    sync.Once

	mu      sync.Mutex
	samples []rateSample // finished counts of the last RateWindow, oldest first
}

type rateSample struct {
	at       time.Time
	finished int64
}

// startAdvert writes the worker's first record before it takes any task,
// so that a task it runs is never run by a worker nobody can see, then
// keeps it fresh until stopAdvert.
func (w *Worker) startAdvert(ctx context.Context) (*advertiser, error) {
	if err := CheckLabels(w.cfg.Labels); err != nil {
		return nil, err
	}
	kv, ttl, err := workersBucket(ctx, w.top, w.top.ackWait)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	caps := w.e.Capabilities()
	if len(caps) == 0 {
		caps = nil
	}
	labels := maps.Clone(w.cfg.Labels)
	if len(labels) == 0 {
		labels = nil
	}
	a := &advertiser{
		w: w, kv: kv, every: AdvertEvery(ttl),
		info: WorkerInfo{
			Format: AdvertFormat, ID: nuid.Next(), Name: w.cfg.Name, Host: host, PID: os.Getpid(),
			Slots: w.p.Workers(), Mode: w.p.Mode().String(), Labels: labels,
			Capabilities: caps, AllowMounts: w.cfg.AllowMounts, MemoryLimit: w.e.MemoryLimit(),
			StartedAt: time.Now().UTC(),
		},
		stopped: make(chan struct{}),
	}
	a.life, a.stop = context.WithCancel(context.Background())
	if err := a.put(ctx); err != nil {
		a.stop()
		return nil, fmt.Errorf("cluster: advertising the worker: %w", err)
	}
	go a.loop()
	return a, nil
}

// snapshot is the record as it is now; keep also counts it among the
// samples the rate is measured over (a record written, not one looked at).
func (a *advertiser) snapshot(now time.Time, keep bool) WorkerInfo {
	c := &a.w.stats
	info := a.info
	info.Failed = c.failed.Load()
	fin := c.finished.Load()
	info.Running = c.running.Load()
	info.Succeeded = fin - info.Failed
	info.Draining = a.w.fetchCtx.Err() != nil
	info.SeenAt = now.UTC()

	a.mu.Lock()
	defer a.mu.Unlock()
	// Measured from the newest sample at least RateWindow old (or the
	// first, while the worker is younger than that).
	for len(a.samples) > 1 && now.Sub(a.samples[1].at) >= RateWindow {
		a.samples = a.samples[1:]
	}
	first := rateSample{a.info.StartedAt, 0}
	if len(a.samples) > 0 {
		first = a.samples[0]
	}
	if keep {
		a.samples = append(a.samples, rateSample{now, fin})
	}
	if d := now.Sub(first.at).Seconds(); d > 0 {
		info.Rate = float64(fin-first.finished) / d
	}
	return info
}

func (a *advertiser) put(ctx context.Context) error {
	data, err := json.Marshal(a.snapshot(time.Now(), true))
	if err != nil {
		return err
	}
	_, err = a.kv.Put(ctx, a.info.ID, data)
	return err
}

func (a *advertiser) loop() {
	defer close(a.stopped)
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-a.life.Done():
			return
		case <-t.C:
			if a.w.nc.IsClosed() {
				return // for good: the record expires
			}
			if err := a.refresh(); err != nil && !a.w.nc.IsClosed() {
				a.w.log.Debug("could not refresh the worker's record", "err", err)
			}
			t.Reset(a.every)
		}
	}
}

// refresh writes the record again. Its time bound leaves room for the
// client's own retries of a publish no stream answered (half a second),
// which is how a lost bucket shows.
func (a *advertiser) refresh() error {
	ctx, cancel := context.WithTimeout(a.life, 2*a.every+time.Second)
	defer cancel()
	err := a.put(ctx)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		// The broker restarted and lost the bucket (memory): make it
		// again, with the cluster's AckWait as it is now.
		rctx, cancel := context.WithTimeout(a.life, 5*time.Second)
		defer cancel()
		if err = a.remake(rctx); err == nil {
			err = a.put(rctx)
		}
	}
	return err
}

func (a *advertiser) remake(ctx context.Context) error {
	ttl := a.w.top.ackWait
	if ci, err := a.w.top.workers.Info(ctx); err == nil {
		ttl = ci.Config.AckWait
	}
	kv, ttl, err := workersBucket(ctx, a.w.top, ttl)
	if err != nil {
		return err
	}
	a.kv, a.every = kv, AdvertEvery(ttl)
	return nil
}

// stopAdvert stops writing the record and deletes it: a worker that stops
// leaves the list at once. If the broker cannot be reached, the record
// expires by itself.
func (a *advertiser) stopAdvert() {
	if a == nil {
		return
	}
	a.once.Do(func() {
		a.stop()
		<-a.stopped
		if !a.w.nc.IsConnected() {
			return // no waiting on a broker that is away: the record expires
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := a.kv.Delete(ctx, a.info.ID); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.w.log.Debug("could not delete the worker's record", "err", err)
		}
	})
}

// Info is the record the worker advertises, as it is now.
func (w *Worker) Info() WorkerInfo {
	if w.adv == nil {
		return WorkerInfo{}
	}
	return w.adv.snapshot(time.Now(), false)
}
