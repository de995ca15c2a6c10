package accounts

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/consentgate/consentgate/internal/store"
)

// The page of transactions is the data API's hottest read: 101 rows of 11
// columns on every call. Through database/sql each value is boxed into a
// driver.Value, converted again by Scan and copied into a fresh string: on
// PostgreSQL 23 allocations a row (2,340 a page), more than the rest of the
// request. So on PostgreSQL the page is read through pgx itself, on a
// connection of the same pool (sql.Conn.Raw), from each row's raw bytes;
// the columns that repeat along a page (account, status, currency,
// merchant, category, card) reuse one string: 312 allocations a page
// (BenchmarkTransactionsPage). SQLite keeps database/sql: its driver
// makes the values itself, and prepares the statement on every call
// whatever the caller does. The store suite holds both to the same rows.

// txPage runs the page query and returns its rows (limit+1 at most).
func (s *SQLStore) txPage(ctx context.Context, query string, args []any, q TxQuery) ([]Transaction, error) {
	if s.db.Dialect == store.Postgres {
		out, err := s.pgxTxPage(ctx, query, args, q)
		if !errors.Is(err, errNotPgx) {
			return out, err
		}
	}
	rows, err := s.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Transaction, 0, min(q.Limit+1, 512))
	bookedAts := make([]time.Time, 0, cap(out))
	// Scanned into one struct outside the loop: Scan's pointers would
	// otherwise move a fresh Transaction to the heap for every row.
	var (
		t      Transaction
		at     int64
		booked sql.NullInt64
	)
	for rows.Next() {
		t = Transaction{}
		if err := rows.Scan(&t.ID, &t.AccountID, &t.Status, &at, &booked, &t.Amount, &t.Currency, &t.Description,
			&t.MerchantName, &t.MCC, &t.CardLast4); err != nil {
			return nil, err
		}
		t.TransactedAt = store.FromMicros(at)
		if booked.Valid {
			t.BookedAt = bookedAt(&bookedAts, store.FromMicros(booked.Int64))
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// errNotPgx: the pool's connections are not pgx's (a wrapped driver); the
// page is read through database/sql instead.
var errNotPgx = errors.New("accounts: not a pgx connection")

// pgxTxPage reads the page through pgx on a connection of s.sql's pool.
func (s *SQLStore) pgxTxPage(ctx context.Context, query string, args []any, q TxQuery) ([]Transaction, error) {
	conn, err := s.sql.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []Transaction
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		rows, err := c.Conn().Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = scanPgxTxPage(rows, q)
		return err
	})
	return out, err
}

// txScanColumns is the number of columns txSelect reads, in its order: id,
// account_id, status, transacted_at, booked_at, amount_minor, currency,
// description, merchant_name, merchant_category_code, card_last4.
const txScanColumns = 11

func scanPgxTxPage(rows pgx.Rows, q TxQuery) ([]Transaction, error) {
	fds := rows.FieldDescriptions()
	if len(fds) != txScanColumns {
		return nil, fmt.Errorf("page query returned %d columns, want %d", len(fds), txScanColumns)
	}
	out := make([]Transaction, 0, min(q.Limit+1, 512))
	bookedAts := make([]time.Time, 0, cap(out))
	// Strings that repeat along a page are made once: the last value of
	// each repeating column, and a small table of merchant names.
	var last [txScanColumns]string
	merchants := make(map[string]string, 16)
	str := func(i int, b []byte) string {
		if len(b) == 0 {
			return ""
		}
		if string(b) == last[i] { // compared without a copy
			return last[i]
		}
		last[i] = string(b)
		return last[i]
	}
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != txScanColumns {
			return nil, fmt.Errorf("page row has %d values, want %d", len(raw), txScanColumns)
		}
		var t Transaction
		for i, b := range raw {
			if b == nil && i != 4 {
				return nil, fmt.Errorf("column %s is NULL", fds[i].Name)
			}
		}
		t.ID = string(raw[0])
		if string(raw[1]) == q.AccountID {
			t.AccountID = q.AccountID
		} else {
			t.AccountID = str(1, raw[1])
		}
		switch string(raw[2]) {
		case StatusBooked:
			t.Status = StatusBooked
		case StatusPending:
			t.Status = StatusPending
		default:
			t.Status = string(raw[2])
		}
		at, err := pgInt(fds[3], raw[3])
		if err != nil {
			return nil, err
		}
		t.TransactedAt = store.FromMicros(at)
		if raw[4] != nil {
			booked, err := pgInt(fds[4], raw[4])
			if err != nil {
				return nil, err
			}
			t.BookedAt = bookedAt(&bookedAts, store.FromMicros(booked))
		}
		if t.Amount, err = pgInt(fds[5], raw[5]); err != nil {
			return nil, err
		}
		t.Currency = str(6, raw[6])
		t.Description = string(raw[7])
		if m, ok := merchants[string(raw[8])]; ok {
			t.MerchantName = m
		} else {
			t.MerchantName = string(raw[8])
			if len(merchants) < 64 {
				merchants[t.MerchantName] = t.MerchantName
			}
		}
		t.MCC = str(9, raw[9])
		t.CardLast4 = str(10, raw[10])
		out = append(out, t)
	}
	return out, rows.Err()
}

// bookedAt points at b kept in *all, the page's booking times: one
// allocation a page rather than one a booked row. *all never grows past
// its capacity (one slot a row), so earlier pointers stay valid.
func bookedAt(all *[]time.Time, b time.Time) *time.Time {
	if len(*all) == cap(*all) {
		p := new(time.Time)
		*p = b
		return p
	}
	*all = append(*all, b)
	return &(*all)[len(*all)-1]
}

// pgInt decodes an integer column in the format pgx asked it in: binary
// (big-endian, by its width) or text.
func pgInt(fd pgconn.FieldDescription, b []byte) (int64, error) {
	if fd.Format == pgx.BinaryFormatCode {
		switch len(b) {
		case 8:
			return int64(binary.BigEndian.Uint64(b)), nil // #nosec G115 -- the wire format is two's complement: reinterpreting the bits is the decoding
		case 4:
			return int64(int32(binary.BigEndian.Uint32(b))), nil // #nosec G115 -- the wire format is two's complement: reinterpreting the bits is the decoding
		case 2:
			return int64(int16(binary.BigEndian.Uint16(b))), nil // #nosec G115 -- the wire format is two's complement: reinterpreting the bits is the decoding
		}
		return 0, fmt.Errorf("column %s: %d bytes is not a binary integer", fd.Name, len(b))
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("column %s: %w", fd.Name, err)
	}
	return n, nil
}
