package audit

import (
	"context"
	"crypto"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

// rehash recomputes prev_hash and hash from seq from onwards and moves the
// head: what an attacker who knows the algorithm (it is public) does after
// editing a row, so the chain alone looks intact again.
func rehash(t *testing.T, db *store.DB, from int64) {
	t.Helper()
	evs := allEvents(t, db)
	prev := GenesisHash
	for _, ev := range evs {
		if ev.Seq >= from {
			h, err := ComputeHash(prev, ev)
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, db, `UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, h, ev.Seq)
			ev.Hash = h
		}
		prev = ev.Hash
	}
}

// forgeCheckpoint stores a checkpoint of the current chain at seq signed by
// signer (not necessarily the server's key).
func forgeCheckpoint(t *testing.T, db *store.DB, signer *Signer, seq int64) {
	t.Helper()
	var hash string
	if err := db.Raw(`SELECT hash FROM audit_events WHERE seq = ?`, seq).Row().Scan(&hash); err != nil {
		t.Fatal(err)
	}
	sig, err := signer.key().Signer(checkpointType).Sign([]byte(`{"iss":"x","seq":` + strconv.FormatInt(seq, 10) + `,"hash":"` + hash + `","iat":1}`))
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := sig.CompactSerialize()
	mustExec(t, db, `INSERT INTO audit_checkpoints (seq, hash, created_at, jws) VALUES (?, ?, 0, ?)`, seq, hash, jws)
}

// forgeTreeHead stores a head of the tree of size leaves signed by signer.
func forgeTreeHead(t *testing.T, db *store.DB, signer *Signer, size int64) {
	t.Helper()
	r, err := loadRange(db.DB, uint64(size))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := rootOf(r)
	th, err := signer.signTreeHead(Origin("http://test"), size, root, time.UnixMilli(1000))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `INSERT INTO audit_tree_heads (`+treeHeadColumns+`) VALUES (?, ?, ?, ?, ?)`,
		th.TreeSize, th.RootHash, int64(1000000), th.KeyID, th.Note)
}

// rebuildTree replaces the stored tree with the one the events give now, as
// an attacker who rewrote events would, so that only signed heads remember.
func rebuildTree(t *testing.T, db *store.DB) {
	t.Helper()
	unprotect(t, db, "audit_tree")
	mustExec(t, db, `DELETE FROM audit_tree`)
	evs := allEvents(t, db)
	if err := growTree(db.DB, db.Dialect, 0, evs); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyCleanLog(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		rep := mustVerify(t, db)
		if !rep.Valid || rep.Events != 0 || rep.Head.Hash != GenesisHash {
			t.Fatalf("empty log: %+v", rep)
		}
		load(t, db, 0, 1200)
		c := NewCheckpointer(db, NewSigner(testSecret), CheckpointerOptions{Issuer: "http://test"})
		if _, err := c.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		load(t, db, 1200, 300)
		rep = requireValid(t, db, 1500)
		if rep.Checkpoints != 1 || !strings.HasPrefix(rep.Summary(), "audit log valid: 1500 events, head seq 1500 hash ") {
			t.Fatalf("Checkpoints = %d, summary %q", rep.Checkpoints, rep.Summary())
		}
		var head chainHead
		head, _ = readHead(context.Background(), db)
		if rep.Head != Head(head) {
			t.Fatalf("report head %+v, table head %+v", rep.Head, head)
		}
	})
}

// TestVerifyCatchesTampering: each way of changing the log behind the
// writer's back is reported at the first seq that is no longer as written.
func TestVerifyCatchesTampering(t *testing.T) {
	other := NewSigner([]byte("not the server secret, still 32 bytes long"))
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, db *store.DB)
		seq    int64
		reason string
	}{
		{"edited row", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_events SET outcome = 'allowed', status = 200 WHERE seq = 6`)
		}, 6, "hash does not match"},
		{"edited row with its hash recomputed", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_events SET customer_id = 'mallory' WHERE seq = 4`)
			var prev string
			db.Raw(`SELECT prev_hash FROM audit_events WHERE seq = 4`).Row().Scan(&prev)
			ev := allEvents(t, db)[3]
			h, _ := ComputeHash(prev, ev)
			mustExec(t, db, `UPDATE audit_events SET hash = ? WHERE seq = 4`, h)
		}, 5, "prev_hash does not link"},
		{"deleted row", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq = 7`)
		}, 7, "seq 7 is missing"},
		{"inserted row", func(t *testing.T, db *store.DB) {
			// Make room after seq 3 and insert a well-formed, correctly
			// linked event there: the event after it no longer links.
			mustExec(t, db, `UPDATE audit_events SET seq = -(seq + 1) WHERE seq > 3`)
			mustExec(t, db, `UPDATE audit_events SET seq = -seq WHERE seq < 0`)
			ev, _ := normalize(genEvent(99), base)
			ev.Seq, ev.EventID = 4, "00000000-0000-4000-8000-000000000000"
			ev.PrevHash = allEvents(t, db)[2].Hash
			ev.Hash, _ = ComputeHash(ev.PrevHash, ev)
			if err := insertEvents(db.DB, db.Dialect, []Event{ev}, 0); err != nil {
				t.Fatal(err)
			}
		}, 5, "prev_hash does not link"},
		{"reordered pair", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_events SET seq = -1 WHERE seq = 8`)
			mustExec(t, db, `UPDATE audit_events SET seq = 8 WHERE seq = 9`)
			mustExec(t, db, `UPDATE audit_events SET seq = 9 WHERE seq = -1`)
		}, 8, "prev_hash does not link"},
		{"tail deleted", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq > 10`)
		}, 11, "events were removed"},
		{"tail deleted and head rewound past a checkpoint", func(t *testing.T, db *store.DB) {
			unprotect(t, db, "audit_head")
			mustExec(t, db, `DELETE FROM audit_events WHERE seq > 10`)
			mustExec(t, db, `UPDATE audit_head SET seq = 10, hash = (SELECT hash FROM audit_events WHERE seq = 10)`)
		}, 11, "beyond the end of the log"},
		{"row inserted beyond the head", func(t *testing.T, db *store.DB) {
			ev, _ := normalize(genEvent(99), base)
			ev.Seq, ev.EventID, ev.PrevHash, ev.Hash = 13, "00000000-0000-4000-8000-000000000001", GenesisHash, GenesisHash
			if err := insertEvents(db.DB, db.Dialect, []Event{ev}, 0); err != nil {
				t.Fatal(err)
			}
		}, 13, "beyond the chain head"},
		{"chain rewritten after a checkpoint", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 2`)
			rehash(t, db, 2)
			unprotect(t, db, "audit_head")
			mustExec(t, db, `UPDATE audit_head SET hash = (SELECT hash FROM audit_events WHERE seq = 12) WHERE seq = 12`)
		}, 2, "Merkle tree node (level 0, index 1)"},
		{"chain and tree rewritten after a tree head", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 2`)
			rehash(t, db, 2)
			unprotect(t, db, "audit_head")
			mustExec(t, db, `UPDATE audit_head SET hash = (SELECT hash FROM audit_events WHERE seq = 12) WHERE seq = 12`)
			rebuildTree(t, db)
			unprotect(t, db, "audit_checkpoints")
			mustExec(t, db, `DELETE FROM audit_checkpoints`)
		}, 12, "the log was rewritten"},
		{"tree node edited", func(t *testing.T, db *store.DB) {
			unprotect(t, db, "audit_tree")
			mustExec(t, db, `UPDATE audit_tree SET hash = ? WHERE level = 1 AND idx = 2`, make([]byte, 32))
		}, 5, "Merkle tree node (level 1, index 2)"},
		{"tree node deleted", func(t *testing.T, db *store.DB) {
			unprotect(t, db, "audit_tree")
			mustExec(t, db, `DELETE FROM audit_tree WHERE level = 0 AND idx = 8`)
		}, 9, "is missing or does not match"},
		{"tree head signed by another key", func(t *testing.T, db *store.DB) {
			forgeTreeHead(t, db, other, 5)
		}, 5, "unknown key"},
		{"tree head root edited", func(t *testing.T, db *store.DB) {
			unprotect(t, db, "audit_tree_heads")
			mustExec(t, db, `UPDATE audit_tree_heads SET root_hash = ? WHERE tree_size = 12`, b64(make([]byte, 32)))
		}, 12, "differ from its signed note"},
		{"tree heads beyond a truncated log", func(t *testing.T, db *store.DB) {
			unprotect(t, db, "audit_head")
			unprotect(t, db, "audit_checkpoints")
			mustExec(t, db, `DELETE FROM audit_events WHERE seq > 10`)
			mustExec(t, db, `DELETE FROM audit_checkpoints`)
			mustExec(t, db, `UPDATE audit_head SET seq = 10, hash = (SELECT hash FROM audit_events WHERE seq = 10)`)
		}, 11, "beyond the end of the log"},
		{"checkpoint signed by another key", func(t *testing.T, db *store.DB) {
			forgeCheckpoint(t, db, other, 5)
		}, 5, "unknown key"},
		{"checkpoint with a forged signature", func(t *testing.T, db *store.DB) {
			// The server's key id, but a signature made by another key.
			var hash string
			db.Raw(`SELECT hash FROM audit_events WHERE seq = 6`).Row().Scan(&hash)
			s, _ := other.key().Signer(checkpointType).Sign([]byte(`{"seq":6,"hash":"` + hash + `"}`))
			jws, _ := s.CompactSerialize()
			parts := strings.Split(jws, ".")
			hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
			hdr = []byte(strings.Replace(string(hdr), other.PublicJWK().KeyID, NewSigner(testSecret).PublicJWK().KeyID, 1))
			jws = base64.RawURLEncoding.EncodeToString(hdr) + "." + parts[1] + "." + parts[2]
			mustExec(t, db, `INSERT INTO audit_checkpoints (seq, hash, created_at, jws) VALUES (6, ?, 0, ?)`, hash, jws)
		}, 6, "signature does not verify"},
		{"checkpoint row's hash edited", func(t *testing.T, db *store.DB) {
			unprotect(t, db, "audit_checkpoints")
			mustExec(t, db, `UPDATE audit_checkpoints SET hash = ? WHERE seq = 12`, GenesisHash)
		}, 12, "differ from the stored row"},
	} {
		t.Run(c.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				load(t, db, 0, 12)
				cp := NewCheckpointer(db, NewSigner(testSecret), CheckpointerOptions{})
				if _, err := cp.Checkpoint(context.Background()); err != nil {
					t.Fatal(err)
				}
				// A legacy JWS checkpoint too, as a log from before the tree has.
				forgeCheckpoint(t, db, NewSigner(testSecret), 12)
				if rep := requireValid(t, db, 12); rep.Checkpoints != 2 {
					t.Fatalf("Checkpoints = %d, want a tree head and a legacy checkpoint", rep.Checkpoints)
				}
				unprotect(t, db, "audit_events")
				c.tamper(t, db)
				rep := mustVerify(t, db)
				if rep.Valid || rep.FirstInvalidSeq == nil || *rep.FirstInvalidSeq != c.seq || !strings.Contains(rep.Reason, c.reason) {
					got := int64(-1)
					if rep.FirstInvalidSeq != nil {
						got = *rep.FirstInvalidSeq
					}
					t.Fatalf("Verify = valid %v, first invalid %d (%s); want %d containing %q", rep.Valid, got, rep.Reason, c.seq, c.reason)
				}
				if !strings.Contains(rep.Summary(), "INVALID at seq "+strconv.FormatInt(c.seq, 10)+": ") {
					t.Fatalf("Summary = %q", rep.Summary())
				}
				if rep.Head.Seq > c.seq {
					t.Fatalf("report head %d is past the first invalid seq %d", rep.Head.Seq, c.seq)
				}
			})
		})
	}
}

