package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// TestAuditReport (SPEC §13): every figure of the HTML report equals the
// count recomputed from an NDJSON export of the same range, and the file
// is self-contained (no script, no external resource).
func TestAuditReport(t *testing.T) {
	for _, d := range testdb.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			dbURL := testdb.URL(t, d)
			db, err := store.Open(dbURL, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			if err := db.Migrate(ctx, nil); err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			w := audit.NewWriter(db, audit.WriterOptions{})
			apps := []string{"budget-app", "lender-app", "chat-app"}
			purposes := []string{"personal_finance_management", "credit_decisioning", ""}
			reasons := []string{"purpose_prohibited", "scope_not_granted", "consent_revoked"}
			for i := range 120 {
				ev := audit.Event{OccurredAt: start.Add(time.Duration(i) * 3 * time.Hour), Type: audit.DataAccess, Outcome: audit.Allowed,
					ClientID: apps[i%3], Purpose: purposes[(i/3)%3], Status: 200, Method: "GET", Path: "/v1/accounts"}
				switch {
				case i%5 == 0:
					ev.Outcome, ev.Reason, ev.Status = audit.Denied, reasons[i%3], 403
				case i%7 == 0:
					ev.Type, ev.Status, ev.Method, ev.Path = audit.TokenIssued, 0, "", ""
				}
				if _, err := w.Append(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			since, until := "2026-11-02T00:00:00Z", "2026-11-12T12:00:00Z"
			dir := t.TempDir()
			out, export := filepath.Join(dir, "report.html"), filepath.Join(dir, "range.ndjson")
			if code, o, e := runCLI("audit", "report", "--db", dbURL, "--since", since, "--until", until, "--out", out); code != 0 {
				t.Fatalf("report: exit %d\n%s%s", code, o, e)
			}
			if code, o, e := runCLI("audit", "export", "--db", dbURL, "--since", since, "--until", until, "--out", export); code != 0 {
				t.Fatalf("export: exit %d\n%s%s", code, o, e)
			}

			// The expected figures, from the export alone.
			want := map[string]int64{}
			f, err := os.Open(export)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev struct{ Type, Outcome, Reason, ClientID, Purpose, OccurredAt string }
				var raw map[string]any
				if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
					t.Fatal(err)
				}
				ev.Type, ev.Outcome, ev.Reason = raw["type"].(string), raw["outcome"].(string), raw["reason"].(string)
				ev.ClientID, ev.Purpose, ev.OccurredAt = raw["client_id"].(string), raw["purpose"].(string), raw["occurred_at"].(string)
				want["events"]++
				want["types/"+ev.Type+"/calls"]++
				if ev.Type != "data.access" {
					continue
				}
				refused := int64(0)
				if ev.Outcome == "denied" {
					refused = 1
					want["reasons/"+ev.Reason+"/calls"]++
					want["reasons/"+ev.Reason+"/refusals"]++
				}
				if ev.Purpose == "" {
					ev.Purpose = "(none)"
				}
				want["calls"]++
				want["refusals"] += refused
				for _, k := range []string{"by-app/" + ev.ClientID, "by-purpose/" + ev.Purpose, "by-day/" + ev.OccurredAt[:10]} {
					want[k+"/calls"]++
					want[k+"/refusals"] += refused
				}
			}
			if want["calls"] == 0 || want["refusals"] == 0 {
				t.Fatalf("the range holds no refused calls: %v", want)
			}

			// The figures the report shows.
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			page := string(b)
			got := map[string]int64{}
			for _, k := range []string{"events", "calls", "refusals"} {
				m := regexp.MustCompile(`<strong data-` + k + `>(\d+)</strong>`).FindStringSubmatch(page)
				if m == nil {
					t.Fatalf("no %s figure", k)
				}
				got[k], _ = strconv.ParseInt(m[1], 10, 64)
			}
			tables := regexp.MustCompile(`(?s)<table data-chart="([^"]+)">(.*?)</table>`).FindAllStringSubmatch(page, -1)
			rowRE := regexp.MustCompile(`<tr data-key="([^"]*)"><td>[^<]*</td><td class="n" data-calls>(\d+)</td>(?:<td class="n" data-refusals>(\d+)</td>)?</tr>`)
			for _, tb := range tables {
				for _, r := range rowRE.FindAllStringSubmatch(tb[2], -1) {
					key := tb[1] + "/" + html.UnescapeString(r[1])
					got[key+"/calls"], _ = strconv.ParseInt(r[2], 10, 64)
					if r[3] != "" {
						got[key+"/refusals"], _ = strconv.ParseInt(r[3], 10, 64)
					}
				}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: report says %d, the export %d", k, got[k], v)
				}
			}
			for k, v := range got {
				if v != 0 && want[k] != v && !strings.HasPrefix(k, "by-day/") {
					t.Errorf("%s: report says %d, the export %d", k, v, want[k])
				}
			}
			// Days without calls are shown, with zero.
			for day := 2; day <= 12; day++ {
				if _, ok := got[fmt.Sprintf("by-day/2026-11-%02d/calls", day)]; !ok {
					t.Errorf("day 2026-11-%02d missing from the per-day chart", day)
				}
			}
			if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") ||
				strings.Count(page, "<svg") != 4 || !strings.Contains(page, `class="refused"`) {
				t.Error("the report is not a self-contained page with four SVG charts")
			}
			if code, _, e := runCLI("audit", "report", "--db", dbURL, "--since", until, "--until", since, "--out", out); code != 1 || !strings.Contains(e, "must be before") {
				t.Errorf("inverted range: exit %d %s", code, e)
			}
			if code, _, e := runCLI("audit", "report", "--db", dbURL, "--since", "yesterday", "--until", until, "--out", out); code != 1 || !strings.Contains(e, "RFC 3339") {
				t.Errorf("bad time: exit %d %s", code, e)
			}
		})
	}
}
