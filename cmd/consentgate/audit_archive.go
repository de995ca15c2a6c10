package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/server"
)

const archiveUsage = "consentgate audit archive [--db URL] --before DATE --out FILE [--issuer URL]"

// auditArchive exports the whole monthly partitions that end by --before,
// verified, with the proof that they are a prefix of a signed tree, to
// --out (fsynced, then renamed), and only then detaches them from the log's
// table. PostgreSQL only.
func auditArchive(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("audit archive", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	before := fs.String("before", "", "archive the months that end by this date (YYYY-MM-DD or RFC 3339); the current month never")
	out := fs.String("out", "", "the archive file to write (NDJSON: a header line, then the events)")
	issuer := fs.String("issuer", os.Getenv("CONSENTGATE_ISSUER"), "the server's issuer URL (names the log in the tree head signed for the archive)")
	if err := parseFlags(fs, args, stdout, archiveUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 || *before == "" || *out == "" {
		return usagef("usage: %s", archiveUsage)
	}
	until, err := time.Parse(time.DateOnly, *before)
	if err != nil {
		if until, err = time.Parse(time.RFC3339, *before); err != nil {
			return errors.New("--before must be a date (2026-11-01) or an RFC 3339 time")
		}
	}
	if *issuer == "" {
		*issuer = "http://localhost:8080"
	}
	tools, err := server.OpenTools(ctx, dbURL(), server.ToolsOptions{}, log)
	if err != nil {
		return err
	}
	defer tools.Close()
	db, keys := tools.DB, tools.AuditSigner.KeySet()
	plan, err := audit.ArchivePlan(ctx, db, until, time.Now())
	if err != nil {
		return err
	}
	if len(plan) == 0 {
		_, err := fmt.Fprintf(stdout, "nothing to archive: no whole month ends by %s\n", until.Format(time.DateOnly))
		return err
	}
	// A head of the whole log, then the whole log verified: only a verified
	// log is archived.
	th, err := audit.NewCheckpointer(db, tools.AuditSigner, audit.CheckpointerOptions{Issuer: *issuer}).Checkpoint(ctx)
	if err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, db, keys)
	if err != nil {
		return err
	}
	if !rep.Valid {
		fmt.Fprintln(stdout, rep.Summary())
		return errors.New("the log does not verify: nothing archived")
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	sum := sha256.New()
	h, err := audit.WriteArchive(ctx, db, plan, *th, io.MultiWriter(tmp, sum))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		return fmt.Errorf("archive not written, nothing detached: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(*out)); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	digest := hex.EncodeToString(sum.Sum(nil))
	if err := audit.Detach(ctx, db, plan, h, digest, time.Now()); err != nil {
		return fmt.Errorf("archive written to %s but the partitions were not detached: %w", *out, err)
	}
	_, err = fmt.Fprintf(stdout, "archived seq %d to %d (%d events, %d partitions) to %s (sha256 %s); partitions detached\n",
		h.FirstSeq, h.LastSeq, h.Events, len(plan), *out, digest)
	return err
}
