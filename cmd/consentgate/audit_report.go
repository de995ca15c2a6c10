package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/store"
)

const reportUsage = "consentgate audit report [--db URL] --since T --until T --out FILE.html"

// auditReport writes the auditor's HTML report of [since, until): one
// self-contained file with SVG charts, its figures recomputable from an
// export of the same range.
func auditReport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit report", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	since := fs.String("since", "", "first occurred_at covered, RFC 3339 (inclusive), e.g. 2026-11-01T00:00:00Z")
	until := fs.String("until", "", "end of the range, RFC 3339 (exclusive)")
	out := fs.String("out", "", "the HTML file to write")
	if err := parseFlags(fs, args, stdout, reportUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 || *since == "" || *until == "" || *out == "" {
		return usagef("usage: %s", reportUsage)
	}
	from, err := time.Parse(time.RFC3339Nano, *since)
	if err != nil {
		return fmt.Errorf("--since must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
	}
	to, err := time.Parse(time.RFC3339Nano, *until)
	if err != nil {
		return fmt.Errorf("--until must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
	}
	db, err := store.Open(dbURL(), store.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.NewReader(db).ActivityReport(ctx, from, to)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(buf.Bytes()); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "report of %d events (%d data calls, %d refused) written to %s\n", rep.Events, rep.Calls, rep.Refusals, *out)
	return err
}