func TestSigner(t *testing.T) {
	a, b := NewSigner(testSecret), NewSigner(testSecret)
	if a.PublicJWK().KeyID != b.PublicJWK().KeyID || a.PublicJWK().KeyID == NewSigner([]byte("another secret of enough length!!")).PublicJWK().KeyID {
		t.Fatal("the key must follow the secret, deterministically")
	}
	jwk := a.PublicJWK()
	tp, _ := jwk.Thumbprint(crypto.SHA256)
	if jwk.KeyID != base64.RawURLEncoding.EncodeToString(tp) || jwk.Algorithm != "EdDSA" || jwk.Use != "sig" || !jwk.IsPublic() {
		t.Fatalf("PublicJWK = %+v", jwk)
	}
}

func TestCheckpointer(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		signer := NewSigner(testSecret)
		at := func(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }
		c1 := NewCheckpointer(db, signer, CheckpointerOptions{Issuer: "https://bank.example/", Now: at(100000)})
		c2 := NewCheckpointer(db, signer, CheckpointerOptions{Issuer: "https://bank.example/", Now: at(200000)})
		if th, err := c1.Checkpoint(ctx); th != nil || err != nil {
			t.Fatalf("empty log: %v, %v; want nothing to sign", th, err)
		}
		load(t, db, 0, 5)
		first, err := c1.Checkpoint(ctx)
		if err != nil || first.TreeSize != 5 || first.Timestamp != 100000 || first.KeyID != signer.KeyID() {
			t.Fatalf("Checkpoint = %+v, %v", first, err)
		}
		r, _ := loadRange(db.DB, 5)
		root, _ := rootOf(r)
		want := "bank.example/audit\n5\n" + b64(root) + "\ntimestamp 100000\n\n\u2014 bank.example/audit "
		if !strings.HasPrefix(first.Note, want) || first.RootHash != b64(root) {
			t.Fatalf("note %q, want prefix %q", first.Note, want)
		}
		if err := VerifyTreeHead(*first, "bank.example/audit", signer.KeySet()); err != nil {
			t.Fatal(err)
		}
		if err := VerifyTreeHead(*first, "other.example/audit", signer.KeySet()); err == nil {
			t.Fatal("a head verified for another log's origin")
		}
		// A second node asked for the same size gets the stored head.
		second, err := c2.Checkpoint(ctx)
		if err != nil || second.Note != first.Note {
			t.Fatalf("second head of size 5: %+v, %v", second, err)
		}
		// Racing nodes inserting the same size: the insert is idempotent.
		load(t, db, 5, 5)
		done := make(chan error, 2)
		for _, c := range []*Checkpointer{c1, c2} {
			go func() { _, err := c.Checkpoint(ctx); done <- err }()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if rep := requireValid(t, db, 10); rep.Checkpoints != 2 {
			t.Fatalf("Checkpoints = %d, want 2", rep.Checkpoints)
		}
		// It refuses to vouch for a log broken since the last head.
		load(t, db, 10, 3)
		unprotect(t, db, "audit_events")
		mustExec(t, db, `UPDATE audit_events SET reason = 'x' WHERE seq = 12`)
		if _, err := c1.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "broken log") {
			t.Fatalf("Checkpoint over a broken chain: %v", err)
		}
	})
}

