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
	"github.com/consentgate/consentgate/internal/server"
)

const clientLifecycleUsage = `       consentgate client list [--limit N] [--after CLIENT_ID]
       consentgate client show CLIENT_ID
       consentgate client suspend CLIENT_ID --reason WHY
       consentgate client reinstate CLIENT_ID [--reason WHY]
       consentgate client revoke-grants CLIENT_ID --reason WHY
       consentgate client rotate-secret CLIENT_ID [--grace 24h] [--reason WHY]`

// runClientLifecycle runs the operator's client commands on the database,
// with the operator API's code: the same audit events and webhooks.
func runClientLifecycle(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cmd := args[0]
	switch cmd {
	case "list", "show", "suspend", "reinstate", "revoke-grants", "rotate-secret":
	default:
		return usagef("unknown client command %q\nusage: consentgate client create …\n%s", cmd, clientLifecycleUsage)
	}
	fs := flag.NewFlagSet("client "+cmd, flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	reason := fs.String("reason", "", "why (recorded in the audit log; required to suspend and to revoke grants)")
	by := fs.String("by", "cli", "who acts, recorded in the audit log as the operator")
	limit := fs.Int("limit", 100, "list: clients per page (1-1000)")
	after := fs.String("after", "", "list: start after this client id")
	grace := fs.Duration("grace", 0, "rotate-secret: how long the old secret keeps working (default "+server.EnvSecretGrace+", 24h; negative: ends now)")
	var id string
	rest := args[1:]
	if cmd != "list" {
		if len(rest) > 0 && isHelp(rest[0]) {
			return printHelp(stdout, "usage:\n"+clientLifecycleUsage)
		}
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			return usagef("client %s needs a CLIENT_ID\nusage:\n%s", cmd, clientLifecycleUsage)
		}
		id, rest = rest[0], rest[1:]
	}
	if err := parseFlags(fs, rest, stdout, "\n"+clientLifecycleUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("client %s: unexpected argument %q", cmd, fs.Arg(0))
	}
	needReason := cmd == "suspend" || cmd == "revoke-grants"
	if needReason && *reason == "" {
		return usagef("client %s: --reason is required (it goes to the audit log)", cmd)
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("--limit must be from 1 to 1000")
	}
	t, err := server.OpenClientAdmin(ctx, dbURL(), log)
	if err != nil {
		return err
	}
	defer t.Close()
	var out any
	switch cmd {
	case "list":
		clients, more, err := t.Admin.List(ctx, *after, *limit)
		if err != nil {
			return err
		}
		page := map[string]any{"data": clients}
		if more && len(clients) > 0 {
			page["next_after"] = clients[len(clients)-1].ClientID
		}
		out = page
	case "show":
		out, err = t.Admin.Get(ctx, id)
	case "suspend":
		out, err = t.Admin.Suspend(ctx, id, *reason, *by)
	case "reinstate":
		out, err = t.Admin.Reinstate(ctx, id, *reason, *by)
	case "revoke-grants":
		var n int
		n, err = t.Admin.RevokeGrants(ctx, id, *reason, *by)
		out = map[string]any{"client_id": id, "revoked_grants": n}
	case "rotate-secret":
		var (
			secret string
			until  time.Time
		)
		secret, until, err = t.Admin.RotateSecret(ctx, id, *grace, *reason, *by)
		out = map[string]any{"client_id": id, "client_secret": secret, "previous_secret_expires_at": until.UTC().Format(time.RFC3339)}
	}
	if err != nil {
		return fmt.Errorf("client %s %s: %w", cmd, id, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
