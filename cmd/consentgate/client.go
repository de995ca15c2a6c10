package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/ratelimit"
	"github.com/consentgate/consentgate/internal/server"
)

// multi is a repeatable flag; each value may also hold space-separated items.
type multi []string

func (m *multi) String() string { return strings.Join(*m, " ") }
func (m *multi) Set(v string) error {
	*m = append(*m, strings.Fields(v)...)
	return nil
}

const clientUsage = "consentgate client create --name N --redirect-uri U… --scope S… --purpose P… [--grant-type G]… " +
	"[--auth-method client_secret_basic|private_key_jwt] [--jwks-file F | --jwks-uri U] [--dpop] [--id ID] [--institution ID] [--rate-limit N] [--db URL]"

func runClient(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		return printHelp(stdout, "usage: "+clientUsage+"\n"+clientLifecycleUsage+"\n(consentgate client COMMAND --help lists the flags)")
	case len(args) == 0:
		return usagef("which client command?\nusage: %s\n%s", clientUsage, clientLifecycleUsage)
	case args[0] != "create":
		return runClientLifecycle(ctx, args, stdout, log)
	}
	fs := flag.NewFlagSet("client create", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	var redirects, scopes, purposes, grants multi
	name := fs.String("name", "", "the app's name, shown to customers (required)")
	id := fs.String("id", "", "client_id to use (default: generated)")
	fs.Var(&redirects, "redirect-uri", "redirect URI (repeatable)")
	fs.Var(&scopes, "scope", "scope the client may ask for (repeatable)")
	fs.Var(&purposes, "purpose", "purpose the client is registered for (repeatable)")
	fs.Var(&grants, "grant-type", "authorization_code or client_credentials (repeatable; default authorization_code)")
	authMethod := fs.String("auth-method", "client_secret_basic", "client_secret_basic or private_key_jwt")
	jwksFile := fs.String("jwks-file", "", "JWKS file with the client's public keys (private_key_jwt)")
	jwksURI := fs.String("jwks-uri", "", "https URL of the client's JWKS (private_key_jwt), instead of --jwks-file")
	institution := fs.String("institution", "", "institution a provider:write client feeds (data providers)")
	dpop := fs.Bool("dpop", false, "require DPoP sender-constrained tokens")
	parOptional := fs.Bool("par-optional", false,
		"exempt the client from PAR (require_pushed_authorization_requests: false): it may send front-channel authorization requests")
	defaultPurpose := fs.String("default-purpose", "", "purpose of an authorization request that names none (one of --purpose)")
	aggregator := fs.Bool("aggregator", false, "the client is an aggregator that passes the data on to other apps (said on the consent screen)")
	rateLimit := fs.Int("rate-limit", -1, "this client's own limit in requests per second (0: none), instead of the server's --rate-limit")
	if err := parseFlags(fs, args[1:], stdout, clientUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (repeat a flag for several values: --scope a --scope b, or quote them: --scope \"a b\")", fs.Arg(0))
	}
	if *name == "" {
		return usagef("--name is required\nusage: %s", clientUsage)
	}
	if *rateLimit < -1 {
		return fmt.Errorf("--rate-limit must be 0 (no limit) or a number of requests per second, not %d", *rateLimit)
	}
	spec := oauth.ClientSpec{ID: *id, Name: *name, RedirectURIs: redirects, Scopes: scopes, Purposes: purposes,
		GrantTypes: grants, AuthMethod: *authMethod, DPoP: *dpop, JWKSURI: *jwksURI,
		PAROptional: *parOptional, DefaultPurpose: *defaultPurpose, Aggregator: *aggregator}
	if len(spec.GrantTypes) == 0 {
		spec.GrantTypes = []string{"authorization_code"}
	}
	if *jwksFile != "" {
		b, err := os.ReadFile(*jwksFile)
		if err != nil {
			return err
		}
		spec.JWKS = b
	}
	tools, err := server.OpenTools(ctx, dbURL(), server.ToolsOptions{}, log)
	if err != nil {
		return err
	}
	defer tools.Close()
	// The client and its institution are registered together or not at
	// all: a typo in --institution must not leave the client id taken.
	// So are a client and its own rate limit.
	then := func(tx *gorm.DB, clientID string) error {
		if *institution != "" {
			if err := ingest.NewService(tools.DB, nil).RegisterClientTx(tx, clientID, *institution); err != nil {
				return fmt.Errorf("--institution: %w (nothing was registered)", err)
			}
		}
		if *rateLimit >= 0 {
			if err := ratelimit.SetClientLimitTx(tx, clientID, *rateLimit); err != nil {
				return fmt.Errorf("--rate-limit: %w (nothing was registered)", err)
			}
		}
		return nil
	}
	clientID, secret, err := tools.Provider.CreateClientWith(ctx, spec, then)
	if err != nil {
		return err
	}
	out := map[string]string{"client_id": clientID}
	if secret != "" {
		out["client_secret"] = secret
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
