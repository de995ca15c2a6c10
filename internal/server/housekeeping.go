package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// EnvWebhookRetention is how long settled webhook deliveries (delivered or
// given up) are kept before the sweep deletes them, a Go duration (default
// 720h, 30 days; docs/operations.md).
const EnvWebhookRetention = "CONSENTGATE_WEBHOOK_RETENTION"

// DefaultWebhookRetention is the retention of settled webhook deliveries.
const DefaultWebhookRetention = 30 * 24 * time.Hour

func webhookRetention() (time.Duration, error) {
	v := os.Getenv(EnvWebhookRetention)
	if v == "" {
		return DefaultWebhookRetention, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Hour || d > 10*365*24*time.Hour {
		return 0, fmt.Errorf("%s=%q: want a duration from 1h to 87600h, e.g. 720h", EnvWebhookRetention, v)
	}
	return d, nil
}

// Housekeep deletes what has expired: codes, access tokens, request_uris,
// authorize and OpenID Connect sessions, client assertion and DPoP proof
// ids, login sessions, and the webhook deliveries settled longer ago than
// the retention. The sweep runs it on every node (each DELETE is
// idempotent); requests never depend on it, since every read checks
// expiry itself. On PostgreSQL it also creates the monthly partitions of
// transactions ahead of the data (once a month per node; rows with no
// month of their own go to the default partition meanwhile).
func (s *Server) Housekeep(ctx context.Context) error {
	n, err := s.provider.Prune(ctx)
	var total int64
	for _, v := range n {
		total += v
	}
	errs := []error{err}
	if err := s.identity.Prune(ctx); err != nil {
		errs = append(errs, fmt.Errorf("login sessions: %w", err))
	}
	pruned, err := s.webhooks.store.Prune(ctx, s.now().Add(-s.webhookRetention))
	errs = append(errs, err)
	if created, err := s.txPartitions.EnsurePartitions(ctx, s.now()); err != nil {
		errs = append(errs, fmt.Errorf("transaction partitions: %w", err))
	} else if created > 0 {
		s.log.Info("housekeeping", "transaction_partitions_created", created)
	}
	if total+pruned > 0 {
		s.log.Info("housekeeping", "expired_rows", total, "webhook_deliveries", pruned)
	}
	return errors.Join(errs...)
}
