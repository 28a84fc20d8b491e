package cluster

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// How a worker asks the broker for tasks: one inbox subscription kept for
// the worker's life, and a pull request sent to it for each free slot not
// already asked for. A Fetch(1) per slot per task opened and dropped an
// inbox each time (a subscription, an unsubscription and their protocol
// round trips); this costs one small request per task.
//
// The promise of one task per slot holds exactly: the broker is asked for
// at most the slots that are free, nothing is prefetched, and a slot is
// free again only once its task is acknowledged (see finish). The count of
// tasks asked for and not yet delivered comes back from the broker's
// status messages (a request that expires says how many it still had); a
// broker that goes silent (it restarted and forgot the requests, or the
// connection dropped) is noticed by the missing idle heartbeats, and the
// worker starts over on a new inbox, so that a forgotten request answered
// late cannot hand it more tasks than it has slots.

// taskMsg is a task message as a worker handles it: what it reads and how it
// answers the broker about it.
type taskMsg interface {
	Data() []byte
	Metadata() (*jetstream.MsgMetadata, error)
	Ack() error
	Nak() error
	NakWithDelay(delay time.Duration) error
	InProgress() error
	TermWithReason(reason string) error
}

// pulled is a task message that arrived on the worker's inbox.
type pulled struct{ m *nats.Msg }

func (p pulled) Data() []byte { return p.m.Data }
func (p pulled) Ack() error   { return p.m.Respond([]byte("+ACK")) }
func (p pulled) Nak() error   { return p.m.Respond([]byte("-NAK")) }
func (p pulled) NakWithDelay(d time.Duration) error {
	return p.m.Respond(fmt.Appendf(nil, `-NAK {"delay": %d}`, d.Nanoseconds()))
}
func (p pulled) InProgress() error { return p.m.Respond([]byte("+WPI")) }
func (p pulled) TermWithReason(reason string) error {
	return p.m.Respond([]byte("+TERM " + reason))
}

func (p pulled) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := p.m.Metadata()
	if err != nil {
		return nil, err
	}
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Consumer: md.Sequence.Consumer, Stream: md.Sequence.Stream},
		NumDelivered: md.NumDelivered, NumPending: md.NumPending, Timestamp: md.Timestamp,
		Stream: md.Stream, Consumer: md.Consumer, Domain: md.Domain,
	}, nil
}

// puller is the state of the worker's requests for tasks, owned by the pull
// goroutine.
type puller struct {
	w       *Worker
	subject string // the consumer's next-message API subject
	events  chan *nats.Msg
	sub     *nats.Subscription
	inbox   string
	// free is how many slots are free and not asked for; asked how many
	// were asked for and not delivered. free+asked+busy is the slot count.
	free, asked int
	heard       time.Time // the broker's last word on the inbox
	retry       backoff
}

// pull asks for tasks and hands them to the slots (tasks), counting a slot
// free again when it says so on freed, until the worker stops taking
// tasks; then it closes tasks.
func (w *Worker) pull(slots int, tasks chan<- taskMsg, freed <-chan struct{}) {
	defer close(tasks)
	p := &puller{
		w:       w,
		subject: fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", w.top.n.tasksStream, w.top.n.workers),
		events:  make(chan *nats.Msg, 2*slots+16),
		free:    slots,
	}
	defer p.drop()
	tick := time.NewTicker(max(w.pullBeat/4, time.Millisecond))
	defer tick.Stop()
	for {
		if w.nc.IsClosed() {
			w.log.Error("the NATS connection was closed: stopping")
			w.stopFetch()
			return
		}
		p.ask()
		select {
		case <-w.fetchCtx.Done():
			return
		case <-freed:
			p.free++
		case m := <-p.events:
			if m.Sub != p.sub {
				// A task for an inbox given up: hand it back now rather
				// than after the AckWait.
				if m.Reply != "" && len(m.Data) > 0 {
					_ = m.Respond([]byte("-NAK"))
				}
				continue
			}
			p.heard = time.Now()
			if isTask(m) {
				p.asked--
				p.retry.reset()
				tasks <- pulled{m} // room for every slot: never blocks
				continue
			}
			p.status(m)
		case <-tick.C:
			if p.asked > 0 && time.Since(p.heard) > 2*w.pullBeat {
				// The broker forgot the requests (it restarted), or the
				// connection is down: ask again on a new inbox, at once,
				// then at the pace of an outage.
				w.log.Info("the broker stopped answering a request for a task: asking again")
				p.drop()
				p.retry.wait(w.fetchCtx)
			}
		}
	}
}

// ask sends a request for every free slot not asked for yet.
//
// (A request for all of them at once costs fewer messages when many slots
// free together, but measured no faster under load, where slots free one
// by one; and the broker would then count one waiting request for many
// free slots.)
func (p *puller) ask() {
	w := p.w
	if p.free == 0 || !w.nc.IsConnected() {
		return
	}
	if p.sub == nil {
		p.inbox = w.nc.NewInbox()
		sub, err := w.nc.Subscribe(p.inbox, func(m *nats.Msg) {
			select {
			case p.events <- m:
			case <-w.fetchCtx.Done():
			}
		})
		if err != nil {
			w.log.Warn("asking for tasks failed", "err", err)
			p.retry.wait(w.fetchCtx)
			return
		}
		p.sub = sub
	}
	// One request of one task per free slot: the broker's count of
	// waiting requests stays its count of free slots (BrokerStats), and
	// under load a slot freed is one request either way.
	req := fmt.Appendf(nil, `{"batch":1,"expires":%d,"idle_heartbeat":%d}`,
		w.cfg.PollWait.Nanoseconds(), w.pullBeat.Nanoseconds())
	for p.free > 0 {
		if err := w.nc.PublishRequest(p.subject, p.inbox, req); err != nil {
			w.log.Warn("asking for tasks failed", "err", err)
			p.retry.wait(w.fetchCtx)
			return
		}
		if p.asked == 0 {
			p.heard = time.Now()
		}
		p.asked++
		p.free--
	}
}

// status reads the broker's word on a request: a heartbeat says it still
// waits; a request that ended says how many tasks it had left to hand out,
// which are free to ask for again. An ending that does not say (a consumer
// deleted, too many requests waiting) gives up on every request made.
func (p *puller) status(m *nats.Msg) {
	code := m.Header.Get("Status")
	if code == "100" {
		return
	}
	left, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
	if err == nil && left == 0 {
		return
	}
	if err != nil || left < 0 || left > p.asked {
		p.w.log.Warn("a request for tasks ended", "status", code, "description", m.Header.Get("Description"))
		p.drop()
		p.retry.wait(p.w.fetchCtx)
		return
	}
	p.retry.reset()
	p.asked -= left
	p.free += left
}

// drop gives up on every request made, and on their inbox.
func (p *puller) drop() {
	if p.sub != nil {
		_ = p.sub.Unsubscribe()
		p.sub = nil
	}
	p.free += p.asked
	p.asked = 0
}

// isTask tells a task from the broker's status messages, which carry a
// Status header and no data.
func isTask(m *nats.Msg) bool {
	return len(m.Data) > 0 || m.Header.Get("Status") == ""
}
