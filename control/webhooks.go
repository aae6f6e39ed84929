package control

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/netguard"
	"github.com/verity-cdn/verity/internal/secret"
)

// Webhooks. A site's owner registers endpoints (webhooks bucket, key
// "<site>.<id>") subscribed to some of the site's event types. The
// fan-out consumer (WebhookFanoutDurable, shared by every gateway) turns
// each such event into one delivery job per subscribed endpoint on the
// VERITY_WEBHOOKS stream (deduplicated by event and endpoint); the
// delivery consumer (WebhookDeliveryDurable, shared) POSTs each job,
// signed, and retries a failure with a doubling delay up to a cap, a
// bounded number of times. Both are durable: a job pending when a gateway
// stops is delivered after it (or another gateway) starts. Jobs are kept
// WebhookLogRetention, which is also how far back an event can be
// delivered again.
const (
	// WebhookFanoutDurable and WebhookDeliveryDurable are the webhook
	// consumers' durable names.
	WebhookFanoutDurable   = "webhooks"
	WebhookDeliveryDurable = "webhook-delivery"
	// WebhookStream holds delivery jobs on WebhookSubjectPrefix + site.
	WebhookStream        = "VERITY_WEBHOOKS"
	WebhookSubjectPrefix = "verity.webhooks."

	webhookSecretPrefix = "vws_"
	webhookIDPrefix     = "wh_"
	// MaxWebhooks bounds a site's endpoints; MaxWebhookLog an endpoint's
	// logged attempts (the oldest are dropped).
	MaxWebhooks   = 16
	MaxWebhookLog = 100
	// webhookWorkers bounds the deliveries in flight on one gateway.
	webhookWorkers = 8
	// webhookMaxPending bounds the jobs delivered and not yet acknowledged,
	// those waiting for a retry included: none (each site's jobs are
	// bounded by webhookJobsPerSite instead).
	webhookMaxPending = -1
	// webhookJobsPerSite bounds a site's jobs kept in the stream (its
	// delivery log's retention): 16 endpoints, two events a deploy, about
	// 1,500 deploys.
	webhookJobsPerSite = 50_000
)

// The headers of a delivery. The signature is
// "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
const (
	HeaderWebhookEvent     = "Verity-Event-Id"
	HeaderWebhookType      = "Verity-Event-Type"
	HeaderWebhookTimestamp = "Verity-Timestamp"
	HeaderWebhookSignature = "Verity-Signature"
	HeaderWebhookAttempt   = "Verity-Delivery-Attempt"
)

// WebhookTypes are the event types an endpoint may subscribe to: the
// events about one site.
var WebhookTypes = []events.Type{
	events.TypeSiteDeployed, events.TypeSitePublished, events.TypeSiteRolledBack, events.TypeDeployFailed,
	events.TypeDomainAttached, events.TypeDomainVerified, events.TypeDomainRemoved,
}

// webhookRecord is an endpoint's value in the webhooks bucket.
type webhookRecord struct {
	ID      string    `json:"id"`
	Site    string    `json:"site"`
	URL     string    `json:"url"`
	Events  []string  `json:"events"`
	Secret  []byte    `json:"secret"` // sealed (secret.Sealer)
	Created time.Time `json:"created"`
}

func (r webhookRecord) public() api.Webhook {
	return api.Webhook{ID: r.ID, Site: r.Site, URL: r.URL, Events: r.Events, Created: r.Created}
}

// webhookJob is a message on WebhookStream: one event for one endpoint.
type webhookJob struct {
	Site       string       `json:"site"`
	Webhook    string       `json:"webhook"`
	Event      events.Event `json:"event"`
	Redelivery bool         `json:"redelivery,omitempty"`
}

// logEntry is an attempt as the webhook_log bucket keeps it: with the
// job's stream sequence, for a redelivery.
type logEntry struct {
	api.WebhookAttempt
	Seq uint64 `json:"seq"`
}

func webhookKey(site, id string) string { return site + "." + id }

