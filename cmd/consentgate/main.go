// Command consentgate is the consent-gated open-banking server and its
// operator tools: serve, migrate, client create, demo seed, import, audit
// verify, export and query, webhook, version. It only parses flags and wires
// packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `consentgate — consent-gated open-banking data API

Usage:
  consentgate serve [--demo] [--addr :8080] [--db URL] [--issuer URL] [--purpose-policy FILE] [--rate-limit N]
                    [--directory-jwks FILE|URL]
                    [--customer-idp ISSUER --customer-idp-client-id ID [--customer-idp-client-secret S]
                     [--customer-idp-claim C] [--password-login=false]]
  consentgate migrate [--db URL]
  consentgate client create --name N --redirect-uri U… --scope S… --purpose P… [--grant-type G]…
                            [--auth-method client_secret_basic|private_key_jwt] [--jwks-file F | --jwks-uri U] [--dpop]
                            [--id ID] [--institution ID (provider:write clients)]
                            [--par-optional] [--default-purpose P] [--aggregator] [--rate-limit N]
  consentgate client list [--limit N] [--after ID] | show ID | suspend ID --reason R | reinstate ID
                     | revoke-grants ID --reason R | rotate-secret ID [--grace 24h]   (all: [--db URL] [--by WHO])
  consentgate demo seed [--db URL] [--customers N] [--transactions-per-account N] [--seed S]
  consentgate import [--db URL] [--format jsonl|csv] [--institution ID] FILE|-
  consentgate audit verify [--db URL] [--json]
  consentgate audit export [--db URL] [--format ndjson|csv] [--out FILE] [--customer-id ID] [--client-id ID]
                           [--grant-id ID] [--type T] [--outcome allowed|denied] [--since T] [--until T]
  consentgate audit query [--db URL] [--format table|json] [--limit N] [--cursor C] [the filters of audit export]
  consentgate audit witness --state FILE --issuer URL --client-id ID [--interval D]
                            (secret in CONSENTGATE_WITNESS_CLIENT_SECRET)
  consentgate audit report [--db URL] --since T --until T --out FILE.html
  consentgate audit archive [--db URL] --before DATE --out FILE (PostgreSQL)
  consentgate webhook set --client-id ID --url URL | remove --client-id ID | deliveries [--client-id ID] [--limit N]
  consentgate keys list [--db URL]
  consentgate keys rotate [--db URL] [--use audit|webhook|id_token]… [--activate-in D (default 30s)]
  consentgate version

Every command takes --help. Exit status: 0 success, 1 failure, 2 a command line that could not be understood.

Environment: CONSENTGATE_ADDR, CONSENTGATE_DATABASE_URL, CONSENTGATE_ISSUER,
CONSENTGATE_SECRET (≥ 32 bytes; required unless --demo), CONSENTGATE_SECRET_PREVIOUS
(the secret before a change: the key ring is re-sealed under the new one on start).
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
	"version": runVersion,
	"keys":    runKeys,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if args[0] == "--version" {
		args[0] = "version"
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "consentgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := cmd(ctx, args[1:], stdout, log); err != nil {
		var ue usageError
		switch {
		case errors.Is(err, errHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "consentgate %s: %s\n", args[0], ue.msg)
			return 2
		}
		if ec, ok := err.(exitCode); ok {
			return int(ec)
		}
		fmt.Fprintf(stderr, "consentgate %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// errHelp is returned by a command that printed its help because it was
// asked to (-h, --help): exit status 0.
var errHelp = errors.New("help printed")

// usageError is a command line that could not be understood (an unknown
// flag or subcommand, a missing argument): exit status 2, with a message
// that says what to type instead.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// printHelp prints a command's usage text on stdout and returns errHelp.
func printHelp(stdout io.Writer, text string) error {
	fmt.Fprintln(stdout, text)
	return errHelp
}

// parseFlags parses a command's flags. -h or --help prints synopsis and the
// flags on stdout (errHelp: exit 0); a bad flag is a usageError (exit 2)
// that repeats the synopsis.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, synopsis string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "usage: %s\n\nflags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return errHelp
	case err != nil:
		return usagef("%v\nusage: %s\n(--help lists the flags)", err, synopsis)
	}
	return nil
}

// exitCode lets a command choose its exit status after printing its own
// report (audit verify exits 1 on a broken chain).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
