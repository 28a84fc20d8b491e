package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// How a worker learns that a submitter cancelled a task: the broadcast on
// the cancel subject stops a task where it runs, and a watch on the cancel
// records keeps a local set of every task cancelled within CancelTTL, for
// the one picked up after its broadcast (the worker was disconnected, or
// started later). The set is looked up as a task is registered, in memory:
// no request to the broker per task, as a Get of the record was.

// watchCancels starts both listeners, and returns once the set holds every
// record already there, so that no task is taken before its record is
// known.
func (w *Worker) watchCancels(ctx context.Context) error {
	var err error
	if w.cancelSub, err = w.nc.Subscribe(w.top.n.cancelSubject, func(m *nats.Msg) { w.cancel(string(m.Data), time.Now()) }); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	// The watch's context is the worker's life: it must outlive ctx, which
	// only bounds NewWorker.
	if w.cancelKV, err = w.top.cancels.WatchAll(w.runCtx, jetstream.MetaOnly(), jetstream.IgnoreDeletes()); err != nil {
		_ = w.cancelSub.Unsubscribe()
		return fmt.Errorf("cluster: watching the cancel records: %w", err)
	}
	initial := make(chan struct{})
	w.watching.Add(1)
	go func() {
		defer w.watching.Done()
		for e := range w.cancelKV.Updates() {
			if e == nil {
				close(initial)
				continue
			}
			if e.Operation() == jetstream.KeyValuePut {
				w.cancel(e.Key(), e.Created())
			}
		}
	}()
	select {
	case <-initial:
		return nil
	case <-ctx.Done():
		w.stopWatchingCancels()
		return fmt.Errorf("cluster: reading the cancel records: %w", ctx.Err())
	}
}

func (w *Worker) stopWatchingCancels() {
	_ = w.cancelSub.Unsubscribe()
	_ = w.cancelKV.Stop()
	w.live.stop()
	w.watching.Wait()
}

// cancel stops a task its submitter cancelled (at time at), and remembers
// the cancellation for CancelTTL in case the task is being picked up now
// or later.
func (w *Worker) cancel(id string, at time.Time) {
	now := time.Now()
	w.mu.Lock()
	if len(w.cancelled) >= w.pruneAt {
		for k, t := range w.cancelled {
			if now.Sub(t) > w.cfg.CancelTTL {
				delete(w.cancelled, k)
			}
		}
		// Amortised: the next sweep waits until the map has doubled.
		w.pruneAt = max(1024, 2*len(w.cancelled))
	}
	if t, ok := w.cancelled[id]; !ok || at.After(t) {
		w.cancelled[id] = at
	}
	w.mu.Unlock()
	w.cancelRun(id)
}
