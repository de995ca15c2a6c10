package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/store"
)

// auditLog is the node's side of the shared audit log: the group-commit
// writer every event goes through, the reader of the auditor API, the
// checkpoint signer (its key is in the JWKS) and the checkpointer that signs
// the chain head in the background.
type auditLog struct {
	writer   *audit.Writer
	recorder audit.Recorder // the writer, unless Options.AuditRecorder replaces it
	reader   *audit.Reader
	signer   *audit.Signer
	cp       *audit.Checkpointer
	log      *slog.Logger
	lost     atomic.Int64 // OAuth and expiry events that could not be recorded
	done     chan struct{}
}

// writerLinger is the audit writer's Linger on d. On SQLite every commit
// costs a WAL fsync and empties the page cache of every reading
// connection, so under many concurrent data calls small batches cost
// dearly: lingering up to 3 ms, only while batches show concurrency, made
// the gated transactions page 30-40 % faster at 50 connections, and left
// the page's open-loop latency at 500 req/s as it was (docs/benchmarks-notes.md).
// On PostgreSQL it measured no gain, so commits go at once.
func writerLinger(d store.Dialect) time.Duration {
	if d == store.SQLite {
		return 3 * time.Millisecond
	}
	return 0
}

func newAuditLog(db *store.DB, signer *audit.Signer, issuer string, log *slog.Logger, now func() time.Time, opts Options) *auditLog {
	a := &auditLog{
		writer: audit.NewWriter(db, audit.WriterOptions{Logger: log, Now: now, Linger: writerLinger(db.Dialect)}),
		reader: audit.NewReader(db),
		signer: signer,
		log:    log,
	}
	a.recorder = a.writer
	if opts.AuditRecorder != nil {
		a.recorder = opts.AuditRecorder
	}
	a.cp = audit.NewCheckpointer(db, a.signer, audit.CheckpointerOptions{
		Issuer: issuer, Interval: opts.AuditCheckpointInterval, Logger: log, Now: now,
	})
	return a
}

// start signs checkpoints until ctx ends.
func (a *auditLog) start(ctx context.Context) {
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		a.cp.Run(ctx)
	}()
}

// close waits for the checkpointer, signs a last checkpoint so that a clean
// shutdown leaves no unsigned tail, and commits the events still queued.
func (a *auditLog) close() {
	if a.done != nil {
		<-a.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.cp.Checkpoint(ctx); err != nil {
		a.log.Error("audit: final checkpoint failed", "err", err)
	}
	_ = a.writer.Close() // always nil
}

// oauthEventTimeout bounds how long an OAuth request waits for its event:
// past it the event counts as lost rather than holding the request.
const oauthEventTimeout = 10 * time.Second

// record is for events that happen outside a data call, whose outcome the
// log cannot gate: the token is issued, the consent has expired, whether or
// not the event commits. It records them detached from the request's
// cancellation (a client hanging up must not lose the record of what it
// obtained) and reports a failure loudly as a lost event.
func (a *auditLog) record(ctx context.Context, ev audit.Event) {
	if ev.InteractionID == "" {
		ev.InteractionID = httpapi.InteractionID(ctx)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oauthEventTimeout)
	defer cancel()
	if _, err := a.recorder.Record(ctx, ev); err != nil {
		a.lost.Add(1)
		a.log.Error("AUDIT EVENT LOST: the event could not be recorded", "type", string(ev.Type),
			"outcome", string(ev.Outcome), "reason", ev.Reason, "client_id", ev.ClientID, "customer_id", ev.CustomerID,
			"grant_id", ev.GrantID, "interaction_id", ev.InteractionID, "err", err)
	}
}

// OAuthEvent implements oauth.EventSink: token, consent and purpose events
// of the authorization server. The provider's flows do not wait on the
// verdict (the sink returns nothing), so these are recorded best effort,
// each within its request, and a failure is logged and counted.
func (a *auditLog) OAuthEvent(ctx context.Context, e oauth.Event) {
	a.record(ctx, audit.Event{
		Type: audit.Type(e.Type), Outcome: audit.Outcome(e.Outcome), Reason: e.Reason,
		ClientID: e.ClientID, CustomerID: e.CustomerID, GrantID: e.GrantID, Purpose: e.Purpose, Scopes: e.Scopes,
	})
}

// consentExpired records a consent the expiry sweep has just marked
// expired. Only the node whose sweep changed the status records it.
func (a *auditLog) consentExpired(ctx context.Context, c *consent.Consent) {
	a.record(ctx, audit.Event{
		Type: audit.ConsentExpired, Outcome: audit.Allowed, Reason: "expires_at reached",
		ClientID: c.ClientID, CustomerID: c.CustomerID, GrantID: c.ID, Purpose: c.Purpose, Scopes: c.Scopes,
	})
}

// collectors expose the writer's work and the lost events to Prometheus.
func (a *auditLog) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "consentgate_audit_events_total", Help: "Audit events this node committed.",
		}, func() float64 { return float64(a.writer.Stats().Events) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "consentgate_audit_batches_total", Help: "Audit group-commit transactions this node committed.",
		}, func() float64 { return float64(a.writer.Stats().Batches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "consentgate_audit_failed_events_total", Help: "Audit events whose batch failed (their data calls got 503).",
		}, func() float64 { return float64(a.writer.Stats().Failed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "consentgate_audit_lost_events_total", Help: "OAuth and expiry events that could not be recorded.",
		}, func() float64 { return float64(a.lost.Load()) }),
	}
}

// OAuthEventWith implements oauth.TxEventSink: the token endpoint's
// token.issued event and the token row commit in one transaction of the
// group-commit writer, so a client_credentials token costs one commit, not
// a token commit and then an event commit; and no token exists without its
// event. A recorder that cannot (Options.AuditRecorder) says so, and the
// provider writes the two apart as before.
func (a *auditLog) OAuthEventWith(ctx context.Context, e oauth.Event, rows oauth.EventRows) (bool, error) {
	aw, ok := a.recorder.(audit.RowsRecorder)
	if !ok {
		return false, nil
	}
	ev := audit.Event{
		Type: audit.Type(e.Type), Outcome: audit.Outcome(e.Outcome), Reason: e.Reason, InteractionID: httpapi.InteractionID(ctx),
		ClientID: e.ClientID, CustomerID: e.CustomerID, GrantID: e.GrantID, Purpose: e.Purpose, Scopes: e.Scopes,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oauthEventTimeout)
	defer cancel()
	with := audit.Rows{Table: rows.Table, Columns: rows.Columns, Values: rows.Values}
	if rows.Require != nil {
		with.Require = &audit.Precondition{Query: rows.Require.Query, Args: rows.Require.Args}
	}
	_, err := aw.AppendWith(ctx, ev, with)
	if errors.Is(err, audit.ErrPrecondition) {
		err = fmt.Errorf("%w: %w", oauth.ErrClientChanged, err)
	}
	return true, err
}
