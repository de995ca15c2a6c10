package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/keys"
	"github.com/consentgate/consentgate/internal/server"
)

const keysUsage = "consentgate keys list [--db URL] | consentgate keys rotate [--db URL] [--use audit|webhook|id_token]… [--activate-in D]"

func runKeys(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return usagef("usage: %s", keysUsage)
	}
	switch args[0] {
	case "list":
		return keysList(ctx, args[1:], stdout, log)
	case "rotate":
		return keysRotate(ctx, args[1:], stdout, log)
	}
	if isHelp(args[0]) {
		return printHelp(stdout, "usage: "+keysUsage+"\n(consentgate keys COMMAND --help lists its flags)")
	}
	return usagef("unknown keys command %q\nusage: %s", args[0], keysUsage)
}

// keysList prints the key ring as JSON lines, never a private key.
func keysList(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("keys list", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	if err := parseFlags(fs, args, stdout, keysUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\nusage: %s", fs.Arg(0), keysUsage)
	}
	tools, err := server.OpenTools(ctx, dbURL(), server.ToolsOptions{}, log)
	if err != nil {
		return err
	}
	defer tools.Close()
	enc := json.NewEncoder(stdout)
	for _, k := range tools.Ring.List() {
		if err := enc.Encode(k); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

type useList []string

func (u *useList) String() string { return fmt.Sprint(*u) }
func (u *useList) Set(v string) error {
	if !slices.Contains(keys.SigningUses, v) {
		return fmt.Errorf("%q is not a signing key use (one of %v)", v, keys.SigningUses)
	}
	*u = append(*u, v)
	return nil
}

// keysRotate adds a new signing key per use; every node signs with it from
// --activate-in on and publishes it (and keeps publishing the old one) at
// /jwks meanwhile.
func keysRotate(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	var uses useList
	fs.Var(&uses, "use", "key to rotate: audit, webhook or id_token (repeatable; default all three)")
	delay := fs.Duration("activate-in", keys.DefaultActivationDelay,
		"time before nodes sign with the new keys: at least the nodes' key re-read interval (10s), so every node publishes them first")
	if err := parseFlags(fs, args, stdout, keysUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\nusage: %s", fs.Arg(0), keysUsage)
	}
	if *delay < 0 {
		return usagef("--activate-in must not be negative")
	}
	if len(uses) == 0 {
		uses = keys.SigningUses
	}
	tools, err := server.OpenTools(ctx, dbURL(), server.ToolsOptions{}, log)
	if err != nil {
		return err
	}
	defer tools.Close()
	at := time.Now().UTC().Add(*delay)
	kids, err := tools.Ring.Rotate(ctx, uses, at)
	if err != nil {
		return err
	}
	out := map[string]any{"activate_at": at.Format(time.RFC3339), "keys": map[string]string{}}
	for i, u := range uses {
		out["keys"].(map[string]string)[u] = kids[i]
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
