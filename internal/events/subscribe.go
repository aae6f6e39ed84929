package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler handles one event. Returning nil acknowledges it; an error gets
// it redelivered after a backoff. ctx is canceled when the subscription
// stops.
type Handler func(ctx context.Context, ev Event) error

// Subscription is a running durable consumer. Stop it with Stop.
type Subscription struct {
	bus     *Bus
	durable string
	next    string // the consumer's pull API subject
	handler Handler
	log     *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Subscribe starts the durable consumer named durable on the event stream,
// delivering events of the given types (all types when none are given) to
// h, one at a time, in stream order. A consumer that already exists resumes
// after its last acknowledged event. The subscription runs until ctx is
// canceled, Stop is called, or the Bus is closed.
func (b *Bus) Subscribe(ctx context.Context, durable string, h Handler, types ...Type) (*Subscription, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	if !validDurable(durable) {
		return nil, fmt.Errorf("events: invalid durable name %q", durable)
	}
	if h == nil {
		return nil, errors.New("events: nil handler")
	}
	cc := jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    b.cfg.MaxDeliver,
		MaxAckPending: 1024,
		Replicas:      b.cfg.Replicas,
	}
	var subjects []string
	for _, t := range types {
		if !t.Valid() {
			return nil, &EventError{Field: "type", Err: ErrInvalidEvent}
		}
		subjects = append(subjects, t.Subject())
	}
	switch len(subjects) {
	case 0:
		cc.FilterSubject = SubjectAll
	case 1:
		cc.FilterSubject = subjects[0]
	default:
		cc.FilterSubjects = subjects
	}
	if _, err := b.js.CreateOrUpdateConsumer(ctx, StreamName, cc); err != nil {
		return nil, fmt.Errorf("events: consumer %s: %w", durable, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	s := &Subscription{
		bus: b, durable: durable, handler: h,
		next:   "$JS.API.CONSUMER.MSG.NEXT." + StreamName + "." + durable,
		log:    b.log.With("durable", durable),
		cancel: cancel, done: make(chan struct{}),
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.run(runCtx)
	return s, nil
}

// run fetches the events one at a time, each once the one before is
// handled: an event's AckWait starts when its handler can start. (A
// consumer that pulls ahead has events wait in its buffer with their
// AckWait running; behind a slow handler they were delivered again, and
// handled twice, each redelivery counted against MaxDeliver as if it had
// failed. A stopped subscriber also left them unacknowledged for an
// AckWait.)
func (s *Subscription) run(ctx context.Context) {
	defer close(s.done)
	for {
		msg, err := s.pull(ctx)
		if ctx.Err() != nil {
			if msg != nil {
				_ = msg.Nak() // at once to the next subscriber
			}
			return
		}
		if err != nil {
			s.log.Warn("event consumer", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if msg != nil {
			s.handle(ctx, msg)
		}
	}
}

// Pull requests: one event, held by the server up to pullExpires, with a
// heartbeat every pullHeartbeat so that a lost request is noticed.
const (
	pullExpires   = 30 * time.Second
	pullHeartbeat = 5 * time.Second
)

var pullRequest = []byte(fmt.Sprintf(`{"batch":1,"expires":%d,"idle_heartbeat":%d}`, pullExpires.Nanoseconds(), pullHeartbeat.Nanoseconds()))

// pull asks the consumer for one event and waits for it: nil, nil when
// the request expired empty. Each request has an inbox of its own,
// unsubscribed before pull returns, so that once Stop has returned the
// server sees no interest left in an outstanding request and gives an
// event published afterwards to the next subscriber at once. (A request
// whose inbox was still subscribed when it was answered took the event
// into a stopped subscriber, where it waited out AckWait, 30 s, before
// anyone else could have it.) A request given up (Stop, no heartbeat)
// drains its inbox first; events that reached it unasked for, or too late,
// are handed back with a Nak.
func (s *Subscription) pull(ctx context.Context) (*nats.Msg, error) {
	nc := s.bus.nc
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, err
	}
	abandoned := false
	defer func() { closeInbox(nc, sub, ch, abandoned) }()
	if err := nc.PublishRequest(s.next, inbox, pullRequest); err != nil {
		return nil, err
	}
	idle := time.NewTimer(2 * pullHeartbeat)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			abandoned = true
			return nil, ctx.Err()
		case <-idle.C:
			abandoned = true
			return nil, errors.New("events: no heartbeat on a pull request")
		case m := <-ch:
			switch status := m.Header.Get("Status"); status {
			case "":
				return m, nil
			case "100": // idle heartbeat
				idle.Reset(2 * pullHeartbeat)
			case "404", "408": // no events within the request's expiry
				return nil, nil
			default:
				return nil, fmt.Errorf("events: pull request: %s %s", status, m.Header.Get("Description"))
			}
		}
	}
}

// closeInbox unsubscribes a pull request's inbox and hands back, with a
// Nak, the events in ch. A request given up (abandoned) is taken off the
// server first, and the server's answer to a ping awaited: an event it
// sent before it saw the UNSUB then reaches ch, instead of being dropped
// by the client (it would wait out AckWait).
func closeInbox(nc *nats.Conn, sub *nats.Subscription, ch <-chan *nats.Msg, abandoned bool) {
	if abandoned {
		_ = sub.Drain()
		_ = nc.FlushTimeout(time.Second)
	}
	_ = sub.Unsubscribe()
	for {
		select {
		case m := <-ch:
			if m.Header.Get("Status") == "" {
				_ = m.Nak()
			}
		default:
			return
		}
	}
}

func (s *Subscription) handle(ctx context.Context, msg *nats.Msg) {
	ev, err := ParseEvent(msg.Data)
	if err != nil {
		s.log.Error("invalid event dropped", "subject", msg.Subject, "err", err)
		_ = term(msg, "invalid envelope")
		return
	}
	herr := s.handler(ctx, ev)
	if herr == nil {
		if err := msg.Ack(); err != nil {
			s.log.Warn("ack failed", "type", ev.Type, "id", ev.ID, "err", err)
		}
		return
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	if delivered >= uint64(s.bus.cfg.MaxDeliver) {
		s.log.Error("event dropped after repeated handler errors", "type", ev.Type, "id", ev.ID, "deliveries", delivered, "err", herr)
		_ = term(msg, "handler failed "+fmt.Sprint(delivered)+" times")
		return
	}
	delay := backoff(s.bus.cfg.RetryMin, s.bus.cfg.RetryMax, delivered)
	s.log.Warn("event handler failed; will retry", "type", ev.Type, "id", ev.ID, "delivery", delivered, "retryIn", delay, "err", herr)
	_ = msg.NakWithDelay(delay)
}

// term tells the consumer never to deliver msg again, with the reason its
// advisory carries.
func term(msg *nats.Msg, reason string) error {
	return msg.Respond([]byte("+TERM " + reason))
}

// backoff returns min·2^(n-1), capped at max.
func backoff(min, max time.Duration, n uint64) time.Duration {
	d := min
	for i := uint64(1); i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// Stop ends the subscription and waits for a running handler to return.
// Unacknowledged events stay on the durable consumer for the next
// subscriber. It is idempotent.
func (s *Subscription) Stop() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
	})
}

// Done is closed when the subscription has stopped.
func (s *Subscription) Done() <-chan struct{} { return s.done }

func validDurable(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
