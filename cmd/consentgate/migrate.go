package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/store"
)

func runMigrate(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	if err := parseFlags(fs, args, stdout, "consentgate migrate [--db URL]"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\nusage: consentgate migrate [--db URL]", fs.Arg(0))
	}
	db, err := store.Open(dbURL(), store.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, log); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
