package benchcmp

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawJetStream is the cluster rows' floor: the plainest job queue JetStream
// makes, on the broker wasmpool uses in the same run. A producer publishes
// each task to a work-queue stream (waiting for the broker to store it, as
// wasmpool's executor does); consumers take them in batches through a
// long-lived pull subscription, do the task's work in plain Go, answer the
// producer with a core message and acknowledge. No wasm, no futures, no
// result stream, no module or cancel records: what is left of wasmpool's
// pattern when all of that is taken away.
type rawJetStream struct {
	prod    *nats.Conn
	js      jetstream.JetStream
	stream  string
	subject string
	reply   string
	replies *nats.Subscription
	cons    []jetstream.ConsumeContext
	conns   []*nats.Conn

	mu      sync.Mutex
	waiting map[string]func(error)
}

// rawBatch is how many tasks a raw consumer asks for at once.
const rawBatch = 64

// newRawJetStream sets the probe up on the broker the connections reach:
// prod publishes, and each of workers consumes with slots handlers, as a
// wasmpool worker of that many slots would.
func newRawJetStream(ctx context.Context, prod *nats.Conn, workers []*nats.Conn, slots int, work func()) (*rawJetStream, error) {
	r := &rawJetStream{prod: prod, stream: "BENCH_RAW", subject: "bench.raw.tasks", reply: prod.NewInbox(),
		waiting: map[string]func(error){}, conns: workers}
	js, err := jetstream.New(prod, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		r.fail(string(m.Data), err)
	}), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	r.js = js
	_ = js.DeleteStream(ctx, r.stream)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: r.stream, Subjects: []string{r.subject}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.MemoryStorage,
	}); err != nil {
		return nil, fmt.Errorf("raw JetStream probe: %w", err)
	}
	if _, err := js.CreateConsumer(ctx, r.stream, jetstream.ConsumerConfig{
		Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: -1,
	}); err != nil {
		return nil, fmt.Errorf("raw JetStream probe: %w", err)
	}
	if r.replies, err = prod.Subscribe(r.reply, r.onReply); err != nil {
		return nil, err
	}
	for _, nc := range workers {
		wjs, err := jetstream.New(nc)
		if err != nil {
			r.close()
			return nil, err
		}
		c, err := wjs.Consumer(ctx, r.stream, "workers")
		if err != nil {
			r.close()
			return nil, err
		}
		// The handler answers on the slots' goroutines: a consumer with as
		// many tasks in hand at once as a wasmpool worker has slots.
		jobs := make(chan jetstream.Msg)
		for range slots {
			go func() {
				for m := range jobs {
					work()
					_ = nc.Publish(r.reply, m.Data())
					_ = m.Ack()
				}
			}()
		}
		cc, err := c.Consume(func(m jetstream.Msg) { jobs <- m }, jetstream.PullMaxMessages(rawBatch))
		if err != nil {
			close(jobs)
			r.close()
			return nil, err
		}
		r.cons = append(r.cons, stopping{cc, jobs})
	}
	return r, nil
}

// stopping closes a consumer's slots as it stops.
type stopping struct {
	jetstream.ConsumeContext
	jobs chan jetstream.Msg
}

func (s stopping) Stop() {
	s.ConsumeContext.Stop()
	<-s.Closed()
	close(s.jobs)
}

func (r *rawJetStream) onReply(m *nats.Msg) {
	r.mu.Lock()
	done := r.waiting[string(m.Data)]
	delete(r.waiting, string(m.Data))
	r.mu.Unlock()
	if done != nil {
		done(nil)
	}
}

// submit publishes task id; done runs when a consumer has answered.
func (r *rawJetStream) submit(id string, done func(error)) {
	r.mu.Lock()
	r.waiting[id] = done
	r.mu.Unlock()
	if _, err := r.js.PublishAsync(r.subject, []byte(id)); err != nil {
		r.fail(id, err)
	}
}

func (r *rawJetStream) fail(id string, err error) {
	r.mu.Lock()
	done := r.waiting[id]
	delete(r.waiting, id)
	r.mu.Unlock()
	if done != nil {
		done(err)
	}
}

func (r *rawJetStream) close() {
	for _, c := range r.cons {
		c.Stop()
	}
	if r.replies != nil {
		_ = r.replies.Unsubscribe()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.js.DeleteStream(ctx, r.stream)
}
