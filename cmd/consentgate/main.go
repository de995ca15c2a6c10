// Command consentgate is the consent-gated open-banking server and its
// operator tools: serve, migrate, client create, demo seed, audit verify and
// export. It only parses flags and wires packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `consentgate — consent-gated open-banking data API

Usage:
  consentgate serve [--demo] [--addr :8080] [--db URL] [--issuer URL] [--purpose-policy FILE] [--directory-jwks FILE|URL]
  consentgate migrate [--db URL]
  consentgate client create --name N --redirect-uri U… --scope S… --purpose P… [--grant-type G]…
                            [--auth-method client_secret_basic|private_key_jwt] [--jwks-file F | --jwks-uri U] [--dpop]
                            [--id ID] [--institution ID (provider:write clients)]
                            [--par-optional] [--default-purpose P] [--aggregator]
  consentgate client list [--limit N] [--after ID] | show ID | suspend ID --reason R | reinstate ID
                     | revoke-grants ID --reason R | rotate-secret ID [--grace 24h]   (all: [--db URL] [--by WHO])
  consentgate demo seed [--db URL] [--customers N] [--transactions-per-account N] [--seed S]
  consentgate import [--db URL] --format jsonl|csv --institution ID FILE|-
  consentgate audit verify [--db URL] [--json]
  consentgate audit export [--db URL] [--format ndjson|csv] [--out FILE] [--customer-id ID] [--client-id ID]
                           [--grant-id ID] [--type T] [--outcome allowed|denied] [--since T] [--until T]
  consentgate webhook set --client-id ID --url URL | remove --client-id ID | deliveries [--client-id ID] [--limit N]

Environment: CONSENTGATE_ADDR, CONSENTGATE_DATABASE_URL, CONSENTGATE_ISSUER,
CONSENTGATE_SECRET (≥ 32 bytes; required unless --demo).
`

type command func(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error

var commands = map[string]command{
	"serve":   runServe,
	"migrate": runMigrate,
	"client":  runClient,
	"demo":    runDemo,
	"audit":   runAudit,
	"webhook": runWebhook,
	"import":  runImport,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "consentgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := cmd(ctx, args[1:], stdout, log); err != nil {
		if ec, ok := err.(exitCode); ok {
			return int(ec)
		}
		fmt.Fprintf(stderr, "consentgate %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// exitCode lets a command choose its exit status after printing its own
// report (audit verify exits 1 on a broken chain).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
