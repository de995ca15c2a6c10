package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/server"
)

func runDemo(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 || args[0] != "seed" {
		return errors.New("usage: consentgate demo seed [--customers N] [--transactions-per-account N] [--seed S]")
	}
	fs := flag.NewFlagSet("demo seed", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	customers := fs.Int("customers", 10, "synthetic customers to generate")
	perAccount := fs.Int("transactions-per-account", 500, "card transactions per account")
	seed := fs.Uint64("seed", 1, "generator seed: the same seed gives the same data")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	tools, err := server.OpenTools(ctx, dbURL(), server.ToolsOptions{DemoSecret: true}, log)
	if err != nil {
		return err
	}
	defer tools.Close()
	stats, err := demo.Generate(ctx, tools.DemoDeps(), demo.Options{
		Customers: *customers, TransactionsPerAccount: *perAccount, Seed: *seed, Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%+v\n", stats)
	// Running servers replan for the tables' new sizes now, not whenever
	// autovacuum gets to them.
	return tools.DB.Analyze(ctx)
}
