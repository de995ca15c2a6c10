package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/server"
	"github.com/consentgate/consentgate/internal/store"
)

const auditUsage = "usage: consentgate audit verify [--db URL] [--json] | consentgate audit export [--db URL] [--format ndjson|csv] [--out FILE] [filters]" +
	" | consentgate audit query [--db URL] [--format table|json] [--limit N] [--cursor C] [filters]" +
	" | " + witnessUsage + " | " + reportUsage + " | " + archiveUsage

func runAudit(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return usagef("which audit command?\n%s", auditUsage)
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], stdout, log)
	case "export":
		return auditExport(ctx, args[1:], stdout)
	case "witness":
		return auditWitness(ctx, args[1:], stdout, log)
	case "report":
		return auditReport(ctx, args[1:], stdout)
	case "archive":
		return auditArchive(ctx, args[1:], stdout, log)
	case "query":
		return auditQuery(ctx, args[1:], stdout)
	}
	if isHelp(args[0]) {
		return printHelp(stdout, auditUsage+"\n(consentgate audit COMMAND --help lists its flags)")
	}
	return usagef("unknown audit command %q\n%s", args[0], auditUsage)
}

// auditVerify prints the verdict on the whole chain and its checkpoints and
// exits 1 when the log is not intact (or could not be checked: the message
// says which). The checkpoint key comes from the server secret, like the
// server's own.
func auditVerify(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON (the body of GET /v1/audit/verify)")
	if err := parseFlags(fs, args, stdout, "consentgate audit verify [--db URL] [--json]"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	tools, err := server.OpenTools(ctx, dbURL(), server.ToolsOptions{}, log)
	if err != nil {
		return err
	}
	defer tools.Close()
	// Events committed but not yet integrated (a node stopped meanwhile)
	// become part of the log first, so the verdict covers them.
	if _, err := audit.Integrate(ctx, tools.DB); err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, tools.DB, tools.AuditSigner.KeySet())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	} else if _, err := fmt.Fprintln(stdout, rep.Summary()); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if !rep.Valid {
		return exitCode(1)
	}
	return nil
}

// auditExport streams the filtered log as NDJSON or CSV to stdout or a
// file. A file appears under its name only once the export is complete and
// synced, so a failed export never leaves a short file that looks whole.
func auditExport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	format := fs.String("format", audit.FormatNDJSON, "ndjson or csv")
	out := fs.String("out", "", "file to write (default: standard output)")
	filters := auditFilterFlags(fs)
	if err := parseFlags(fs, args, stdout, "consentgate audit export [--db URL] [--format ndjson|csv] [--out FILE] [filters]"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	f, err := audit.ParseFilter(filters)
	if err != nil {
		return err
	}
	if *format != audit.FormatNDJSON && *format != audit.FormatCSV {
		return fmt.Errorf("--format must be %s or %s", audit.FormatNDJSON, audit.FormatCSV)
	}
	// Reading needs neither the secret nor a migration: open the database as is.
	db, err := store.Open(dbURL(), store.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	reader := audit.NewReader(db)
	if *out == "" {
		_, err := reader.Export(ctx, f, stdout, *format)
		return err
	}
	n, err := exportToFile(ctx, reader, f, *format, *out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "exported %d events to %s\n", n, *out)
	return err
}

func exportToFile(ctx context.Context, reader *audit.Reader, f audit.Filter, format, path string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	n, err := reader.Export(ctx, f, tmp, format)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return n, err
}
