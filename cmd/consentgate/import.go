package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/ingest"
	"github.com/consentgate/consentgate/internal/store"
)

const importUsage = "consentgate import [--db URL] [--format jsonl|csv] [--institution ID] FILE|-"

// runImport loads provider records from a file (docs/ingestion.md): chunks
// of records per transaction, constant memory, a progress bar on a
// terminal (stderr). It needs no server secret, only the database.
func runImport(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	format := fs.String("format", "", "jsonl or csv (default: from the file name's extension)")
	institution := fs.String("institution", "", "the institution the records belong to (default: the file's first record, an institution record)")
	// Flags may come before or after FILE.
	var files []string
	for rest := args; ; {
		if err := parseFlags(fs, rest, stdout, importUsage); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		return usagef("name one file to import (- for standard input)\nusage: %s", importUsage)
	}
	name := files[0]
	if *format == "" {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".jsonl", ".ndjson":
			*format = ingest.FormatJSONL
		case ".csv":
			*format = ingest.FormatCSV
		default:
			return usagef("cannot tell the format of %q: pass --format jsonl or --format csv", name)
		}
	}
	if *format != ingest.FormatJSONL && *format != ingest.FormatCSV {
		return usagef("--format %q: want jsonl or csv", *format)
	}

	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name) // #nosec G304 -- the operator names the file to import on the command line
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	// One connection: SQLite's page cache is per connection, and the
	// import writes one chunk at a time anyway.
	db, err := store.Open(dbURL(), store.Options{MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, log); err != nil {
		return err
	}
	if db.Dialect == store.SQLite {
		// Hashed ids land all over the indexes: a 64 MiB cache instead of
		// the default 2 MiB keeps a large import from going to disk for
		// every page. Bounded, so memory stays flat.
		if err := db.WithContext(ctx).Exec("PRAGMA cache_size = -65536").Error; err != nil {
			return err
		}
	}
	st, err := ingest.ImportFile(ctx, ingest.NewService(db, nil), *institution, *format, in, os.Stderr)
	fmt.Fprintf(stdout, "%d records written: %d created, %d updated, %d unchanged, %d reversed (%d lines read)\n",
		st.Records, st.Created, st.Updated, st.Unchanged, st.Reversed, st.Lines)
	if err != nil {
		return err
	}
	// Running servers replan for the tables' new sizes now, not whenever
	// autovacuum gets to them.
	return db.Analyze(ctx)
}
