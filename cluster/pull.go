package cluster

import (
	"fmt"
	"slices"
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
//
// A worker that meets the requirements of routed task sets asks their
// consumers too (sources after the first, the common queue). A free slot's
// one request goes to one source at a time, so a slot still never holds
// more than one task, and a task is never handed to a slot that will not
// try it; what a request waiting at one source cannot do is see a task
// arrive at another. So while there is more than one source, requests
// expire after routeRotate instead of PollWait, and each freed request goes
// where the work is: first to a source not asked for a while (none
// starves), then to one that last said it has more queued, fewest asked
// first; with none busy, they spread over all. With one source everything
// is as it always was.
type puller struct {
	w       *Worker
	sources []*source
	events  chan *nats.Msg
	// free is how many slots are free and not asked for; the sources'
	// asked, how many were asked for and not delivered. free+asked+busy is
	// the slot count.
	free     int
	retry    backoff
	turn     int  // where the search for a source begins, rotating
	routable bool // see Worker.routable
}

// source is one consumer a worker asks for tasks: the common one, or a
// requirement set's.
type source struct {
	route   string // the set's key; "" for the common queue
	subject string // the consumer's next-message API subject
	sub     *nats.Subscription
	inbox   string
	asked   int
	heard   time.Time // the broker's last word on the inbox
	ended   time.Time // when a request last ended without a task
	busy    bool      // its last task said more are queued
	gone    bool      // removed: its requests run out, none is made
}

// routeRotate bounds a request's wait while a worker asks several sources,
// and, for a worker that has something a task may require, even while it
// asks the common queue alone: a request cannot be taken back, and one
// waiting PollWait there would keep the first task of a set the worker
// learns of waiting as long.
const routeRotate = time.Second

// routable reports whether the worker has what some tasks may require and
// others lack: labels, capabilities, mounts. (A set requiring memory alone
// may wait up to PollWait for a worker without them.)
func (w *Worker) routable() bool {
	return len(w.cfg.Labels) > 0 || w.cfg.AllowMounts || len(w.e.Capabilities()) > 0
}

// pull asks for tasks and hands them to the slots (tasks), counting a slot
// free again when it says so on freed, until the worker stops taking
// tasks; then it closes tasks.
func (w *Worker) pull(slots int, tasks chan<- taskMsg, freed <-chan struct{}) {
	defer close(tasks)
	p := &puller{
		w:      w,
		events: make(chan *nats.Msg, 2*slots+16),
		free:   slots,
	}
	p.routable = w.routable()
	p.sources = []*source{{subject: fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", w.top.n.tasksStream, w.top.n.workers)}}
	defer func() {
		for _, src := range p.sources {
			p.drop(src)
		}
	}()
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
		case c := <-w.routes.changes:
			p.change(c)
		case m := <-p.events:
			src := p.sourceOf(m.Sub)
			if src == nil {
				// A task for an inbox given up: hand it back now rather
				// than after the AckWait.
				if m.Reply != "" && len(m.Data) > 0 {
					_ = m.Respond([]byte("-NAK"))
				}
				continue
			}
			src.heard = time.Now()
			if isTask(m) {
				src.asked--
				if len(p.sources) > 1 {
					md, err := m.Metadata()
					src.busy = err == nil && md.NumPending > 0
				}
				p.retry.reset()
				tasks <- pulled{m} // room for every slot: never blocks
				continue
			}
			p.status(src, m)
		case <-tick.C:
			for _, src := range p.sources {
				if src.asked > 0 && time.Since(src.heard) > 2*w.pullBeat {
					// The broker forgot the requests (it restarted), or the
					// connection is down: ask again on a new inbox, at once,
					// then at the pace of an outage.
					w.log.Info("the broker stopped answering a request for a task: asking again")
					p.drop(src)
					p.retry.wait(w.fetchCtx)
				}
			}
			p.prune()
		}
	}
}

func (p *puller) sourceOf(sub *nats.Subscription) *source {
	for _, src := range p.sources {
		if src.sub == sub && sub != nil {
			return src
		}
	}
	return nil
}

// change adds the source of a requirement set the worker now serves, or
// stops asking one it no longer does.
func (p *puller) change(c routeChange) {
	for _, src := range p.sources {
		if src.route == c.key {
			src.gone = !c.add
			return
		}
	}
	if c.add {
		p.sources = append(p.sources, &source{route: c.key, subject: fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s",
			p.w.top.n.routedStream(), routeConsumer(c.key)), busy: true})
	}
}

