//go:build partitionexp

package accounts

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// TestPartitionExperiment measures the data API's reads and the ingestion
// upsert on databases seeded by scripts/partition-experiment, named in
// CONSENTGATE_PARTITION_EXP as "variant=URL variant=URL". It prints the
// plans and figures docs/scaling.md quotes; it asserts nothing about them.
func TestPartitionExperiment(t *testing.T) {
	spec := os.Getenv("CONSENTGATE_PARTITION_EXP")
	if spec == "" {
		t.Skip("CONSENTGATE_PARTITION_EXP not set: run scripts/partition-experiment")
	}
	var summary []string
	for _, v := range strings.Fields(spec) {
		name, url, _ := strings.Cut(v, "=")
		db, err := store.Open(url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		summary = append(summary, experiment(t, name, db)...)
		_ = db.Close()
	}
	for _, l := range summary {
		t.Log(l)
	}
}

func experiment(t *testing.T, variant string, db *store.DB) []string {
	ctx := context.Background()
	s := NewSQLStore(db)
	const account, customer = "acc_gen_1_checking", "cus_gen_1"
	var someID string
	if err := db.SQL().QueryRow(`SELECT id FROM transactions WHERE account_id = $1 ORDER BY transacted_at DESC, id DESC LIMIT 1 OFFSET 500`,
		account).Scan(&someID); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var out []string
	for _, q := range readQueries(now, account, customer, someID) {
		// The same SQL on both: on the hash variant nothing in a by-id
		// probe names the account, so it probes every partition.
		sql := q.sql
		rows, err := db.SQL().Query("EXPLAIN (ANALYZE, BUFFERS) "+sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		// Nodes never executed (pruned at run time, or not reached by an
		// ordered Append) are left out with their detail lines.
		var plan []string
		skip := -1
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			indent := len(l) - len(strings.TrimLeft(l, " "))
			if skip >= 0 && indent > skip {
				continue
			}
			skip = -1
			if strings.Contains(l, "never executed") {
				skip = indent
				continue
			}
			plan = append(plan, l)
		}
		rows.Close() //nolint:sqlclosecheck // one query at a time
		fmt.Printf("\n### %s: %s\n\n```\n%s\n```\n", variant, q.name, strings.Join(plan, "\n"))
		var times []time.Duration
		for range 100 {
			start := time.Now()
			r, err := db.SQL().Query(sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			for r.Next() {
			}
			r.Close() //nolint:sqlclosecheck // one query at a time
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		out = append(out, fmt.Sprintf("%s | %s | p50 %v | p95 %v", variant, q.name, times[len(times)/2].Round(time.Microsecond), times[len(times)*95/100].Round(time.Microsecond)))
	}
	// Ingestion: 10 batches of 5,000 new pending transactions over 40
	// accounts, then the same ids booked (an update of every row).
	const batches, size = 10, 5000
	mk := func(b, i int, booked bool) Transaction {
		at := now.Add(-time.Duration(i) * time.Minute)
		tx := Transaction{ID: fmt.Sprintf("exp-%d-%d", b, i), AccountID: fmt.Sprintf("acc_gen_%d_checking", 1+(b*size+i)%40),
			Status: StatusPending, TransactedAt: at, Amount: -100, Currency: "USD", Description: "Experiment", MerchantName: "Shop", MCC: "5411"}
		if booked {
			tx.Status = StatusBooked
			tx.BookedAt = &now
		}
		return tx
	}
	for _, booked := range []bool{false, true} {
		start := time.Now()
		for b := range batches {
			txs := make([]Transaction, size)
			for i := range txs {
				txs[i] = mk(b, i, booked)
			}
			err := db.Tx(ctx, func(tx *gorm.DB) error { return s.Bulk(tx).UpsertTransactions(txs) })
			if err != nil {
				t.Fatalf("%s upsert: %v", variant, err)
			}
		}
		el := time.Since(start)
		kind := "insert (new, pending)"
		if booked {
			kind = "update (pending → booked)"
		}
		out = append(out, fmt.Sprintf("%s | ingestion upsert %s | %d rows in %v | %.0f rows/s", variant, kind, batches*size, el.Round(time.Millisecond), float64(batches*size)/el.Seconds()))
	}
	return out
}
