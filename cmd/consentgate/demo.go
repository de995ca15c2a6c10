package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/server"
)

const demoUsage = "consentgate demo seed [--db URL] [--customers N] [--transactions-per-account N] [--seed S]"

func runDemo(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		return printHelp(stdout, "usage: "+demoUsage+"\n(consentgate demo seed --help lists the flags)")
	case len(args) == 0:
		return usagef("which demo command?\nusage: %s", demoUsage)
	case args[0] != "seed":
		return usagef("unknown demo command %q\nusage: %s", args[0], demoUsage)
	}
	fs := flag.NewFlagSet("demo seed", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	customers := fs.Int("customers", 10, "synthetic customers to generate")
	perAccount := fs.Int("transactions-per-account", 500, "card transactions per account")
	seed := fs.Uint64("seed", 1, "generator seed: the same seed gives the same data")
	if err := parseFlags(fs, args[1:], stdout, demoUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\nusage: %s", fs.Arg(0), demoUsage)
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
	fmt.Fprintf(stdout, "generated %d customers, %d accounts and %d card transactions (customers gen-1 … gen-%d, password %s)\n",
		stats.Customers, stats.Accounts, stats.Transactions, *customers, demo.GeneratedPassword)
	// Running servers replan for the tables' new sizes now, not whenever
	// autovacuum gets to them.
	return tools.DB.Analyze(ctx)
}
