package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/server"
)

// multi is a repeatable flag; each value may also hold space-separated items.
type multi []string

func (m *multi) String() string { return strings.Join(*m, " ") }
func (m *multi) Set(v string) error {
	*m = append(*m, strings.Fields(v)...)
	return nil
}

func runClient(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) > 0 && args[0] != "create" {
		return runClientLifecycle(ctx, args, stdout, log)
	}
	if len(args) == 0 {
		return errors.New("usage: consentgate client create --name N --redirect-uri U… --scope S… --purpose P…\n" + clientLifecycleUsage)
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
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required")
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
	clientID, secret, err := tools.Provider.CreateClient(ctx, spec)
	if err != nil {
		return err
	}
	if *institution != "" {
		if err := ingest.NewService(tools.DB, nil).RegisterClient(ctx, clientID, *institution); err != nil {
			return err
		}
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
