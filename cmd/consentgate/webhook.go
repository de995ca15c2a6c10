package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/webhook"
)

const webhookUsage = `usage:
  consentgate webhook set --client-id ID --url URL [--db URL]    register or replace the app's webhook URL
  consentgate webhook remove --client-id ID [--db URL]           stop sending to the app
  consentgate webhook deliveries [--client-id ID] [--limit N] [--db URL]   recent deliveries, one JSON object per line`

// runWebhook manages where apps are told about revoked and expiring grants
// (docs/webhooks.md) and shows what was delivered.
func runWebhook(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	switch {
	case len(args) == 0:
		return usagef("which webhook command?\n%s", webhookUsage)
	case isHelp(args[0]):
		return printHelp(stdout, webhookUsage)
	}
	fs := flag.NewFlagSet("webhook "+args[0], flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	clientID := fs.String("client-id", "", "the app's client_id")
	url := fs.String("url", "", "the app's webhook URL (http or https)")
	limit := fs.Int("limit", 50, "how many deliveries to list (1–1000)")
	switch args[0] {
	case "set", "remove", "deliveries":
	default:
		return usagef("unknown webhook command %q\n%s", args[0], webhookUsage)
	}
	if err := parseFlags(fs, args[1:], stdout, "consentgate webhook "+args[0]+" [flags]\n"+webhookUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\n%s", fs.Arg(0), webhookUsage)
	}
	open := func() (*webhook.Store, func(), error) {
		db, err := store.Open(dbURL(), store.Options{MaxOpenConns: 2})
		if err != nil {
			return nil, nil, err
		}
		if err := db.Migrate(ctx, log); err != nil {
			_ = db.Close() // the migration error is the one to report
			return nil, nil, err
		}
		return webhook.NewStore(db, nil), func() { _ = db.Close() }, nil
	}
	switch args[0] {
	case "set":
		if *clientID == "" || *url == "" {
			return usagef("--client-id and --url are required\n%s", webhookUsage)
		}
		if err := webhook.CheckURL(*url); err != nil {
			return err
		}
		st, closeDB, err := open()
		if err != nil {
			return err
		}
		defer closeDB()
		if err := st.SetURL(ctx, *clientID, *url); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "webhook of %s set to %s\n", *clientID, *url)
	case "remove":
		if *clientID == "" {
			return usagef("--client-id is required\n%s", webhookUsage)
		}
		st, closeDB, err := open()
		if err != nil {
			return err
		}
		defer closeDB()
		had, err := st.RemoveURL(ctx, *clientID)
		if err != nil {
			return err
		}
		if !had {
			return fmt.Errorf("%s has no webhook", *clientID)
		}
		fmt.Fprintf(stdout, "webhook of %s removed\n", *clientID)
	case "deliveries":
		if *limit < 1 || *limit > 1000 {
			return usagef("--limit must be from 1 to 1000")
		}
		st, closeDB, err := open()
		if err != nil {
			return err
		}
		defer closeDB()
		list, err := st.Deliveries(ctx, *clientID, *limit)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for _, d := range list {
			if err := enc.Encode(deliveryJSON(d)); err != nil {
				return err
			}
		}
	}
	return nil
}

func deliveryJSON(d webhook.Delivery) map[string]any {
	at := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return t.Format(time.RFC3339)
	}
	return map[string]any{
		"id": d.ID, "client_id": d.ClientID, "grant_id": d.GrantID, "event": d.Event, "state": d.State(),
		"attempts": d.Attempts, "next_attempt_at": at(d.NextAttemptAt), "delivered_at": at(d.DeliveredAt),
		"last_status": d.LastStatus, "last_error": d.LastError, "created_at": d.CreatedAt.Format(time.RFC3339),
	}
}
