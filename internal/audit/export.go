package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/consentgate/consentgate/internal/apperr"
)

// Export formats.
const (
	FormatNDJSON = "ndjson" // one Event JSON object per line (MarshalJSON)
	FormatCSV    = "csv"    // header row, then one row per event; scopes space-joined
)

// CSVHeader is the header row of CSV exports: the SPEC §6 field names.
var CSVHeader = []string{"seq", "event_id", "occurred_at", "type", "outcome", "reason", "client_id", "customer_id",
	"grant_id", "account_id", "method", "path", "status", "purpose", "scopes", "interaction_id", "prev_hash", "hash"}

// flushEvery is how many events go out between pushes to a streaming
// client, so a long export shows progress without a syscall per row.
const flushEvery = 1000

// Export writes every event matching f, in seq order, to w as format, and
// returns how many it wrote. It streams rows as the database returns them
// (one statement, one snapshot), so memory stays constant however large the
// log is; when w has a Flush() method (http.Flusher) it is called every
// flushEvery events. Values are written exactly as stored, so an export can
// be re-hashed (docs/audit.md). An error after the first write leaves w with
// a truncated export: the caller must make that visible (abort the response).
func (r *Reader) Export(ctx context.Context, f Filter, w io.Writer, format string) (n int64, err error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if format != FormatNDJSON && format != FormatCSV {
		return 0, apperr.New(apperr.InvalidRequest, "format must be ndjson or csv.")
	}
	if err := r.sync(ctx); err != nil {
		return 0, fmt.Errorf("audit.Export: %w", err)
	}
	where, args := f.where()
	rows, err := r.db.WithContext(ctx).Raw(`SELECT `+eventColumns+` FROM audit_events WHERE `+where+` ORDER BY seq`, args...).Rows()
	if err != nil {
		return 0, fmt.Errorf("audit.Export: %w", err)
	}
	defer rows.Close()

	bw := bufio.NewWriterSize(w, 64<<10)
	flusher, _ := w.(interface{ Flush() })
	var cw *csv.Writer
	record := make([]string, len(CSVHeader))
	if format == FormatCSV {
		cw = csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, fmt.Errorf("audit.Export: %w", err)
		}
	}
	push := func() error {
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}

	var ev Event
	var line []byte
	for rows.Next() {
		scopes, err := scanEvent(rows, &ev)
		if err != nil {
			return n, fmt.Errorf("audit.Export: %w", err)
		}
		if cw != nil {
			fillRecord(record, &ev, scopes)
			err = cw.Write(record)
		} else {
			ev.Scopes = strings.Fields(scopes)
			line = append(appendJSON(line[:0], &ev), '\n')
			_, err = bw.Write(line)
		}
		if err != nil {
			return n, fmt.Errorf("audit.Export: %w", err)
		}
		n++
		if n%flushEvery == 0 {
			if err := push(); err != nil {
				return n, fmt.Errorf("audit.Export: %w", err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("audit.Export: %w", err)
	}
	if err := push(); err != nil {
		return n, fmt.Errorf("audit.Export: %w", err)
	}
	return n, nil
}

func fillRecord(rec []string, ev *Event, scopes string) {
	rec[0] = strconv.FormatInt(ev.Seq, 10)
	rec[1] = ev.EventID
	rec[2] = FormatTime(ev.OccurredAt)
	rec[3] = string(ev.Type)
	rec[4] = string(ev.Outcome)
	rec[5] = ev.Reason
	rec[6] = ev.ClientID
	rec[7] = ev.CustomerID
	rec[8] = ev.GrantID
	rec[9] = ev.AccountID
	rec[10] = ev.Method
	rec[11] = ev.Path
	rec[12] = strconv.Itoa(ev.Status)
	rec[13] = ev.Purpose
	rec[14] = scopes
	rec[15] = ev.InteractionID
	rec[16] = ev.PrevHash
	rec[17] = ev.Hash
}
