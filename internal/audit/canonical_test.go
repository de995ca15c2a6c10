package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The test vectors of docs/audit.md. The expected canonical bytes and hashes
// were computed independently with Python:
//
//	json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
//	hashlib.sha256(bytes.fromhex(prev) + canonical).hexdigest()
var vectors = []struct {
	ev        Event
	canonical string
	hash      string
}{
	{
		ev: Event{Seq: 1, EventID: "0b9d2f8e-5c1a-4e7b-9f3d-2a6c8e1b4d70",
			OccurredAt: time.Date(2026, 11, 1, 10, 0, 0, 123456000, time.UTC), Type: DataAccess, Outcome: Allowed,
			ClientID: "demo-pfm", CustomerID: "alice", GrantID: "g-1", AccountID: "acc-1", Method: "GET",
			Path: "/v1/accounts/acc-1/transactions", Status: 200, Purpose: "personal_finance_management",
			Scopes: []string{"accounts:read", "transactions:read"}, InteractionID: "5e0c7a52-1d3b-4f7a-8c21-9b8e6f4a3d10"},
		canonical: `{"account_id":"acc-1","client_id":"demo-pfm","customer_id":"alice","event_id":"0b9d2f8e-5c1a-4e7b-9f3d-2a6c8e1b4d70","grant_id":"g-1","interaction_id":"5e0c7a52-1d3b-4f7a-8c21-9b8e6f4a3d10","method":"GET","occurred_at":"2026-11-01T10:00:00.123456Z","outcome":"allowed","path":"/v1/accounts/acc-1/transactions","purpose":"personal_finance_management","reason":"","scopes":"accounts:read transactions:read","seq":1,"status":200,"type":"data.access"}`,
		hash:      "76e2eb790fbce6e174bbfd765ca1c673de8529f2711f91c8b42c8c6e72ead5cb",
	},
	{
		ev: Event{Seq: 2, EventID: "7c4e9a1b-2d3f-4a5b-8c6d-0e1f2a3b4c5d",
			OccurredAt: time.Date(2026, 11, 1, 11, 0, 1, 0, time.FixedZone("CET", 3600)), Type: PurposeBlocked,
			Outcome: Denied, Reason: "purpose_prohibited: \"advertising\"\n\u00e9\u0001", ClientID: "adtech",
			Purpose: "advertising"},
		canonical: `{"account_id":"","client_id":"adtech","customer_id":"","event_id":"7c4e9a1b-2d3f-4a5b-8c6d-0e1f2a3b4c5d","grant_id":"","interaction_id":"","method":"","occurred_at":"2026-11-01T10:00:01.000000Z","outcome":"denied","path":"","purpose":"advertising","reason":"purpose_prohibited: \"advertising\"\n` + "\u00e9" + `\u0001","scopes":"","seq":2,"status":0,"type":"purpose.blocked"}`,
		hash:      "3d7070fc18a5ccf99e2821f331fdb9ac72eae0501b1c85e5d9ce56229a882199",
	},
}

func TestCanonicalVectors(t *testing.T) {
	prev := GenesisHash
	for _, v := range vectors {
		if got := string(Canonical(v.ev)); got != v.canonical {
			t.Fatalf("seq %d canonical:\n got %s\nwant %s", v.ev.Seq, got, v.canonical)
		}
		got, err := ComputeHash(prev, v.ev)
		if err != nil || got != v.hash {
			t.Fatalf("seq %d hash = %s, %v; want %s", v.ev.Seq, got, err, v.hash)
		}
		prev = got
	}
	if _, err := ComputeHash("abc", vectors[0].ev); err == nil {
		t.Fatal("ComputeHash accepted a short prev_hash")
	}
	if _, err := ComputeHash(strings.Repeat("zz", 32), vectors[0].ev); err == nil {
		t.Fatal("ComputeHash accepted a non-hex prev_hash")
	}
}

// TestCanonicalStrings pins the RFC 8785 string escaping, and checks that
// every canonical encoding is JSON that decodes back to the same values.
func TestCanonicalStrings(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"<&>\u2028é😀", `"<&>` + "\u2028é😀" + `"`}, // no HTML or line-separator escaping
	} {
		if got := string(appendString(nil, c.in)); got != c.want {
			t.Errorf("appendString(%q) = %s, want %s", c.in, got, c.want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, c.in), &back); err != nil || back != c.in {
			t.Errorf("round trip of %q: %q, %v", c.in, back, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", -7200))
	ev, err := normalize(Event{Type: DataAccess, Outcome: Denied, Path: "/v1/a\x00b\xff",
		Reason: strings.Repeat("é", 600), Scopes: []string{" a  b", "", "c"}, Seq: 9, Hash: "x"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.OccurredAt.Equal(now.Truncate(time.Microsecond)) || ev.OccurredAt.Location() != time.UTC {
		t.Errorf("OccurredAt = %v, want %v in UTC", ev.OccurredAt, now)
	}
	if ev.Path != "/v1/a\uFFFDb\uFFFD" {
		t.Errorf("Path = %q: NUL and invalid UTF-8 must become U+FFFD", ev.Path)
	}
	if len(ev.Reason) != maxField || !strings.HasSuffix(ev.Reason, "é") {
		t.Errorf("Reason cut to %d bytes, want %d at a rune boundary", len(ev.Reason), maxField)
	}
	if strings.Join(ev.Scopes, "|") != "a|b|c" {
		t.Errorf("Scopes = %q", ev.Scopes)
	}
	if ev.Seq != 0 || ev.Hash != "" {
		t.Errorf("caller-set chain fields kept: %+v", ev)
	}
	for _, bad := range []Event{{Type: "data.read", Outcome: Allowed}, {Type: DataAccess, Outcome: "ok"}} {
		if _, err := normalize(bad, now); err == nil {
			t.Errorf("normalize(%+v) accepted an invalid event", bad)
		}
	}
}

func TestMarshalJSON(t *testing.T) {
	ev := vectors[0].ev
	ev.PrevHash, ev.Hash = GenesisHash, vectors[0].hash
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"event_id":"0b9d2f8e-5c1a-4e7b-9f3d-2a6c8e1b4d70","occurred_at":"2026-11-01T10:00:00.123456Z","type":"data.access","outcome":"allowed","reason":"","client_id":"demo-pfm","customer_id":"alice","grant_id":"g-1","account_id":"acc-1","method":"GET","path":"/v1/accounts/acc-1/transactions","status":200,"purpose":"personal_finance_management","scopes":["accounts:read","transactions:read"],"interaction_id":"5e0c7a52-1d3b-4f7a-8c21-9b8e6f4a3d10","prev_hash":"` + GenesisHash + `","hash":"` + vectors[0].hash + `"}`
	if string(b) != want {
		t.Fatalf("MarshalJSON:\n got %s\nwant %s", b, want)
	}
	if b, _ := json.Marshal(Event{}); !strings.Contains(string(b), `"scopes":[]`) {
		t.Fatalf("nil scopes must be [], got %s", b)
	}
}
