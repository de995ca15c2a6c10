package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/webhook"
)

// Webhook settings from the environment (docs/webhooks.md).
const (
	// EnvWebhookExpiringDays is how many days before a grant's expiry its
	// app gets consent.expiring (default 7).
	EnvWebhookExpiringDays = "CONSENTGATE_WEBHOOK_EXPIRING_DAYS"
	// EnvWebhookInterval is the time between outbox rounds, a Go duration
	// (default 5s).
	EnvWebhookInterval = "CONSENTGATE_WEBHOOK_INTERVAL"
)

// webhooks is the node's side of the webhook outbox: the dispatcher every
// node runs (the outbox makes that safe) and the key it signs with, which
// is published in the JWKS.
type webhooks struct {
	store  *webhook.Store
	signer *webhook.Signer
	disp   *webhook.Dispatcher
	done   chan struct{}
}

func newWebhooks(db *store.DB, signer *webhook.Signer, issuer string, log *slog.Logger, now func() time.Time) (*webhooks, error) {
	days := 7
	if v := os.Getenv(EnvWebhookExpiringDays); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 365 {
			return nil, fmt.Errorf("%s=%q: want a whole number of days from 1 to 365", EnvWebhookExpiringDays, v)
		}
		days = n
	}
	var interval time.Duration
	if v := os.Getenv(EnvWebhookInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond || d > time.Hour {
			return nil, fmt.Errorf("%s=%q: want a duration from 10ms to 1h, e.g. 5s", EnvWebhookInterval, v)
		}
		interval = d
	}
	w := &webhooks{store: webhook.NewStore(db, now), signer: signer}
	w.disp = webhook.New(w.store, w.signer, webhook.Options{
		Issuer: issuer, ExpiringWithin: time.Duration(days) * 24 * time.Hour, Interval: interval, Now: now, Logger: log,
	})
	return w, nil
}

// start runs the dispatcher until ctx ends.
func (w *webhooks) start(ctx context.Context) {
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		w.disp.Run(ctx)
	}()
}

// wait returns once the dispatcher has stopped.
func (w *webhooks) wait() {
	if w.done != nil {
		<-w.done
	}
}
