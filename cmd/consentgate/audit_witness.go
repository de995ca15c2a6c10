package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/consentgate/consentgate/internal/witness"
)

const witnessUsage = "consentgate audit witness --state FILE --issuer URL --client-id ID [--interval D]"

// auditWitness checks the log's signed tree heads against the ones it saw
// before (kept in --state). Exit 0: consistent; 3: the log is not consistent
// with what the witness saw (printed loudly); 1: the check could not run.
// With --interval it checks on a timer until interrupted or inconsistent.
func auditWitness(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("audit witness", flag.ContinueOnError)
	statePath := fs.String("state", "", "file keeping the heads this witness has verified (created on first use)")
	issuer := fs.String("issuer", "", "the server's issuer URL, e.g. https://bank.example")
	clientID := fs.String("client-id", "", "an auditor client (client_credentials, scope audit:read); its secret comes from CONSENTGATE_WITNESS_CLIENT_SECRET")
	interval := fs.Duration("interval", 0, "check again after this long, until interrupted (0: check once)")
	if err := parseFlags(fs, args, stdout, witnessUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 || *statePath == "" || *issuer == "" || *clientID == "" {
		return usagef("usage: %s", witnessUsage)
	}
	secret := os.Getenv("CONSENTGATE_WITNESS_CLIENT_SECRET")
	if secret == "" {
		return errors.New("set CONSENTGATE_WITNESS_CLIENT_SECRET to the secret of the --client-id auditor client")
	}
	w := &witness.Witness{Issuer: *issuer, ClientID: *clientID, ClientSecret: secret}
	for {
		err := witnessOnce(ctx, w, *statePath, stdout)
		if errors.Is(err, witness.ErrInconsistent) {
			log.Error("audit witness: the log is not consistent with what this witness saw", "issuer", *issuer, "err", err.Error())
			fmt.Fprintf(stdout, "%v\n", err)
			return exitCode(3)
		}
		if *interval <= 0 {
			return err
		}
		if err != nil {
			log.Warn("audit witness: check failed, retrying at the next interval", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

func witnessOnce(ctx context.Context, w *witness.Witness, statePath string, stdout io.Writer) error {
	st, err := witness.LoadState(statePath)
	if err != nil {
		return err
	}
	res, err := w.Check(ctx, st)
	if err != nil {
		return err
	}
	if res.Latest == nil {
		_, err = fmt.Fprintln(stdout, "audit witness: the log has no signed tree head yet")
		return err
	}
	if err := st.Save(statePath); err != nil {
		return err
	}
	from := "first use: trusting"
	if res.Previous != nil {
		from = fmt.Sprintf("consistent with tree %d; now at", res.Previous.TreeSize)
	}
	_, err = fmt.Fprintf(stdout, "audit witness: %d signed heads verified, %s tree %d root %s\n",
		res.Heads, from, res.Latest.TreeSize, res.Latest.RootHash)
	return err
}