// TestCheckpointerRefusesRewrittenTree: a tree whose stored nodes no longer
// give the last signed root (the log was rewritten below it) is not signed.
func TestCheckpointerRefusesRewrittenTree(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := NewCheckpointer(db, NewSigner(testSecret), CheckpointerOptions{Issuer: "http://test"})
		load(t, db, 0, 8)
		if _, err := c.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		unprotect(t, db, "audit_events")
		mustExec(t, db, `UPDATE audit_events SET reason = 'rewritten' WHERE seq = 3`)
		rehash(t, db, 3)
		unprotect(t, db, "audit_head")
		mustExec(t, db, `UPDATE audit_head SET hash = (SELECT hash FROM audit_events WHERE seq = 8) WHERE seq = 8`)
		rebuildTree(t, db)
		load(t, db, 8, 2)
		if _, err := c.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "no longer has the signed root") {
			t.Fatalf("Checkpoint over a rewritten tree: %v", err)
		}
	})
}

func TestCheckpointerRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		load(t, db, 0, 3)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			NewCheckpointer(db, NewSigner(testSecret), CheckpointerOptions{Interval: 10 * time.Millisecond}).Run(ctx)
			close(done)
		}()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if rep := mustVerify(t, db); rep.Checkpoints == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Run made no checkpoint")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
	})
}