// prune forgets the removed sources whose requests have all ended.
func (p *puller) prune() {
	p.sources = slices.DeleteFunc(p.sources, func(src *source) bool {
		if !src.gone || src.asked > 0 {
			return false
		}
		p.drop(src)
		return true
	})
}

// next is the source the next request goes to (see puller).
func (p *puller) next(now time.Time) *source {
	if len(p.sources) == 1 {
		return p.sources[0]
	}
	var live []*source
	for _, src := range p.sources {
		if !src.gone {
			live = append(live, src)
		}
	}
	if len(live) == 1 {
		return live[0]
	}
	n := len(live)
	p.turn++
	at := func(i int) *source { return live[(p.turn+i)%n] }
	var pick *source
	for i := range n {
		if src := at(i); src.asked == 0 && now.Sub(src.ended) > routeRotate && (pick == nil || src.ended.Before(pick.ended)) {
			pick = src
		}
	}
	if pick != nil {
		return pick
	}
	for i := range n {
		if src := at(i); src.busy && (pick == nil || src.asked < pick.asked) {
			pick = src
		}
	}
	if pick != nil {
		return pick
	}
	for i := range n {
		if src := at(i); pick == nil || src.asked < pick.asked {
			pick = src
		}
	}
	return pick
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
	// One request of one task per free slot: the broker's count of
	// waiting requests stays its count of free slots (BrokerStats), and
	// under load a slot freed is one request either way.
	expires := w.cfg.PollWait
	if len(p.sources) > 1 || p.routable {
		expires = min(expires, routeRotate)
	}
	req := fmt.Appendf(nil, `{"batch":1,"expires":%d,"idle_heartbeat":%d}`,
		expires.Nanoseconds(), w.pullBeat.Nanoseconds())
	now := time.Now()
	for p.free > 0 {
		src := p.next(now)
		if src.sub == nil {
			src.inbox = w.nc.NewInbox()
			sub, err := w.nc.Subscribe(src.inbox, func(m *nats.Msg) {
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
			src.sub = sub
		}
		if err := w.nc.PublishRequest(src.subject, src.inbox, req); err != nil {
			w.log.Warn("asking for tasks failed", "err", err)
			p.retry.wait(w.fetchCtx)
			return
		}
		if src.asked == 0 {
			src.heard = now
		}
		src.asked++
		p.free--
	}
}

// status reads the broker's word on a request: a heartbeat says it still
// waits; a request that ended says how many tasks it had left to hand out,
// which are free to ask for again. An ending that does not say (a consumer
// deleted, too many requests waiting) gives up on every request made.
func (p *puller) status(src *source, m *nats.Msg) {
	code := m.Header.Get("Status")
	if code == "100" {
		return
	}
	left, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
	if err == nil && left == 0 {
		return
	}
	if err != nil || left < 0 || left > src.asked {
		p.w.log.Warn("a request for tasks ended", "status", code, "description", m.Header.Get("Description"), "route", src.route)
		p.drop(src)
		if src.route != "" {
			// A set's consumer gone (removed, or lost with a broker's
			// memory): stop asking it, rather than hold up the other
			// sources with retries; its record, written again, brings it
			// back.
			src.gone = true
			return
		}
		p.retry.wait(p.w.fetchCtx)
		return
	}
	p.retry.reset()
	src.asked -= left
	src.ended, src.busy = time.Now(), false
	p.free += left
}

// drop gives up on every request made to src, and on their inbox.
func (p *puller) drop(src *source) {
	if src.sub != nil {
		_ = src.sub.Unsubscribe()
		src.sub = nil
	}
	p.free += src.asked
	src.asked = 0
}

// isTask tells a task from the broker's status messages, which carry a
// Status header and no data.
func isTask(m *nats.Msg) bool {
	return len(m.Data) > 0 || m.Header.Get("Status") == ""
}
