// Package webhook tells apps about their grants by signed HTTP callbacks:
// consent.revoked when a grant ends early (whoever ended it),
// consent.expiring some days before it runs out (docs/webhooks.md), and
// transactions.sync_available when an account of a grant has new changes
// (docs/sync.md).
//
// Deliveries go through an outbox in the database: each round scans the
// consents for events owed, records one delivery per grant, event and term
// (a unique key, so any number of nodes may scan), then sends the due ones.
// A node claims an attempt with a conditional UPDATE, so two nodes never
// send the same attempt at once, and a failed or interrupted attempt is
// retried with backoff: delivery is at least once. Every body is signed (a
// JWS whose key is published at jwks_uri, covering the body's SHA-256).
//
// It never changes a consent, and never sends to anything but the http(s)
// URL an operator registered for the client.
package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// The events sent to apps.
const (
	EventRevoked  = "consent.revoked"
	EventExpiring = "consent.expiring"
	// EventClientSuspended and EventClientReinstated tell an app that the
	// bank suspended it or lifted the suspension (SPEC §11).
	EventClientSuspended  = "client.suspended"
	EventClientReinstated = "client.reinstated"
)

// DefaultBackoff is the wait after each failed attempt; after the last one
// the delivery is given up (11 attempts over about two and a half days).
var DefaultBackoff = []time.Duration{
	30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
	2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// Options tune a Dispatcher; zero values take the defaults.
type Options struct {
	Issuer string // the "iss" of every signature
	// ExpiringWithin is how long before its expiry a grant is announced as
	// expiring (default 7 days).
	ExpiringWithin time.Duration
	// RevokedLookback bounds the scan for revocations not yet announced
	// (default 7 days): a revocation older than that when no node was
	// running is not announced.
	RevokedLookback time.Duration
	Interval        time.Duration   // between rounds in Run (default 5 s)
	Timeout         time.Duration   // per HTTP attempt (default 5 s)
	Backoff         []time.Duration // default DefaultBackoff
	Now             func() time.Time
	Logger          *slog.Logger
	// Client sends the requests; default: Timeout, redirects not followed.
	Client *http.Client
}

// Dispatcher runs the outbox: scan, claim, send, record.
type Dispatcher struct {
	store  *Store
	signer *Signer
	opts   Options
	kick   chan struct{}
}

// maxInFlight bounds concurrent attempts of one round, so one slow receiver
// does not hold up every other app's deliveries.
const maxInFlight = 4

// roundLimit bounds the deliveries one round attempts.
const roundLimit = 100

// New returns a Dispatcher on st signing with signer.
func New(st *Store, signer *Signer, opts Options) *Dispatcher {
	if opts.ExpiringWithin <= 0 {
		opts.ExpiringWithin = 7 * 24 * time.Hour
	}
	if opts.RevokedLookback <= 0 {
		opts.RevokedLookback = 7 * 24 * time.Hour
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout: opts.Timeout,
			// A redirect is a failed attempt: the registered URL is the only
			// place deliveries go.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Dispatcher{store: st, signer: signer, opts: opts, kick: make(chan struct{}, 1)}
}

// Run does a round every Interval, or at once after Kick, until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.opts.Logger.WarnContext(ctx, "webhook round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// Kick asks Run for a round now, e.g. right after this node revoked a grant.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default: // a round is already asked for
	}
}

// Round counts what one round did.
type Round struct {
	Enqueued, Delivered, Failed int
}

// RunOnce records the deliveries owed now and attempts the due ones.
func (d *Dispatcher) RunOnce(ctx context.Context) (Round, error) {
	var r Round
	now := d.opts.Now().UTC()
	n, err := d.store.enqueue(ctx, now, d.opts.RevokedLookback, d.opts.ExpiringWithin)
	r.Enqueued = n
	if err != nil {
		return r, err
	}
	due, err := d.store.due(ctx, now, roundLimit)
	if err != nil {
		return r, err
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, maxInFlight)
		errs []error
	)
	for _, dl := range due {
		// Long enough for the attempt and its bookkeeping; a node that dies
		// mid-attempt delays the retry by at most this.
		ok, err := d.store.claim(ctx, dl, now.Add(2*d.opts.Timeout+30*time.Second))
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			break
		}
		if !ok {
			continue // another node has it
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			delivered, err := d.attempt(ctx, dl)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case delivered:
				r.Delivered++
			default:
				r.Failed++
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return r, errs[0]
	}
	return r, nil
}

// attempt sends dl once and records the outcome. The error is for failures
// to record; a receiver's failure is a false result.
func (d *Dispatcher) attempt(ctx context.Context, dl Delivery) (bool, error) {
	log := d.opts.Logger.With("delivery_id", dl.ID, "event", dl.Event, "client_id", dl.ClientID, "grant_id", dl.GrantID)
	if dl.Event == EventSyncAvailable {
		// Nothing is announced for a grant that ended after the notice was
		// scheduled: its app may no longer sync.
		active, err := d.store.grantActive(ctx, dl.GrantID, d.opts.Now().UTC())
		if err != nil {
			return false, err
		}
		if !active {
			log.InfoContext(ctx, "webhook dropped: the grant is no longer active")
			return false, d.store.record(ctx, dl.ID, d.opts.Now().UTC(), false, 0, "the grant is no longer active", nil)
		}
	}
	status, sendErr := d.send(ctx, dl)
	now := d.opts.Now().UTC()
	if sendErr == nil {
		log.InfoContext(ctx, "webhook delivered", "status", status, "attempt", dl.Attempts+1)
		return true, d.store.record(ctx, dl.ID, now, true, status, "", nil)
	}
	var next *time.Time
	if dl.Attempts < len(d.opts.Backoff) {
		t := now.Add(d.opts.Backoff[dl.Attempts])
		next = &t
		log.WarnContext(ctx, "webhook attempt failed; will retry", "attempt", dl.Attempts+1, "retry_at", t, "err", sendErr)
	} else {
		log.ErrorContext(ctx, "webhook given up", "attempts", dl.Attempts+1, "err", sendErr)
	}
	return false, d.store.record(ctx, dl.ID, now, false, status, sendErr.Error(), next)
}

// send POSTs the signed body; any answer but 2xx is a failure.
func (d *Dispatcher) send(ctx context.Context, dl Delivery) (int, error) {
	url, err := d.store.URL(ctx, dl.ClientID)
	if err != nil {
		return 0, err
	}
	if url == "" {
		return 0, fmt.Errorf("the client has no webhook URL registered")
	}
	if err := CheckURL(url); err != nil {
		return 0, err
	}
	sig, err := d.signer.Sign(Claims{Issuer: d.opts.Issuer, Audience: dl.ClientID, IssuedAt: d.opts.Now().Unix(),
		ID: dl.ID, Event: dl.Event, BodySHA256: BodyHash(dl.Body)})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(dl.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "consentgate-webhook/1")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set("X-Consentgate-Event", dl.Event)
	req.Header.Set("X-Consentgate-Delivery", dl.ID)
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("the receiver answered HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}
