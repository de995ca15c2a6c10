package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/store"
)

const auditQueryUsage = "consentgate audit query [--db URL] [--format table|json] [--limit N] [--cursor C] [--customer-id ID] [--client-id ID]\n" +
	"                         [--grant-id ID] [--type T] [--outcome allowed|denied] [--since T] [--until T]"

// auditFilterFlags adds the auditor API's filters to fs as flags (the query
// parameters, spelled customer-id etc.) and returns the values they collect,
// for audit.ParseFilter.
func auditFilterFlags(fs *flag.FlagSet) url.Values {
	filters := url.Values{}
	for _, p := range []struct{ param, help string }{
		{"customer_id", "only this customer's events"},
		{"client_id", "only this client's events"},
		{"grant_id", "only this grant's events"},
		{"type", "only events of this type, e.g. data.access"},
		{"outcome", "only allowed or only denied events"},
		{"since", "only events at or after this RFC 3339 time"},
		{"until", "only events before this RFC 3339 time"},
	} {
		fs.Func(strings.ReplaceAll(p.param, "_", "-"), p.help, func(v string) error {
			filters.Add(p.param, v)
			return nil
		})
	}
	return filters
}

// auditQuery prints one page of the filtered log, oldest first, like GET
// /v1/audit/events: a table for people, or the API's JSON page. The table
// ends with the command for the next page when there is one.
func auditQuery(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit query", flag.ContinueOnError)
	dbURL := config.RegisterDBFlag(fs)
	format := fs.String("format", "table", "table or json (the body of GET /v1/audit/events)")
	limit := fs.Int("limit", audit.DefaultLimit, fmt.Sprintf("events per page (1–%d)", audit.MaxLimit))
	cursor := fs.String("cursor", "", "the next_cursor of the previous page")
	filters := auditFilterFlags(fs)
	if err := parseFlags(fs, args, stdout, auditQueryUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\nusage: %s", fs.Arg(0), auditQueryUsage)
	}
	if *format != "table" && *format != "json" {
		return usagef("--format must be table or json")
	}
	if *limit < 1 || *limit > audit.MaxLimit {
		return usagef("--limit must be from 1 to %d", audit.MaxLimit)
	}
	f, err := audit.ParseFilter(filters)
	if err != nil {
		return err
	}
	// Reading needs neither the secret nor a migration: open the database as is.
	db, err := store.Open(dbURL(), store.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	events, next, err := audit.NewReader(db).Query(ctx, f, *limit, *cursor)
	if err != nil {
		return err
	}
	if *format == "json" {
		page := struct {
			Data       []audit.Event `json:"data"`
			NextCursor *string       `json:"next_cursor"`
		}{Data: events}
		if page.Data == nil {
			page.Data = []audit.Event{}
		}
		if next != "" {
			page.NextCursor = &next
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(page)
	}
	return writeEventTable(stdout, events, next, args)
}

// writeEventTable prints events as aligned columns, then how many there
// were and, when more match, the command line that prints the next page.
func writeEventTable(w io.Writer, events []audit.Event, next string, args []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tOCCURRED_AT\tTYPE\tOUTCOME\tREASON\tCLIENT\tCUSTOMER\tGRANT\tSTATUS\tMETHOD PATH")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, ev := range events {
		status, call := "-", "-"
		if ev.Status != 0 {
			status = strconv.Itoa(ev.Status)
		}
		if ev.Path != "" {
			call = ev.Method + " " + ev.Path
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.OccurredAt.UTC().Format(time.RFC3339),
			ev.Type, ev.Outcome, dash(ev.Reason), dash(ev.ClientID), dash(ev.CustomerID), dash(ev.GrantID), status, call)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d events", len(events))
	if next == "" {
		_, err := fmt.Fprintln(w, ".")
		return err
	}
	rest := make([]string, 0, len(args)+2)
	for i := 0; i < len(args); i++ {
		if a := args[i]; a == "--cursor" || a == "-cursor" {
			i++ // drop the old cursor and its value
			continue
		} else if strings.HasPrefix(a, "--cursor=") || strings.HasPrefix(a, "-cursor=") {
			continue
		}
		rest = append(rest, shellQuote(args[i]))
	}
	_, err := fmt.Fprintf(w, "; more match: consentgate audit query %s --cursor %s\n", strings.Join(rest, " "), next)
	return err
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/=@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
