package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The worker's side of routing: it follows the records of the requirement
// sets, and has its pull goroutine ask the consumer of each set it meets
// (see puller) besides the common queue.

// routeChange is a set the worker now serves (add), or no longer does.
type routeChange struct {
	key string
	add bool
}

// routeWatch follows the set records for a worker.
type routeWatch struct {
	changes chan routeChange // read by the pull goroutine
	rs      *routeStore
	watch   jetstream.KeyWatcher
	done    chan struct{}
}

// watchRoutes opens the routed stream and the set records, and follows
// the records until the worker stops taking tasks.
func (w *Worker) watchRoutes(ctx context.Context) (*routeWatch, error) {
	rs, err := openRoutes(ctx, w.top)
	if err != nil {
		return nil, err
	}
	// Not under ctx, which only bounds NewWorker: the watch lives as long
	// as the worker takes tasks.
	watch, err := rs.records.WatchAll(w.fetchCtx)
	if err != nil {
		return nil, fmt.Errorf("cluster: watching the requirement sets: %w", err)
	}
	rw := &routeWatch{changes: make(chan routeChange), rs: rs, watch: watch, done: make(chan struct{})}
	go rw.loop(w)
	return rw, nil
}

func (rw *routeWatch) loop(w *Worker) {
	defer close(rw.done)
	defer func() { _ = rw.watch.Stop() }()
	me := w.adv.info
	serving := map[string]bool{}
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-w.fetchCtx.Done():
			return
		case u, ok := <-rw.watch.Updates():
			if !ok {
				return
			}
			if u == nil {
				continue // the records there were; the watch goes on
			}
			e = u
		}
		key := e.Key()
		c := routeChange{key: key}
		if e.Operation() == jetstream.KeyValuePut {
			req, ok := decodeRouteRecord(key, e.Value())
			c.add = ok && len(req.Missing(me)) == 0
		}
		if !c.add && !serving[key] {
			continue
		}
		if c.add {
			// The set's consumer exists before the first request for it:
			// a request to a consumer that does not exist only fails.
			cctx, cancel := context.WithTimeout(w.fetchCtx, 5*time.Second)
			_, err := rw.rs.consumer(cctx, key)
			cancel()
			if err != nil {
				w.log.Warn("could not serve a requirement set", "route", key, "err", err)
				continue
			}
		}
		select {
		case rw.changes <- c:
			serving[key] = c.add
		case <-w.fetchCtx.Done():
			return
		}
	}
}