// validWebhookID reports whether id is one this package made.
func validWebhookID(id string) bool {
	h, ok := strings.CutPrefix(id, webhookIDPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// startWebhooks opens the buckets and the job stream and starts both
// consumers. sealer seals the endpoints' secrets.
func (c *Control) startWebhooks(ctx context.Context, sealer *secret.Sealer) error {
	var err error
	c.sealer = sealer
	if c.hooks, err = c.cfg.Bus.KV(events.BucketWebhooks); err != nil {
		return err
	}
	if c.hookLog, err = c.cfg.Bus.KV(events.BucketWebhookLog); err != nil {
		return err
	}
	guard := netguard.Guard{AllowPrivate: c.cfg.AllowPrivateAddrs}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: guard.Control}
	c.hookClient = &http.Client{
		Transport: &http.Transport{
			DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       c.cfg.WebhookTimeout,
	}
	js := c.cfg.Bus.JetStream()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: WebhookStream, Description: "Verity webhook deliveries",
		Subjects: []string{WebhookSubjectPrefix + ">"},
		Storage:  jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: c.cfg.WebhookLogRetention, Duplicates: 10 * time.Minute,
		MaxMsgSize: 2 * events.MaxEventBytes, Replicas: c.cfg.Bus.Replicas(),
		// A site's jobs are bounded: past the bound its new jobs are
		// refused (and logged), never another site's, never older ones.
		MaxMsgsPerSubject: webhookJobsPerSite, Discard: jetstream.DiscardNew, DiscardNewPerSubject: true,
	}); err != nil {
		return fmt.Errorf("stream %s: %w", WebhookStream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, WebhookStream, jetstream.ConsumerConfig{
		Durable: WebhookDeliveryDurable, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// A gateway that stops mid-request leaves the job unacknowledged:
		// it is delivered again once AckWait has passed. A job waiting in
		// the client's buffer while the workers are busy is covered by
		// the larger bound; a worker marks its job in progress before
		// posting it.
		AckWait: 3*c.cfg.WebhookTimeout + 5*time.Second, MaxDeliver: -1,
		// Jobs waiting for their retry (NakWithDelay) count as pending:
		// unbounded here, so that one site's failing endpoints cannot
		// hold every other site's deliveries back.
		MaxAckPending: webhookMaxPending, Replicas: c.cfg.Bus.Replicas(),
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", WebhookDeliveryDurable, err)
	}
	iter, err := cons.Messages(jetstream.WithMessagesErrOnMissingHeartbeat(false), jetstream.PullMaxMessages(webhookWorkers))
	if err != nil {
		return fmt.Errorf("consume %s: %w", WebhookDeliveryDurable, err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runDeliveries(iter)
	}()
	c.hookSub, err = c.cfg.Bus.Subscribe(c.ctx, WebhookFanoutDurable, c.onWebhookEvent, WebhookTypes...)
	return err
}

// onWebhookEvent queues one delivery job per endpoint of the event's site
// subscribed to its type and registered before it happened.
func (c *Control) onWebhookEvent(ctx context.Context, ev events.Event) error {
	var p struct {
		Site string `json:"site"`
	}
	if ev.Decode(&p) != nil || !gateway.ValidSiteName(p.Site) {
		return nil
	}
	recs, err := c.siteWebhooks(ctx, p.Site)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if !slices.Contains(rec.Events, string(ev.Type)) || ev.Time.Before(rec.Created) {
			continue
		}
		if err := c.queueWebhook(ctx, webhookJob{Site: p.Site, Webhook: rec.ID, Event: ev}, ev.ID+"/"+rec.ID); err != nil {
			return err
		}
	}
	return nil
}

func (c *Control) queueWebhook(ctx context.Context, job webhookJob, msgID string) error {
	b, err := json.Marshal(job)
	if err != nil {
		return err
	}
	if _, err := c.cfg.Bus.JetStream().Publish(ctx, WebhookSubjectPrefix+job.Site, b, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("control: queue webhook: %w", err)
	}
	return nil
}

// runDeliveries hands each job to a worker, at most webhookWorkers at a
// time, until Close.
func (c *Control) runDeliveries(iter jetstream.MessagesContext) {
	stop := context.AfterFunc(c.ctx, iter.Stop)
	defer stop()
	sem := make(chan struct{}, webhookWorkers)
	for {
		msg, err := iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || c.ctx.Err() != nil {
				break
			}
			c.log.Warn("webhook consumer", "err", err)
			select {
			case <-c.ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		sem <- struct{}{}
		c.wg.Add(1)
		go func() {
			defer func() { <-sem; c.wg.Done() }()
			c.deliver(c.ctx, msg)
		}()
	}
}

// deliver makes one attempt of a job and logs it: acknowledged on a 2xx
// answer, retried after a backoff otherwise, dropped after
// WebhookAttempts attempts or when the endpoint is gone.
func (c *Control) deliver(ctx context.Context, msg jetstream.Msg) {
	var job webhookJob
	if err := json.Unmarshal(msg.Data(), &job); err != nil {
		c.log.Error("invalid webhook job dropped", "err", err)
		_ = msg.Term()
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Nak()
		return
	}
	rec, ok, err := c.webhook(ctx, job.Site, job.Webhook)
	if err != nil {
		_ = msg.NakWithDelay(c.cfg.WebhookRetryMin)
		return
	}
	if !ok {
		_ = msg.Term() // the endpoint was removed
		return
	}
	attempt := int(md.NumDelivered)
	a := api.WebhookAttempt{Event: job.Event.ID, Type: string(job.Event.Type), Attempt: attempt, Redelivery: job.Redelivery}
	key, err := c.sealer.Open(rec.Secret)
	if err != nil {
		// Sealed under another admin token: another gateway of the
		// cluster may hold it (they must share one), else the admin
		// token changed and it can never be signed again.
		a.Time, a.Error = c.cfg.Now().UTC(), "the endpoint's secret cannot be unsealed on this gateway (do the cluster's gateways share one admin token? was it changed?)"
		if attempt < c.cfg.WebhookAttempts {
			next := a.Time.Add(webhookBackoff(c.cfg.WebhookRetryMin, c.cfg.WebhookRetryMax, attempt))
			a.NextRetry = &next
		}
		c.logAttempt(ctx, rec, logEntry{a, md.Sequence.Stream})
		if a.NextRetry != nil {
			_ = msg.NakWithDelay(a.NextRetry.Sub(a.Time))
		} else {
			_ = msg.Term()
		}
		return
	}
	_ = msg.InProgress() // AckWait starts again for the post
	start := c.cfg.Now()
	a.Time = start.UTC()
	a.Status, err = c.post(ctx, rec.URL, key, job.Event, attempt, start)
	if ctx.Err() != nil {
		_ = msg.Nak() // stopping: the next consumer makes this attempt again
		return
	}
	a.DurationMS = c.cfg.Now().Sub(start).Milliseconds()
	if err != nil {
		a.Error = err.Error()
	} else if a.Status < 200 || a.Status > 299 {
		a.Error = "answered " + http.StatusText(a.Status)
	}
	var delay time.Duration
	if a.Error != "" && attempt < c.cfg.WebhookAttempts {
		delay = webhookBackoff(c.cfg.WebhookRetryMin, c.cfg.WebhookRetryMax, attempt)
		next := a.Time.Add(delay)
		a.NextRetry = &next
	}
	c.logAttempt(ctx, rec, logEntry{a, md.Sequence.Stream})
	switch {
	case a.Error == "":
		_ = msg.Ack()
	case a.NextRetry != nil:
		_ = msg.NakWithDelay(delay)
	default:
		c.log.Warn("webhook delivery given up", "site", rec.Site, "webhook", rec.ID, "event", job.Event.ID, "attempts", attempt)
		_ = msg.Term()
	}
}

// post sends ev to endpoint, signed with key, and returns the answer's
// status.
func (c *Control) post(ctx context.Context, endpoint, key string, ev events.Event, attempt int, now time.Time) (int, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	ts := fmt.Sprint(now.Unix())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Verity-Webhooks/1")
	h.Set(HeaderWebhookEvent, ev.ID)
	h.Set(HeaderWebhookType, string(ev.Type))
	h.Set(HeaderWebhookTimestamp, ts)
	h.Set(HeaderWebhookSignature, SignWebhook(key, ts, body))
	h.Set(HeaderWebhookAttempt, fmt.Sprint(attempt))
	resp, err := c.hookClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the endpoint's, already known
		}
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// webhookBackoff is lo·2^(n-1), capped at hi.
func webhookBackoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// logAttempt adds e to the endpoint's log, newest first, keeping at most
// MaxWebhookLog entries younger than WebhookLogRetention.
func (c *Control) logAttempt(ctx context.Context, rec webhookRecord, e logEntry) {
	cutoff := c.cfg.Now().Add(-c.cfg.WebhookLogRetention)
	_, err := events.Update(ctx, c.hookLog, webhookKey(rec.Site, rec.ID), func(old []byte) ([]byte, error) {
		var log []logEntry
		if old != nil {
			_ = json.Unmarshal(old, &log)
		}
		log = append([]logEntry{e}, log...)
		log = slices.DeleteFunc(log, func(x logEntry) bool { return x.Time.Before(cutoff) })
		if len(log) > MaxWebhookLog {
			log = log[:MaxWebhookLog]
		}
		return json.Marshal(log)
	})
	if err != nil {
		c.log.Warn("webhook log", "site", rec.Site, "webhook", rec.ID, "err", err)
	}
}

func (c *Control) readLog(ctx context.Context, site, id string) ([]logEntry, error) {
	e, err := c.hookLog.Get(ctx, webhookKey(site, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("control: read webhook log: %w", err)
	}
	var log []logEntry
	if err := json.Unmarshal(e.Value(), &log); err != nil {
		return nil, fmt.Errorf("control: webhook log %s: %w", id, err)
	}
	cutoff := c.cfg.Now().Add(-c.cfg.WebhookLogRetention)
	return slices.DeleteFunc(log, func(x logEntry) bool { return x.Time.Before(cutoff) }), nil
}

// webhook reads one endpoint of site.
func (c *Control) webhook(ctx context.Context, site, id string) (webhookRecord, bool, error) {
	e, err := c.hooks.Get(ctx, webhookKey(site, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return webhookRecord{}, false, nil
	}
	if err != nil {
		return webhookRecord{}, false, fmt.Errorf("control: read webhook: %w", err)
	}
	var rec webhookRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return webhookRecord{}, false, fmt.Errorf("control: webhook %s: %w", id, err)
	}
	return rec, true, nil
}

// siteWebhooks lists site's endpoints, oldest first.
func (c *Control) siteWebhooks(ctx context.Context, site string) ([]webhookRecord, error) {
	keys, err := c.hooks.ListKeysFiltered(ctx, site+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("control: list webhooks: %w", err)
	}
	var out []webhookRecord
	for k := range keys.Keys() {
		_, id, _ := strings.Cut(k, ".")
		rec, ok, err := c.webhook(ctx, site, id)
		if err != nil {
			_ = keys.Stop()
			return nil, err
		}
		if ok {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b webhookRecord) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// checkWebhookURL checks that raw is an http(s) URL without credentials
// whose host resolves to addresses this gateway may call
// (internal/netguard; private ones only with AllowPrivateAddrs). The
// deliveries check again on every connection.
func (c *Control) checkWebhookURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if len(raw) > 2048 || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return badRequest("url %q: want an absolute http:// or https:// URL without credentials or fragment, at most 2048 bytes", clip(raw))
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil || len(addrs) == 0 {
			return badRequest("url %q: host %q does not resolve", clip(raw), clip(host))
		}
	}
	guard := netguard.Guard{AllowPrivate: c.cfg.AllowPrivateAddrs}
	for _, a := range addrs {
		if !guard.Allowed(a) {
			return badRequest("url %q: %s is not a public address; this gateway calls public addresses only", clip(raw), a)
		}
	}
	return nil
}

// AddWebhook registers endpoint for site's events of the given types
// (none: every one of WebhookTypes) and returns it with its signing
// secret, which is not shown again. The caller authorizes.
func (c *Control) AddWebhook(ctx context.Context, site, endpoint string, types []string) (api.Webhook, error) {
	if err := gateway.ValidateSiteName(site); err != nil {
		return api.Webhook{}, err
	}
	if _, err := c.tokens.Get(ctx, site); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return api.Webhook{}, fmt.Errorf("%w: %q", gateway.ErrUnknownSite, site)
		}
		return api.Webhook{}, fmt.Errorf("control: read token: %w", err)
	}
	if len(types) == 0 {
		for _, t := range WebhookTypes {
			types = append(types, string(t))
		}
	}
	var subscribed []string
	for _, t := range types {
		if !slices.Contains(WebhookTypes, events.Type(t)) {
			return api.Webhook{}, badRequest("event type %q: want some of %s", clip(t), webhookTypeList())
		}
		if !slices.Contains(subscribed, t) {
			subscribed = append(subscribed, t)
		}
	}
	if err := c.checkWebhookURL(ctx, endpoint); err != nil {
		return api.Webhook{}, err
	}
	existing, err := c.siteWebhooks(ctx, site)
	if err != nil {
		return api.Webhook{}, err
	}
	if len(existing) >= MaxWebhooks {
		return api.Webhook{}, &RequestError{Kind: ErrConflict, Detail: fmt.Sprintf("site %q has %d webhooks, the most it may have", site, MaxWebhooks)}
	}
	key := secret.New(webhookSecretPrefix)
	rec := webhookRecord{
		ID: webhookIDPrefix + events.NewID(), Site: site, URL: endpoint, Events: subscribed,
		Secret: c.sealer.Seal(key), Created: c.cfg.Now().UTC(),
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return api.Webhook{}, err
	}
	if _, err := c.hooks.Create(ctx, webhookKey(site, rec.ID), b); err != nil {
		return api.Webhook{}, fmt.Errorf("control: store webhook: %w", err)
	}
	c.log.Info("webhook added", "site", site, "webhook", rec.ID, "events", subscribed)
	out := rec.public()
	out.Secret = key
	return out, nil
}

func webhookTypeList() string {
	var s []string
	for _, t := range WebhookTypes {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

// RemoveWebhook removes site's endpoint id and its log; jobs still
// pending for it are dropped when their turn comes.
func (c *Control) RemoveWebhook(ctx context.Context, site, id string) error {
	if _, err := c.mustWebhook(ctx, site, id); err != nil {
		return err
	}
	if err := c.hooks.Purge(ctx, webhookKey(site, id)); err != nil {
		return fmt.Errorf("control: remove webhook: %w", err)
	}
	_ = c.hookLog.Purge(ctx, webhookKey(site, id))
	c.log.Info("webhook removed", "site", site, "webhook", id)
	return nil
}

// mustWebhook is webhook, with ErrNotFound for an endpoint site does not
// have.
func (c *Control) mustWebhook(ctx context.Context, site, id string) (webhookRecord, error) {
	if !validWebhookID(id) {
		return webhookRecord{}, fmt.Errorf("%w: site %q has no webhook %q", ErrNotFound, site, clip(id))
	}
	rec, ok, err := c.webhook(ctx, site, id)
	if err == nil && !ok {
		err = fmt.Errorf("%w: site %q has no webhook %q", ErrNotFound, site, id)
	}
	return rec, err
}

// WebhookLog returns the endpoint's logged attempts, newest first.
func (c *Control) WebhookLog(ctx context.Context, site, id string) (api.WebhookLog, error) {
	if _, err := c.mustWebhook(ctx, site, id); err != nil {
		return api.WebhookLog{}, err
	}
	log, err := c.readLog(ctx, site, id)
	if err != nil {
		return api.WebhookLog{}, err
	}
	out := api.WebhookLog{Webhook: id, Attempts: []api.WebhookAttempt{}}
	for _, e := range log {
		out.Attempts = append(out.Attempts, e.WebhookAttempt)
	}
	return out, nil
}

// RedeliverWebhook queues event, which the endpoint's log names, for
// another delivery (with attempts of its own). ErrNotFound when the log
// does not name it or its job is older than WebhookLogRetention.
func (c *Control) RedeliverWebhook(ctx context.Context, site, id, event string) error {
	if _, err := c.mustWebhook(ctx, site, id); err != nil {
		return err
	}
	log, err := c.readLog(ctx, site, id)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(log, func(e logEntry) bool { return e.Event == event })
	if event == "" || i < 0 {
		return fmt.Errorf("%w: webhook %s has no logged delivery of event %q", ErrNotFound, id, clip(event))
	}
	stream, err := c.cfg.Bus.JetStream().Stream(ctx, WebhookStream)
	if err != nil {
		return fmt.Errorf("control: webhook stream: %w", err)
	}
	m, err := stream.GetMsg(ctx, log[i].Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: event %q is no longer kept (older than %s)", ErrNotFound, event, c.cfg.WebhookLogRetention)
	}
	if err != nil {
		return fmt.Errorf("control: read webhook job: %w", err)
	}
	var job webhookJob
	if err := json.Unmarshal(m.Data, &job); err != nil || job.Webhook != id || job.Event.ID != event {
		return fmt.Errorf("%w: event %q is no longer kept", ErrNotFound, event)
	}
	job.Redelivery = true
	// One redelivery of an event to an endpoint a minute: asking again
	// within it is the same job (the stream's duplicate window), so a
	// loop of requests cannot fill the stream.
	return c.queueWebhook(ctx, job, event+"/"+id+"/redelivery/"+strconv.FormatInt(c.cfg.Now().Unix()/60, 10))
}
